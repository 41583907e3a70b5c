"""IllustrisTNG's own layout: a simulation root holding `output/snapdir_NNN/snap_NNN.K.hdf5`,
`output/groups_NNN/fof_subhalo_tab_NNN.K.hdf5` and, optionally,
`postprocessing/offsets/offsets_NNN.hdf5` (each group's and subhalo's first particle), or the
`output` directory alone.

This is AREPO's split layout, read by `gadget.simulation_from`; what TNG adds is the offsets
file, used when present (offsets='auto') and checked against the snapshot's chunks. Units are
AREPO's (tng-format.md): Velocities v/sqrt(a), Potential times a; the Simulation scales them.
"""
from pathlib import Path

import numpy as np

from deephalo_core.data import offsets as offsets_mod
from deephalo_core.data.gadget import open_files, simulation_from
from deephalo_core.data.outputs import OutputFiles


def offsets_path(root: Path, snap: int) -> Path:
    return Path(root) / "postprocessing" / "offsets" / f"offsets_{snap:03d}.hdf5"


def open_tng(root: Path, files: OutputFiles, offsets: str = "auto"):
    """A Simulation (kind 'snapshot', path the simulation root) over one TNG-layout output."""
    from deephalo_core.errors import DataError

    snap = files.snap
    path = offsets_path(root, snap)
    snap_offsets = None
    if offsets == "file" or (offsets == "auto" and path.is_file()):
        if not path.is_file():
            raise DataError(f"offsets file {path} does not exist; open with offsets='auto' or "
                            "'computed' to compute offsets from the catalog")
        snap_offsets = offsets_mod.read_offsets_file(path)
    elif offsets not in ("auto", "computed"):
        raise DataError(f"offsets must be 'auto', 'file' or 'computed', got {offsets!r}")
    particles, catalog = open_files(files)
    if snap_offsets is not None:
        file_snap = snap_offsets["file_snap"]
        if (len(file_snap) != particles.n_chunks
                or np.any(file_snap[:, 1] != particles.chunk_starts)):
            particles.close()
            catalog.close()
            raise DataError(f"offsets file {path} does not match the snapshot chunks in "
                            f"{particles.where} (FileOffsets/SnapByType differs); it belongs to "
                            "another snapshot: delete or regenerate it")
    # TNG's format guarantees group order; it is still checked where the IDs allow (strict=False).
    # GADGET-4 output in these names is read as GADGET-4's (its own offsets, strict check).
    if catalog.code == "GADGET-4" and snap_offsets is None:
        return simulation_from(Path(root), snap, "gadget4", particles, catalog, offsets)
    return simulation_from(Path(root), snap, "snapshot", particles, catalog, offsets="computed",
                           snap_offsets=snap_offsets, strict=False)
