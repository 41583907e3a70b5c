"""`open_simulation(path)`: one object over a TNG snapshot, whichever form it comes in.

Sources: a simulation root (`output/snapdir_NNN`, `output/groups_NNN`, optional
`postprocessing/offsets/offsets_NNN.hdf5`), its `output` directory, a `simulation.hdf5` of virtual
datasets, or a web-API cutout (one halo). Each source gives the same three things: a particle
reader (global PartType1 index ranges), a catalog (whole /Group and /Subhalo columns) and the
header; `Simulation` builds the halo tables and loads halos from them.

A FoF group that Subfind left without subhalos loads normally with every label -1 (all fuzz);
asking for its primary subhalo (`primary_subhalo`) is the error.
"""
import re
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from deephalo_core.data import offsets as offsets_mod
from deephalo_core.data.groupcat import CATALOG_FIELDS, CatalogCounts, ChunkedCatalog, groupdir
from deephalo_core.data.snapshot import DM, ChunkedParticles, open_hdf5, snapdir, total_count
from deephalo_core.data.types import Halo, Header
from deephalo_core.errors import DataError

CORE_FIELDS = ("Coordinates", "Velocities", "Potential", "ParticleIDs")
OPTIONAL_FIELDS = ("Velocities", "Potential", "ParticleIDs")
MASS_UNIT = 1e10  # catalog masses are in 1e10 Msun/h


class VirtualParticles:
    """PartType1 through simulation.hdf5's /Snapshots/NNN/PartType1 virtual datasets."""

    def __init__(self, f: h5py.File, snap: int):
        self.group = f[f"Snapshots/{snap}/{DM}"]
        self.path = f.filename
        self.fields = {name: (ds.dtype, ds.shape[1:]) for name, ds in self.group.items()}
        self.n_particles = len(self.group["Coordinates"]) if "Coordinates" in self.group else 0

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


class Simulation:
    """A snapshot's halos and particles. Use `open_simulation`; close() or `with` releases files."""

    def __init__(self, path: Path, snap: int, kind: str, header: Header, particles, catalog,
                 snap_offsets: dict | None, has_labels: bool = True, owned_file=None):
        self.path, self.snap, self.kind, self.header = Path(path), snap, kind, header
        self._particles, self._catalog = particles, catalog
        self._owned_file = owned_file
        self.has_labels = has_labels
        self.offset_source = "file" if snap_offsets is not None else "computed"
        self._check_catalog()
        if snap_offsets is None:
            group_off = offsets_mod.group_offsets(self._cat("Group", "GroupLenType"))
            sub_off = offsets_mod.subhalo_offsets(
                group_off, self._cat("Group", "GroupFirstSub"),
                self._cat("Subhalo", "SubhaloLenType"), self._cat("Subhalo", "SubhaloGrNr"))
            snap_offsets = {"group": group_off, "subhalo": sub_off}
        self.group_offsets = np.asarray(snap_offsets["group"], dtype=np.int64)[:, 1]
        self.subhalo_offsets = np.asarray(snap_offsets["subhalo"], dtype=np.int64)[:, 1]
        for name, arr, n in (("Group", self.group_offsets, catalog.n_groups),
                             ("Subhalo", self.subhalo_offsets, catalog.n_subhalos)):
            if len(arr) != n:
                raise DataError(f"offsets for {self.path}: {name}/SnapByType has {len(arr)} rows "
                                f"but the catalog has {n} objects; the offsets file belongs to "
                                "another snapshot: delete or regenerate it")
        self.group_lengths = self._cat("Group", "GroupLenType")[:, 1].astype(np.int64)
        self.subhalo_lengths = self._cat("Subhalo", "SubhaloLenType")[:, 1].astype(np.int64)
        self._group_pos = self._cat("Group", "GroupPos").astype(np.float64)
        self._group_nsubs = self._cat("Group", "GroupNsubs").astype(np.int64)
        self._group_first_sub = self._cat("Group", "GroupFirstSub").astype(np.int64)
        self._halos = None
        self._halo_rows = {}
        self._label_plan = None  # built on the first load_halo: see _plan_labels
        self._missing = tuple(name for name in OPTIONAL_FIELDS if name not in particles.fields)
        self._subhalos = None

    # -- catalog ---------------------------------------------------------------------------
    def _check_catalog(self):
        need = {"Group": ["GroupLenType", "GroupNsubs", "GroupFirstSub", "GroupPos"],
                "Subhalo": ["SubhaloLenType", "SubhaloGrNr"]}
        for kind, names in need.items():
            if self._catalog.totals[kind] == 0:
                continue
            absent = [n for n in names if n not in self._catalog.names(kind)]
            if absent:
                raise DataError(f"group catalog of {self.path} lacks required field(s) "
                                f"{', '.join(f'{kind}/{n}' for n in absent)}; the catalog is "
                                "incomplete: use a full FoF/Subfind catalog")

    def _cat(self, kind: str, name: str) -> np.ndarray:
        return self._catalog.field(kind, name)

    def _cat_or_nan(self, kind: str, name: str, shape) -> np.ndarray:
        if name in self._catalog.names(kind):
            return self._cat(kind, name).astype(np.float64)
        return np.full(shape, np.nan)

    @property
    def available_fields(self) -> list:
        """PartType1 datasets this source holds."""
        return sorted(self._particles.fields)

    @property
    def halos(self) -> pd.DataFrame:
        """One row per FoF group, from the catalog alone (no particle reads)."""
        if self._halos is None:
            n = self._catalog.n_groups
            n_sub = self._group_nsubs
            in_subs = np.bincount(self._cat("Subhalo", "SubhaloGrNr").astype(np.int64),
                                  weights=self.subhalo_lengths, minlength=n)[:n].astype(np.int64) \
                if self._catalog.n_subhalos else np.zeros(n, np.int64)
            n_fuzz = self.group_lengths - in_subs
            mass = self._cat_or_nan("Group", "GroupMass", n) * MASS_UNIT
            if not self.has_labels:
                n_fuzz = np.zeros(n, np.int64)
            self._halos = pd.DataFrame({
                "group_id": np.arange(n, dtype=np.int64),
                "n_particles": self.group_lengths,
                "n_subhalos": n_sub,
                "n_fuzz": n_fuzz,
                "fuzz_fraction": (n_fuzz / np.maximum(self.group_lengths, 1)
                                  if self.has_labels else np.full(n, np.nan)),
                "mass_msun_h": mass,
                "m200_msun_h": self._cat_or_nan("Group", "Group_M_Crit200", n) * MASS_UNIT,
                "r200_ckpc_h": self._cat_or_nan("Group", "Group_R_Crit200", n),
                "pos_x": self._group_pos[:, 0], "pos_y": self._group_pos[:, 1],
                "pos_z": self._group_pos[:, 2],
                "offset": self.group_offsets,
            })
        return self._halos

    @property
    def subhalos(self) -> pd.DataFrame:
        """One row per Subfind subhalo; rank 0 is its group's primary."""
        if self._subhalos is None:
            n = self._catalog.n_subhalos
            grnr = (self._cat("Subhalo", "SubhaloGrNr").astype(np.int64) if n
                    else np.zeros(0, np.int64))
            first = self._group_first_sub[grnr] if n else grnr
            pos = self._cat_or_nan("Subhalo", "SubhaloPos", (n, 3))
            vel = self._cat_or_nan("Subhalo", "SubhaloVel", (n, 3))
            self._subhalos = pd.DataFrame({
                "subhalo_id": np.arange(n, dtype=np.int64), "group_id": grnr,
                "rank": np.arange(n, dtype=np.int64) - first,
                "n_particles": self.subhalo_lengths,
                "mass_msun_h": self._cat_or_nan("Subhalo", "SubhaloMass", n) * MASS_UNIT,
                "pos_x": pos[:, 0], "pos_y": pos[:, 1], "pos_z": pos[:, 2],
                "vel_x": vel[:, 0], "vel_y": vel[:, 1], "vel_z": vel[:, 2],
                "vmax": self._cat_or_nan("Subhalo", "SubhaloVmax", n),
            })
        return self._subhalos

    def halo_row(self, group_id: int) -> dict:
        """The group's row of `halos` as plain Python scalars (ints stay ints)."""
        g = self._check_group(group_id)
        row = self._halo_rows.get(g)
        if row is None:
            if len(self._halo_rows) >= 4096:  # bounded: a whole-snapshot pass visits every group
                self._halo_rows.clear()
            row = self._halo_rows[g] = {c: self.halos[c].iat[g].item() for c in self.halos.columns}
        return dict(row)

    # -- particles -------------------------------------------------------------------------
    def _check_group(self, group_id) -> int:
        n = self._catalog.n_groups
        if not isinstance(group_id, (int, np.integer)) or not 0 <= int(group_id) < n:
            raise DataError(f"group id {group_id!r} is out of range for {self.path}: it has {n} "
                            f"FoF groups, ids 0..{n - 1}")
        return int(group_id)

    def group_slice(self, group_id: int) -> tuple[int, int]:
        """[start, stop) of the group's particles in the snapshot's PartType1 order."""
        g = self._check_group(group_id)
        start = int(self.group_offsets[g])
        return start, start + int(self.group_lengths[g])

    def subhalo_slice(self, subhalo_id: int) -> tuple[int, int]:
        n = self._catalog.n_subhalos
        if not isinstance(subhalo_id, (int, np.integer)) or not 0 <= int(subhalo_id) < n:
            raise DataError(f"subhalo id {subhalo_id!r} is out of range for {self.path}: it has "
                            f"{n} subhalos")
        start = int(self.subhalo_offsets[subhalo_id])
        return start, start + int(self.subhalo_lengths[subhalo_id])

    def primary_subhalo(self, group_id: int) -> int:
        """Global Subfind id of the group's primary (rank 0) subhalo."""
        g = self._check_group(group_id)
        first = int(self._group_first_sub[g])
        if first < 0 or self._group_nsubs[g] == 0:
            raise DataError(f"FoF group {g} of {self.path} has no subhalos (GroupFirstSub = -1): "
                            "Subfind left all its particles as fuzz; load_halo(g) still works, "
                            "with every label -1")
        return first

    def read_particles(self, start: int, stop: int, fields=CORE_FIELDS) -> dict:
        """Raw PartType1 fields for global rows [start, stop), in snapshot units."""
        if not 0 <= start <= stop <= self.header.n_particles:
            raise DataError(f"particle rows {start}..{stop} are outside "
                            f"0..{self.header.n_particles} of {self.path}")
        return {name: self._particles.read(name, start, stop) for name in fields}

    def load_halo(self, group_id: int, extra_fields=()) -> Halo:
        """One FoF group's particles, unwrapped around GroupPos, with Subfind labels."""
        g = self._check_group(group_id)
        if extra_fields:
            extra_fields = tuple(extra_fields)
            unknown = [name for name in extra_fields if name not in self._particles.fields]
            if unknown:
                raise DataError(f"{self.path} has no PartType1 field(s) {unknown}; available: "
                                f"{self.available_fields}")
        start = int(self.group_offsets[g])
        stop = start + int(self.group_lengths[g])
        read, missing = self._particles.read, self._missing
        center = self._group_pos[g]
        pos = _unwrap(read("Coordinates", start, stop), center, self.header.box_size)
        vel = None if "Velocities" in missing else read("Velocities", start, stop)
        if vel is not None and self.header.time != 1.0:
            vel *= np.float32(np.sqrt(self.header.time))  # peculiar velocity: v * sqrt(a)
        labels, subhalo_ids = None, _NO_SUBHALOS
        if self.has_labels:
            labels, subhalo_ids = self._labels(g, start, stop)
        return Halo(
            group_id=g, pos=pos, vel=vel,
            potential=None if "Potential" in missing else read("Potential", start, stop),
            ids=None if "ParticleIDs" in missing else read("ParticleIDs", start, stop),
            labels=labels, subhalo_ids=subhalo_ids, center=center.copy(),
            catalog=self.halo_row(g), particle_mass=self.header.particle_mass,
            box_size=self.header.box_size, offset=start,
            extra={name: read(name, start, stop) for name in extra_fields},
            missing=missing,
        )

    def _labels(self, g: int, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        if self._label_plan is None:
            self._label_plan = _plan_labels(self.group_offsets, self.group_lengths,
                                            self._group_first_sub, self._group_nsubs,
                                            self.subhalo_offsets, self.subhalo_lengths)
        values, counts, slot_start, in_order = self._label_plan
        n_sub = int(self._group_nsubs[g])
        if in_order[g]:  # the usual case: one np.repeat over the group's precomputed run lengths
            at = int(slot_start[g])
            labels = np.repeat(values[at:at + n_sub + 1], counts[at:at + n_sub + 1])
            if n_sub == 0:
                return labels, _NO_SUBHALOS
            first = int(self._group_first_sub[g])
            return labels, np.arange(first, first + n_sub, dtype=np.int64)
        labels = np.full(stop - start, -1, dtype=np.int32)
        if n_sub == 0:
            return labels, _NO_SUBHALOS
        first = int(self._group_first_sub[g])
        subhalo_ids = np.arange(first, first + n_sub, dtype=np.int64)
        for rank, s in enumerate(subhalo_ids):
            lo = int(self.subhalo_offsets[s]) - start
            hi = lo + int(self.subhalo_lengths[s])
            if lo < 0 or hi > stop - start:
                raise DataError(f"subhalo {s} (rank {rank} of group {g}) of {self.path} lies at "
                                f"rows {lo + start}..{hi + start}, outside its group's "
                                f"{start}..{stop}; the offsets and catalog disagree: regenerate "
                                "the offsets file or open with offsets='computed'")
            labels[lo:hi] = rank
        return labels, subhalo_ids

    # -- lifetime --------------------------------------------------------------------------
    def close(self):
        self._particles.close()
        self._catalog.close()
        if self._owned_file is not None:
            self._owned_file.close()
            self._owned_file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"Simulation({str(self.path)!r}, snap={self.snap}, kind={self.kind!r}, "
                f"groups={self.header.n_groups}, particles={self.header.n_particles})")


_NO_SUBHALOS = np.zeros(0, np.int64)
_NO_SUBHALOS.flags.writeable = False  # shared by every halo without subhalos


def _plan_labels(group_offsets, group_lengths, first_sub, n_subs, subhalo_offsets,
                 subhalo_lengths) -> tuple:
    """Run-length form of every group's Subfind labels, so a load builds them with one np.repeat.

    Group g owns slots slot_start[g] .. slot_start[g] + n_subs[g]: its subhalo ranks 0.. with
    their lengths, then -1 with the fuzz count. in_order[g] says the group's subhalos are
    consecutive from the group's first particle and fit inside it (the TNG particle order); a
    group that breaks this is labelled from its offsets one subhalo at a time, which also reports
    the disagreement.
    """
    n_groups, n_total = len(group_lengths), len(subhalo_lengths)
    valid = (n_subs == 0) | ((first_sub >= 0) & (first_sub + n_subs <= n_total))
    n_own = np.where(valid, n_subs, 0)
    slot_start = offsets_mod.exclusive_cumsum(n_own + 1)
    group_of_slot = np.repeat(np.arange(n_groups, dtype=np.int64), n_own + 1)
    rank = np.arange(len(group_of_slot), dtype=np.int64) - slot_start[group_of_slot]
    is_sub = rank < n_own[group_of_slot]
    sub_group, sub_rank = group_of_slot[is_sub], rank[is_sub]
    sub_id = first_sub[sub_group] + sub_rank
    sub_len = subhalo_lengths[sub_id]
    running = np.cumsum(sub_len) - sub_len  # exclusive running length over all groups' subhalos
    first_index = offsets_mod.exclusive_cumsum(n_own)  # each group's first row in the sub_* arrays
    within = running - running[first_index[sub_group]]  # start of each subhalo within its group
    misplaced = subhalo_offsets[sub_id] != group_offsets[sub_group] + within
    in_subs = np.bincount(sub_group, weights=sub_len, minlength=n_groups).astype(np.int64)
    fuzz = group_lengths - in_subs
    in_order = valid & (fuzz >= 0) & (np.bincount(sub_group[misplaced], minlength=n_groups) == 0)
    values = np.where(is_sub, rank, -1).astype(np.int32)
    counts = np.empty(len(group_of_slot), dtype=np.int64)
    counts[is_sub] = sub_len
    counts[~is_sub] = np.maximum(fuzz, 0)
    return values, counts, slot_start, in_order


def _unwrap(coords: np.ndarray, center: np.ndarray, box: float) -> np.ndarray:
    """Each particle at its minimum image around `center`, float64, in place on `coords`."""
    global _unwrap_in_place
    pos = np.ascontiguousarray(coords, dtype=np.float64)
    if len(pos):
        if _unwrap_in_place is None:  # numba loads on first use, not with the data layer
            from deephalo_core.data.periodic import unwrap_in_place as _unwrap_in_place
        _unwrap_in_place(pos, np.asarray(center, dtype=np.float64), float(box))
    return pos


_unwrap_in_place = None


def _header(attrs, n_groups: int, n_subhalos: int, n_chunks: int, snap: int) -> Header:
    return Header(
        box_size=float(attrs["BoxSize"]), hubble_param=float(attrs["HubbleParam"]),
        redshift=float(attrs["Redshift"]), time=float(attrs["Time"]),
        particle_mass=float(np.asarray(attrs["MassTable"])[1]),
        n_particles=total_count(attrs), n_groups=n_groups, n_subhalos=n_subhalos,
        n_chunks=n_chunks, snap=snap)


def _available_snaps(output: Path) -> list[int]:
    return sorted(int(m.group(1)) for p in output.glob("snapdir_*")
                  if (m := re.fullmatch(r"snapdir_(\d+)", p.name)))


def _resolve_dirs(path: Path) -> tuple[Path, Path]:
    """(simulation root, output dir) for a root or an output directory."""
    if (path / "output").is_dir():
        return path, path / "output"
    if any(path.glob("snapdir_*")) or any(path.glob("groups_*")):
        return path.parent, path
    if (path / "simulation.hdf5").is_file():
        return path, None
    raise DataError(f"{path} is not a TNG simulation layout: expected output/snapdir_NNN and "
                    "output/groups_NNN under a simulation root (or snapdir_NNN/groups_NNN in an "
                    "output directory, or a simulation.hdf5); point to the simulation root, its "
                    "output directory, simulation.hdf5 or a cutout file")


def _open_chunked(path: Path, root: Path, output: Path, snap: int, offsets: str) -> Simulation:
    if not snapdir(output, snap).is_dir() or not groupdir(output, snap).is_dir():
        have = _available_snaps(output)
        what = "snapshot" if not snapdir(output, snap).is_dir() else "group catalog"
        raise DataError(f"{what} {snap} is not in {output} (looked for snapdir_{snap:03d} and "
                        f"groups_{snap:03d}); snapshots there: {have or 'none'}: pass one of "
                        "them as snap")
    offsets_path = root / "postprocessing" / "offsets" / f"offsets_{snap:03d}.hdf5"
    snap_offsets = None
    if offsets == "file" or (offsets == "auto" and offsets_path.is_file()):
        if not offsets_path.is_file():
            raise DataError(f"offsets file {offsets_path} does not exist; open with "
                            "offsets='auto' or 'computed' to compute offsets from the catalog")
        snap_offsets = offsets_mod.read_offsets_file(offsets_path)
    elif offsets not in ("auto", "computed"):
        raise DataError(f"offsets must be 'auto', 'file' or 'computed', got {offsets!r}")
    particles = ChunkedParticles(output, snap)
    if snap_offsets is not None:
        file_snap = snap_offsets["file_snap"]
        if (len(file_snap) != particles.n_chunks
                or np.any(file_snap[:, 1] != particles.chunk_starts)):
            particles.close()
            raise DataError(f"offsets file {offsets_path} does not match the snapshot chunks in "
                            f"{snapdir(output, snap)} (FileOffsets/SnapByType differs); it belongs "
                            "to another snapshot: delete or regenerate it")
    catalog = ChunkedCatalog(output, snap)
    header = _header(particles.header_attrs, catalog.n_groups, catalog.n_subhalos,
                     particles.n_chunks, snap)
    try:
        return Simulation(root, snap, "snapshot", header, particles, catalog, snap_offsets)
    except Exception:
        particles.close()
        raise


def _check_virtual_sources(path: Path, f: h5py.File, snap: int):
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


def _open_virtual(path: Path, f: h5py.File, snap: int, offsets: str) -> Simulation:
    if f"Snapshots/{snap}" not in f or f"Groups/{snap}" not in f:
        have = sorted(int(k) for k in f.get("Snapshots", {}).keys())
        f.close()
        raise DataError(f"snapshot {snap} is not in {path}; it holds snapshots {have or 'none'}: "
                        "pass one of them as snap")
    try:
        _check_virtual_sources(path, f, snap)
    except DataError:
        f.close()
        raise
    snap_offsets = None
    if offsets in ("auto", "file") and f"Offsets/{snap}/Group/SnapByType" in f:
        try:
            snap_offsets = {"group": f[f"Offsets/{snap}/Group/SnapByType"][()],
                            "subhalo": f[f"Offsets/{snap}/Subhalo/SnapByType"][()]}
        except (OSError, KeyError) as exc:
            f.close()
            raise DataError(f"reading offsets through {path} failed ({exc}); the offsets file "
                            "it points to is missing or corrupt: open with offsets='computed'"
                            ) from exc
    elif offsets == "file":
        f.close()
        raise DataError(f"{path} has no Offsets/{snap}; open with offsets='computed'")
    particles, catalog = VirtualParticles(f, snap), VirtualCatalog(f, snap)
    header = _header(f["Header"].attrs, catalog.n_groups, catalog.n_subhalos, 1, snap)
    try:
        return Simulation(path, snap, "virtual", header, particles, catalog, snap_offsets,
                          owned_file=f)
    except Exception:
        f.close()
        raise


def open_simulation(path, snap: int = 99, *, offsets: str = "auto",
                    subhalo_lengths=None) -> Simulation:
    """Open a TNG simulation root, its `output` dir, a `simulation.hdf5` or a web-API cutout.

    offsets: 'auto' (the offsets file when present, else computed from GroupLenType and
    SubhaloLenType), 'file' or 'computed'. subhalo_lengths: for a cutout only, the particle counts
    of its subhalos in file order (primary first), which gives it ground-truth labels.
    Raises DataError for anything that is not a readable TNG source.
    """
    from deephalo_core.data.cutout import open_cutout, is_cutout

    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist: give a TNG simulation root, its output "
                        "directory, a simulation.hdf5 or a cutout .hdf5 file")
    if path.is_dir():
        root, output = _resolve_dirs(path)
        if output is None:
            path = root / "simulation.hdf5"
        else:
            if subhalo_lengths is not None:
                raise DataError("subhalo_lengths applies to cutout files only; a snapshot takes "
                                "its labels from its group catalog")
            return _open_chunked(path, root, output, snap, offsets)
    f = open_hdf5(path, "file")
    if "Snapshots" in f:
        if subhalo_lengths is not None:
            f.close()
            raise DataError("subhalo_lengths applies to cutout files only")
        return _open_virtual(path, f, snap, offsets)
    if is_cutout(f):
        return open_cutout(path, f, subhalo_lengths=subhalo_lengths)
    if "Group" in f or "Subhalo" in f:
        kind = "a group catalog chunk"
    elif DM in f or "Header" in f:
        kind = "a snapshot chunk"
    else:
        kind = "not a TNG file"
    f.close()
    raise DataError(f"{path} is {kind}, not a simulation.hdf5 or a cutout; open the simulation "
                    "root (the directory holding output/) instead")
