"""Which outputs an output directory holds, and the files of each, as GADGET-4, AREPO and TNG
name them.

Particles of output NNN: one file `snapshot_NNN.hdf5` (GADGET-4) or `snap_NNN.hdf5` (AREPO), or
pieces `snapdir_NNN/snapshot_NNN.K.hdf5` (GADGET-4) or `snapdir_NNN/snap_NNN.K.hdf5` (AREPO, TNG),
K = 0 .. NumFilesPerSnapshot - 1. Its FOF + SUBFIND catalog: `fof_subhalo_tab_NNN.hdf5` or
`groups_NNN/fof_subhalo_tab_NNN.K.hdf5`, K = 0 .. NumFiles - 1. Only file 0 of a split set is
looked for here; the readers open the others from the count file 0 gives, and report a missing one.
"""
import os
import re
from dataclasses import dataclass
from pathlib import Path

from deephalo_core.errors import DataError

SINGLE_SNAPSHOT = re.compile(r"(snap|snapshot)_(\d+)\.hdf5")
SPLIT_SNAPSHOT = re.compile(r"(snap|snapshot)_(\d+)\.(\d+)\.hdf5")
SINGLE_CATALOG = re.compile(r"fof_subhalo_tab_(\d+)\.hdf5")
SPLIT_CATALOG = re.compile(r"fof_subhalo_tab_(\d+)\.(\d+)\.hdf5")
FOF_ONLY = re.compile(r"fof_tab_(\d+)(\.\d+)?\.hdf5")


@dataclass(frozen=True)
class FileSet:
    """The files of one snapshot or one catalog: one file, or pieces `<stem>.K.hdf5`."""

    first: Path  # the one file, or piece 0
    split: bool

    def path(self, k: int) -> Path:
        if not self.split:
            return self.first if k == 0 else self.first.with_name(
                f"{self.first.name[:-len('.hdf5')]}.{k}.hdf5")
        return self.first.with_name(f"{self.first.name[:-len('.0.hdf5')]}.{k}.hdf5")

    @property
    def where(self) -> Path:
        """What to name in messages: the directory of the pieces, or the one file."""
        return self.first.parent if self.split else self.first

    @property
    def tng_layout(self) -> bool:
        """Pieces named as TNG names them: snapdir_NNN/snap_NNN.K, groups_NNN/fof_subhalo_tab_NNN.K."""
        return self.split and self.first.name.startswith(("snap_", "fof_subhalo_tab_"))


@dataclass(frozen=True)
class OutputFiles:
    snap: int
    particles: FileSet | None
    catalog: FileSet | None

    @property
    def complete(self) -> bool:
        return self.particles is not None and self.catalog is not None


def _piece_zero(directory: Path, pattern: re.Pattern, number: str, default_prefix: str) -> Path:
    """Piece 0 of the split set in `directory` (its prefix read off the pieces there)."""
    for prefix in ("snap", "snapshot", "fof_subhalo_tab"):  # the usual names, without a listing
        if pattern.fullmatch(f"{prefix}_{number}.0.hdf5") and (
                directory / f"{prefix}_{number}.0.hdf5").is_file():
            return directory / f"{prefix}_{number}.0.hdf5"
    prefix = default_prefix
    for entry in sorted(os.listdir(directory)):
        m = pattern.fullmatch(entry)
        if m and m.group(m.re.groups - 1) == number:
            prefix = entry[:entry.index(f"_{number}.")]
            break
    return directory / f"{prefix}_{number}.0.hdf5"


def scan(output_dir: Path) -> dict[int, OutputFiles]:
    """Every output whose particles or catalog are in `output_dir`, by snapshot number."""
    output_dir = Path(output_dir)
    particles, catalogs = {}, {}
    try:
        entries = sorted(os.listdir(output_dir))
    except OSError:
        return {}
    for name in entries:
        path = output_dir / name
        if (m := SINGLE_SNAPSHOT.fullmatch(name)) and path.is_file():
            particles.setdefault(int(m.group(2)), FileSet(path, split=False))
        elif (m := SINGLE_CATALOG.fullmatch(name)) and path.is_file():
            catalogs.setdefault(int(m.group(1)), FileSet(path, split=False))
        elif (m := re.fullmatch(r"snapdir_(\d+)", name)) and path.is_dir():
            # pieces win over a single file of the same number (a split set is never partial)
            particles[int(m.group(1))] = FileSet(
                _piece_zero(path, SPLIT_SNAPSHOT, m.group(1), "snap"), split=True)
        elif (m := re.fullmatch(r"groups_(\d+)", name)) and path.is_dir():
            catalogs[int(m.group(1))] = FileSet(
                _piece_zero(path, SPLIT_CATALOG, m.group(1), "fof_subhalo_tab"), split=True)
    return {snap: OutputFiles(snap, particles.get(snap), catalogs.get(snap))
            for snap in sorted(set(particles) | set(catalogs))}


def complete_snaps(found: dict[int, OutputFiles]) -> list[int]:
    return [snap for snap, files in found.items() if files.complete]


def _fof_only(output_dir: Path, snap: int) -> bool:
    return any((m := FOF_ONLY.fullmatch(p.name)) and int(m.group(1)) == snap
               for p in [*output_dir.glob("fof_tab_*"), *output_dir.glob("groups_*/fof_tab_*")])


def pick(output_dir: Path, snap: int | None) -> OutputFiles:
    """The files of output `snap` (None: the last one with both particles and a catalog);
    DataError saying what is there when that output is missing or incomplete."""
    output_dir = Path(output_dir)
    found = scan(output_dir)
    have = complete_snaps(found)
    if snap is None:
        if not have:
            raise DataError(
                f"no output in {output_dir} has both particles and a FOF/SUBFIND catalog "
                f"(snapshots: {[s for s, f in found.items() if f.particles] or 'none'}; catalogs: "
                f"{[s for s, f in found.items() if f.catalog] or 'none'}); a labelled snapshot "
                "needs fof_subhalo_tab_NNN next to snapshot_NNN: run FOF and SUBFIND at output "
                "time")
        return found[have[-1]]
    snap = int(snap)
    files = found.get(snap)
    if files is None:
        raise DataError(f"snapshot {snap} is not in {output_dir} (looked for snapshot_{snap:03d}, "
                        f"snap_{snap:03d} and snapdir_{snap:03d}); snapshots there: "
                        f"{have or 'none'}: pass one of them as snap")
    if files.particles is None:
        raise DataError(f"snapshot {snap} is not in {output_dir}: it has the catalog "
                        f"{files.catalog.where.name} but no particles (snapshot_{snap:03d}.hdf5 "
                        f"or snapdir_{snap:03d}); snapshots there: {have or 'none'}: pass one of "
                        "them as snap")
    if files.catalog is None:
        extra = (f"; it has fof_tab_{snap:03d} (FOF only): run SUBFIND too"
                 if _fof_only(output_dir, snap) else ": run FOF and SUBFIND at output time")
        raise DataError(f"group catalog {snap} is not in {output_dir} (looked for "
                        f"fof_subhalo_tab_{snap:03d}.hdf5 and groups_{snap:03d}); outputs there "
                        f"with both particles and a catalog: {have or 'none'}{extra}")
    return files
