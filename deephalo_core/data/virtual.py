"""`simulation.hdf5`: one file of HDF5 virtual datasets over a TNG simulation's snapshot chunks,
catalog chunks and offsets files (`/Snapshots/N/PartType1/...`, `/Groups/N/{Group,Subhalo}/...`,
`/Offsets/N/...`). Read like a single file; names, dtypes and units are TNG's (Velocities
v/sqrt(a), Potential times a: the Simulation scales them).
"""
from pathlib import Path

import h5py
import numpy as np

from deephalo_core.data.groupcat import CATALOG_FIELDS, CatalogCounts
from deephalo_core.data.snapshot import DM, open_hdf5, read_points
from deephalo_core.data.types import OutputInfo
from deephalo_core.errors import DataError


class VirtualParticles:
    """PartType1 through simulation.hdf5's /Snapshots/NNN/PartType1 virtual datasets."""

    def __init__(self, f: h5py.File, snap: int):
        self.group = f[f"Snapshots/{snap}/{DM}"]
        self.path = f.filename
        self.fields = {name: (ds.dtype, ds.shape[1:]) for name, ds in self.group.items()}
        self.n_particles = len(self.group["Coordinates"]) if "Coordinates" in self.group else 0

    def field_attrs(self, field: str) -> dict:
        return dict(self.group[field].attrs) if field in self.fields else {}

    def read_rows(self, field: str, rows: np.ndarray) -> np.ndarray:
        """1-D PartType1/field at the given rows (sorted, unique), one point read."""
        try:
            return read_points(self.group[field], rows)
        except OSError as exc:
            raise DataError(f"reading {DM}/{field} through {self.path} failed ({exc}); a file it "
                            "points to is missing or corrupt") from exc

    def read(self, field: str, start: int, stop: int) -> np.ndarray:
        if field not in self.fields:
            raise DataError(f"{self.path} has no {DM}/{field}; it has {sorted(self.fields)}")
        try:
            return self.group[field][start:stop]
        except OSError as exc:
            raise DataError(f"reading {DM}/{field} rows {start}..{stop} through {self.path} failed "
                            f"({exc}); a file it points to is missing or corrupt") from exc

    def close(self):
        pass


class VirtualCatalog(CatalogCounts):
    """/Group and /Subhalo through simulation.hdf5's /Groups/NNN virtual datasets."""

    def __init__(self, f: h5py.File, snap: int):
        self.file, self.snap, self.path = f, snap, f.filename
        self._cache = {}
        attrs = f["Header"].attrs
        self.totals = {"Group": int(attrs.get("Ngroups_Total", 0)),
                       "Subhalo": int(attrs.get("Nsubgroups_Total", 0))}

    def names(self, kind: str) -> set:
        grp = self.file.get(f"Groups/{self.snap}/{kind}")
        return set(grp.keys()) if grp is not None else set()

    def field(self, kind: str, name: str) -> np.ndarray:
        key = (kind, name)
        if self.totals[kind] == 0:
            dtype, tail = CATALOG_FIELDS[kind].get(name, (np.float32, ()))
            return np.zeros((0,) + tail, dtype=dtype)
        if key not in self._cache:
            if name not in self.names(kind):
                raise DataError(f"{self.path} has no Groups/{self.snap}/{kind}/{name}; it has "
                                f"{sorted(self.names(kind))}")
            try:
                self._cache[key] = self.file[f"Groups/{self.snap}/{kind}/{name}"][()]
            except OSError as exc:
                raise DataError(f"reading {kind}/{name} through {self.path} failed ({exc}); a "
                                "catalog file it points to is missing or corrupt") from exc
        return self._cache[key]

    def close(self):
        self._cache.clear()


def complete_snaps(f: h5py.File) -> list[int]:
    """Snapshots the file has both particles and a catalog for, ascending."""
    have = set(f.get("Snapshots", {}).keys()) & set(f.get("Groups", {}).keys())
    return sorted(int(k) for k in have if k.isdigit())


def snapshot_attrs(path: Path, f: h5py.File, snap: int) -> dict:
    """Header attributes of one snapshot: /Snapshots/N/Header when the file has one, else /Header
    (the whole file's, right when it holds one snapshot), else the first chunk it points to."""
    if f"Snapshots/{snap}/Header" in f:
        return dict(f[f"Snapshots/{snap}/Header"].attrs)
    if len(complete_snaps(f)) <= 1 and "Header" in f:
        return dict(f["Header"].attrs)
    coords = f.get(f"Snapshots/{snap}/{DM}/Coordinates")
    if coords is not None and coords.is_virtual:
        name = coords.virtual_sources()[0].file_name
        source = Path(name) if Path(name).is_absolute() else Path(path).parent / name
        with open_hdf5(source, f"file {source} (used by {path})") as chunk:
            return dict(chunk["Header"].attrs)
    return dict(f["Header"].attrs)


def list_outputs(path: Path) -> list[OutputInfo]:
    with open_hdf5(path, "file") as f:
        infos = []
        for snap in complete_snaps(f):
            attrs = snapshot_attrs(path, f, snap)
            a = float(attrs.get("Time", 1.0))
            infos.append(OutputInfo(snap, float(attrs.get("Redshift", 1.0 / a - 1.0)), a))
        return infos


def _check_sources(path: Path, f: h5py.File, snap: int):
    """Open every file the virtual datasets point to once: HDF5 would silently read fill values
    (zeros) from a source it cannot open, so a missing or corrupt chunk must fail here."""
    sources = set()

    def collect(_name, obj):
        if isinstance(obj, h5py.Dataset) and obj.is_virtual:
            sources.update(src.file_name for src in obj.virtual_sources())

    for top in (f"Snapshots/{snap}", f"Groups/{snap}", f"Offsets/{snap}"):
        if top in f:
            f[top].visititems(collect)
    for name in sorted(sources):
        source = Path(name) if Path(name).is_absolute() else Path(path).parent / name
        if not source.is_file():
            raise DataError(f"{path} points to {source}, which does not exist; the simulation is "
                            "incomplete: copy or regenerate the missing file")
        open_hdf5(source, f"file {source} (used by {path})").close()


def open_virtual(path: Path, f: h5py.File, snap: int | None, offsets: str):
    """A Simulation (kind 'virtual') over an open simulation.hdf5; closes `f` on failure."""
    from deephalo_core.data.gadget import check_group_order
    from deephalo_core.data.simulation import Simulation, make_header

    try:
        have = complete_snaps(f)
        if snap is None and have:
            snap = have[-1]
        if snap is None or int(snap) not in have:
            raise DataError(f"snapshot {snap} is not in {path}; it holds snapshots "
                            f"{have or 'none'}: pass one of them as snap")
        snap = int(snap)
        _check_sources(path, f, snap)
        snap_offsets = None
        if offsets in ("auto", "file") and f"Offsets/{snap}/Group/SnapByType" in f:
            try:
                snap_offsets = {"group": f[f"Offsets/{snap}/Group/SnapByType"][()],
                                "subhalo": f[f"Offsets/{snap}/Subhalo/SnapByType"][()]}
            except (OSError, KeyError) as exc:
                raise DataError(f"reading offsets through {path} failed ({exc}); the offsets file "
                                "it points to is missing or corrupt: open with "
                                "offsets='computed'") from exc
        elif offsets == "file":
            raise DataError(f"{path} has no Offsets/{snap}; open with offsets='computed'")
        elif offsets not in ("auto", "computed"):
            raise DataError(f"offsets must be 'auto', 'file' or 'computed', got {offsets!r}")
        particles, catalog = VirtualParticles(f, snap), VirtualCatalog(f, snap)
        header = make_header(snapshot_attrs(path, f, snap), path, catalog.n_groups,
                             catalog.n_subhalos, 1, snap)
        sim = Simulation(path, snap, "virtual", header, particles, catalog, snap_offsets,
                         owned_file=f)
        check_group_order(sim, strict=False)  # TNG's order, checked where the IDs allow
        return sim
    except Exception:
        f.close()
        raise
