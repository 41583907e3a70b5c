"""GADGET-4 and AREPO HDF5 outputs: a snapshot (one file or pieces) and its FOF + SUBFIND catalog.

Names (see `outputs`): `snapshot_NNN.hdf5` / `snap_NNN.hdf5` or `snapdir_NNN/<same>.K.hdf5`, with
`fof_subhalo_tab_NNN.hdf5` or `groups_NNN/fof_subhalo_tab_NNN.K.hdf5`. TNG's layout is AREPO's
split one; `tng` opens it through `simulation_from` here, adding its offsets file.

What differs from TNG, and how it is read:
- GADGET-4 names a few catalog fields differently (SubhaloGroupNr, Nsubhalos_*): `groupcat` maps
  them. Its snapshot /Header has no HubbleParam, Omega0 or OmegaLambda: they are read from
  /Parameters. NumPart_* are uint64 and there is no NumPart_Total_HighWord (taken as 0).
  Coordinates may be float32; halos are unwrapped into float64 all the same.
- Units. Both codes store Velocities as v_peculiar / sqrt(a) (a_scaling 0.5: peculiar = stored *
  sqrt(a)) and Potential as a * phi (a_scaling -1: physical = stored / a), with h-scaled
  lengths (ckpc/h) and masses (1e10 Msun/h). `Simulation` applies a ** a_scaling from each
  dataset's own attribute when present, else these conventions.
- Offsets. GADGET-4 catalogs carry GroupOffsetType / SubhaloOffsetType (each object's first
  particle); they are used, after checking that they equal the cumulative lengths (the only order
  the labels can follow). AREPO catalogs have none: offsets come from the lengths.
- Group order. Particles can take their Subfind labels from the catalog only when the snapshot is
  stored in group order, as both codes write it when FOF/SUBFIND run at output time (groups in
  order, each group's subhalos in order from its first particle, then its fuzz; particles in no
  group after all groups). This is checked, not assumed: every subhalo of only dark matter must
  start with its most-bound particle (ParticleIDs there == SubhaloIDMostbound), one point read per
  file. A snapshot that fails is refused with a DataError, never labelled wrongly.
"""
from pathlib import Path

import numpy as np

from deephalo_core.data.groupcat import ChunkedCatalog
from deephalo_core.data.outputs import OutputFiles
from deephalo_core.data.snapshot import ChunkedParticles
from deephalo_core.errors import DataError

_WHAT_TO_DO = ("run FOF and SUBFIND at output time (GADGET-4 and AREPO then write the snapshot in "
               "group order), or sort the snapshot's particles by the catalog's IDs block")


def open_files(files: OutputFiles) -> tuple[ChunkedParticles, ChunkedCatalog]:
    particles = ChunkedParticles(files.particles)
    try:
        return particles, ChunkedCatalog(files.catalog)
    except Exception:
        particles.close()
        raise


def check_catalog_offsets(sim):
    """DataError unless GroupOffsetType / SubhaloOffsetType (PartType1) equal the offsets the
    lengths give, which `sim` holds (the only order the labels can follow)."""
    catalog = sim._catalog
    for kind, ours in (("Group", sim.group_offsets), ("Subhalo", sim.subhalo_offsets)):
        if catalog.totals[kind] == 0:
            continue
        theirs = np.asarray(catalog.field(kind, f"{kind}OffsetType")).reshape(-1, 6)[:, 1]
        bad = np.nonzero(theirs != ours)[0]
        if len(bad):
            i = int(bad[0])
            raise DataError(
                f"catalog {catalog.where}: {kind.lower()} {i} starts at particle {int(theirs[i])} "
                f"by {kind}OffsetType, but the lengths before it ({kind}LenType"
                f"{', from its group start' if kind == 'Subhalo' else ''}) put it at "
                f"{int(ours[i])}; {len(bad)} of {len(ours)} {kind.lower()}s disagree. The catalog "
                "does not describe the snapshot's particle order, so it cannot label the "
                f"particles: {_WHAT_TO_DO}; or, if only these offsets are damaged, open with "
                "offsets='computed'")


def check_group_order(sim, strict: bool):
    """DataError unless each dark-matter-only subhalo's first particle is its most-bound one.

    strict=False (TNG's own layout, whose order the format guarantees) lets a source without
    ParticleIDs or SubhaloIDMostbound through unchecked; strict=True refuses it."""
    particles, catalog = sim._particles, sim._catalog
    if catalog.n_subhalos == 0:
        return
    lacking = [name for name, have in (("PartType1/ParticleIDs", "ParticleIDs" in particles.fields),
                                       ("Subhalo/SubhaloIDMostbound",
                                        "SubhaloIDMostbound" in catalog.names("Subhalo")))
               if not have]
    if lacking:
        if strict:
            raise DataError(f"{sim.path} (snapshot {sim.snap}) lacks {' and '.join(lacking)}, so "
                            "its group order cannot be checked and its particles cannot be "
                            "labelled from the catalog; write snapshots with particle IDs and a "
                            "full SUBFIND catalog")
        return
    len_type = np.asarray(catalog.field("Subhalo", "SubhaloLenType")).reshape(-1, 6)
    dm_only = (len_type[:, 1] > 0) & (np.delete(len_type, 1, axis=1) == 0).all(axis=1)
    subs = np.nonzero(dm_only)[0]
    # the order the lengths describe (an offsets file, if any, is checked per group at load)
    from_lengths = (sim.subhalo_offsets if sim.offset_source != "file"
                    else sim.offsets_from_lengths()["subhalo"][:, 1])
    starts = from_lengths[subs]
    if len(starts) and (starts.min() < 0 or starts.max() >= particles.n_particles):
        s = int(subs[np.argmax((starts < 0) | (starts >= particles.n_particles))])
        raise DataError(f"{sim.path} (snapshot {sim.snap}): subhalo {s} would start at particle "
                        f"{int(from_lengths[s])}, outside the snapshot's "
                        f"{particles.n_particles}; the catalog belongs to another snapshot: "
                        "use the catalog written with this snapshot")
    rows, where = np.unique(starts, return_inverse=True)
    first_ids = particles.read_rows("ParticleIDs", rows)[where]
    most_bound = np.asarray(catalog.field("Subhalo", "SubhaloIDMostbound"))[subs]
    bad = np.nonzero(first_ids != most_bound)[0]
    if len(bad):
        s = int(subs[bad[0]])
        raise DataError(
            f"{sim.path} (snapshot {sim.snap}) is not stored in group order: subhalo {s} should "
            f"start at particle {int(from_lengths[s])} with its most-bound particle (ID "
            f"{int(most_bound[bad[0]])}, SubhaloIDMostbound), but that particle has ID "
            f"{int(first_ids[bad[0]])} ({len(bad)} of {len(subs)} subhalos differ). The catalog "
            f"cannot label these particles: {_WHAT_TO_DO}")


def simulation_from(path: Path, snap: int, kind: str, particles, catalog, offsets: str = "auto",
                    snap_offsets: dict | None = None, strict: bool = True):
    """The Simulation over opened particles and catalog, its offsets and group order checked;
    closes both on failure. snap_offsets: offsets read elsewhere (TNG's offsets file)."""
    from deephalo_core.data.simulation import Simulation, make_header

    try:
        if offsets not in ("auto", "file", "computed"):
            raise DataError(f"offsets must be 'auto', 'file' or 'computed', got {offsets!r}")
        names = catalog.names("Group") | catalog.names("Subhalo")
        in_catalog = "GroupOffsetType" in names and (
            "SubhaloOffsetType" in names or catalog.n_subhalos == 0)
        if snap_offsets is None and offsets == "file" and not in_catalog:
            raise DataError(f"catalog {catalog.where} has no GroupOffsetType/SubhaloOffsetType; "
                            "open with offsets='auto' or 'computed' to compute offsets from the "
                            "lengths")
        header = make_header(particles.header_attrs, particles.where, catalog.n_groups,
                             catalog.n_subhalos, particles.n_chunks, snap, particles.parameters)
        sim = Simulation(path, snap, kind, header, particles, catalog, snap_offsets)
        if snap_offsets is None and in_catalog and offsets != "computed":
            check_catalog_offsets(sim)  # equal, so the computed offsets Simulation holds are theirs
            sim.offset_source = "catalog"
        check_group_order(sim, strict)
        return sim
    except Exception:
        particles.close()
        catalog.close()
        raise


def open_gadget(output_dir: Path, files: OutputFiles, offsets: str = "auto"):
    """A Simulation (kind 'gadget4' or 'arepo', by the catalog's names) over one output."""
    particles, catalog = open_files(files)
    kind = "gadget4" if catalog.code == "GADGET-4" else "arepo"
    return simulation_from(Path(output_dir), files.snap, kind, particles, catalog, offsets)
