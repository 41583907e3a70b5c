"""`open_simulation(path)`: one object over a snapshot and its FOF/SUBFIND catalog, whichever code
wrote it and whichever form it comes in; `list_outputs(path)`: the outputs a path holds.

Each layout has its opener: `tng` (a TNG simulation root or its `output` directory, with the
optional offsets file), `gadget` (GADGET-4 and AREPO output directories, or one snapshot file with
its catalog beside it), `virtual` (TNG's simulation.hdf5) and `cutout` (a TNG web-API cutout of
one halo); `outputs` names their files. Each gives the same three things: a particle reader
(global PartType1 index ranges), a catalog (whole /Group and /Subhalo columns, TNG names) and the
header; `Simulation` builds the halo tables and loads halos from them, in the same units for every
code (see `types.Halo`).

A FoF group that Subfind left without subhalos loads normally with every label -1 (all fuzz);
asking for its primary subhalo (`primary_subhalo`) is the error.
"""
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from deephalo_core.data import offsets as offsets_mod
from deephalo_core.data import outputs
from deephalo_core.data.snapshot import DM, open_hdf5, total_count
from deephalo_core.data.types import Halo, Header, OutputInfo
from deephalo_core.errors import DataError
from deephalo_core.units import TNG50_4_DARK

CORE_FIELDS = ("Coordinates", "Velocities", "Potential", "ParticleIDs")
OPTIONAL_FIELDS = ("Velocities", "Potential", "ParticleIDs")
MASS_UNIT = 1e10  # catalog masses are in 1e10 Msun/h
# stored * a ** A_SCALING is peculiar km/s and physical (km/s)^2, in GADGET-4, AREPO and TNG alike;
# a dataset's own a_scaling attribute overrides it
A_SCALING = {"Velocities": 0.5, "Potential": -1.0}


class Simulation:
    """A snapshot's halos and particles. Use `open_simulation`; close() or `with` releases files."""

    def __init__(self, path: Path, snap: int, kind: str, header: Header, particles, catalog,
                 snap_offsets: dict | None, has_labels: bool = True, owned_file=None):
        self.path, self.snap, self.kind, self.header = Path(path), snap, kind, header
        self._particles, self._catalog = particles, catalog
        self._owned_file = owned_file
        self.has_labels = has_labels
        # "file": TNG's offsets file; "computed": from the lengths; "catalog": GADGET-4's own
        # offsets, equal to the computed ones (set by the opener once checked)
        self.offset_source = "file" if snap_offsets is not None else "computed"
        self._check_catalog()
        if snap_offsets is None:
            snap_offsets = self.offsets_from_lengths()
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
        self._halo_columns = None
        self._label_plan = None  # built on the first load_halo: see _plan_labels
        self._missing = tuple(name for name in OPTIONAL_FIELDS if name not in particles.fields)
        self._subhalos = None
        self.unit_factors = {name: self._unit_factor(name) for name in A_SCALING}

    def _unit_factor(self, field: str) -> np.float32:
        """a ** a_scaling for a stored field: the dataset's own attribute, else the convention."""
        attrs = self._particles.field_attrs(field) if field in self._particles.fields else {}
        scaling = float(np.asarray(attrs.get("a_scaling", A_SCALING[field])).reshape(-1)[0])
        return np.float32(self.header.time ** scaling)

    def offsets_from_lengths(self) -> dict:
        """Group/SnapByType and Subhalo/SnapByType (N, 6) as the catalog's lengths give them."""
        group_off = offsets_mod.group_offsets(self._cat("Group", "GroupLenType"))
        sub_off = offsets_mod.subhalo_offsets(
            group_off, self._cat("Group", "GroupFirstSub"),
            self._cat("Subhalo", "SubhaloLenType"), self._cat("Subhalo", "SubhaloGrNr"))
        return {"group": group_off, "subhalo": sub_off}

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
            if self._halo_columns is None:  # plain arrays: a pandas lookup per cell costs ~1 ms a row
                self._halo_columns = {c: self.halos[c].to_numpy() for c in self.halos.columns}
            row = self._halo_rows[g] = {c: col[g].item() for c, col in self._halo_columns.items()}
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
        if vel is not None and self.unit_factors["Velocities"] != 1:
            vel *= self.unit_factors["Velocities"]  # peculiar: stored * sqrt(a)
        potential = None if "Potential" in missing else read("Potential", start, stop)
        if potential is not None and self.unit_factors["Potential"] != 1:
            potential *= self.unit_factors["Potential"]  # physical: stored / a
        labels, subhalo_ids = None, _NO_SUBHALOS
        if self.has_labels:
            labels, subhalo_ids = self._labels(g, start, stop)
        return Halo(
            group_id=g, pos=pos, vel=vel, potential=potential,
            ids=None if "ParticleIDs" in missing else read("ParticleIDs", start, stop),
            labels=labels, subhalo_ids=subhalo_ids, center=center.copy(),
            catalog=self.halo_row(g), particle_mass=self.header.particle_mass,
            box_size=self.header.box_size, offset=start,
            extra={name: read(name, start, stop) for name in extra_fields},
            missing=missing, time=self.header.time, omega0=self.header.omega0,
            omega_lambda=self.header.omega_lambda,
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
    """Each particle at its minimum image around `center`, float64, in place on `coords`.

    Halos below NUMBA_UNWRAP_MIN take NumPy's few passes (a millisecond or two); larger ones the
    one-pass numba kernel, whose import and compilation (~0.6 s of CPU once per process) only pays
    off there: a whole-snapshot pass over a small box never loads it."""
    pos = np.ascontiguousarray(coords, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64)
    if len(pos) >= NUMBA_UNWRAP_MIN:
        if _unwrap_in_place is None:  # numba loads on first use, not with the data layer
            _load_unwrap_kernel()
        _unwrap_in_place(pos, center, float(box))
    elif len(pos):
        shift = np.round((pos - center) / box)  # -1, 0 or 1 box per axis; exact where 0
        if shift.any():
            pos -= box * shift
    return pos


NUMBA_UNWRAP_MIN = 100_000
_unwrap_in_place = None


def _load_unwrap_kernel() -> None:
    """Import the numba kernel (the one place that does) and load its compiled code."""
    global _unwrap_in_place
    from deephalo_core.data.periodic import unwrap_in_place

    unwrap_in_place(np.zeros((1, 3)), np.zeros(3), 1.0)  # loads the compiled kernel from its cache
    _unwrap_in_place = unwrap_in_place


def warm_up_in_background(sim) -> threading.Thread | None:
    """Load the numba unwrap kernel in a daemon thread when `sim` has a halo large enough to use it,
    so the first such halo a user opens does not wait for it (~0.5 s of import and cache loading
    in a fresh process). The thread, or None when no halo needs the kernel or it is loaded."""
    if _unwrap_in_place is not None or not len(sim.halos):
        return None
    if int(sim.halos["n_particles"].max()) < NUMBA_UNWRAP_MIN:
        return None
    thread = threading.Thread(target=_load_unwrap_kernel, name="deephalo-unwrap-warm-up", daemon=True)
    thread.start()
    return thread


def make_header(attrs, where, n_groups: int, n_subhalos: int, n_chunks: int, snap: int,
                parameters=None) -> Header:
    """The Header from a snapshot's /Header attributes; cosmology from /Header, else /Parameters
    (GADGET-4 keeps it there), else TNG's values."""
    missing = [name for name in ("BoxSize", "MassTable", "NumPart_Total") if name not in attrs]
    if missing:
        raise DataError(f"{where} lacks Header attribute(s) {', '.join(missing)}; it is not a "
                        "TNG, GADGET-4 or AREPO snapshot")
    params = parameters or {}

    def cosmology(name: str, default: float) -> float:
        for source in (attrs, params):
            if name in source:
                return float(source[name])
        return default

    a = float(attrs.get("Time", 1.0))
    return Header(
        box_size=float(attrs["BoxSize"]),
        hubble_param=cosmology("HubbleParam", TNG50_4_DARK["hubble_param"]),
        redshift=float(attrs.get("Redshift", 1.0 / a - 1.0)), time=a,
        particle_mass=float(np.asarray(attrs["MassTable"])[1]),
        n_particles=total_count(attrs), n_groups=n_groups, n_subhalos=n_subhalos,
        n_chunks=n_chunks, snap=snap, omega0=cosmology("Omega0", Header.omega0),
        omega_lambda=cosmology("OmegaLambda", Header.omega_lambda))


def _locate(path) -> tuple:
    """What a path is: ("outputs", root, output dir, and the snapshot number and file when the
    path is one snapshot file, else None, None),
    ("file", path, open h5py.File) for simulation.hdf5 / a cutout / anything else."""
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"{path} does not exist: give a simulation root or output directory (TNG, "
                        "GADGET-4 or AREPO), one snapshot file, a simulation.hdf5 or a cutout "
                        ".hdf5 file")
    if path.is_dir():
        output = path / "output" if (path / "output").is_dir() else path
        if outputs.scan(output):
            return ("outputs", path if output != path else path.parent, output, None, None)
        if (path / "simulation.hdf5").is_file():
            return ("file", path / "simulation.hdf5", open_hdf5(path / "simulation.hdf5", "file"))
        raise DataError(f"{path} is not a TNG, GADGET-4 or AREPO output: expected "
                        "snapshot_NNN.hdf5 or snapdir_NNN with fof_subhalo_tab_NNN.hdf5 or "
                        "groups_NNN (GADGET-4, AREPO; TNG's output/snapdir_NNN and "
                        "output/groups_NNN under a simulation root), or a simulation.hdf5; point "
                        "to the simulation root, its output directory, one snapshot file, "
                        "simulation.hdf5 or a cutout file")
    f = open_hdf5(path, "file")
    header = f["Header"].attrs if "Header" in f else {}
    single = outputs.SINGLE_SNAPSHOT.fullmatch(path.name)
    if single and "Snapshots" not in f and "CutoutType" not in header and "CutoutID" not in header:
        f.close()
        return ("outputs", path.parent, path.parent, int(single.group(2)), path)
    return ("file", path, f)


def _pick(where: tuple, snap: int | None) -> outputs.OutputFiles:
    _, _, output, named, file = where
    if named is not None:
        if snap is not None and int(snap) != named:
            raise DataError(f"snapshot file {file} is output {named}, not {snap}: pass snap=None "
                            f"(or {named}), or open {output} to choose any of its outputs")
        snap = named
    return outputs.pick(output, snap)


def open_simulation(path, snap: int | None = None, *, offsets: str = "auto",
                    subhalo_lengths=None) -> Simulation:
    """Open a snapshot with its FOF/SUBFIND catalog: a TNG simulation root or its `output` dir, a
    GADGET-4 or AREPO output directory, one snapshot file (its catalog beside it), a
    `simulation.hdf5` or a web-API cutout.

    snap: the output number; None takes the last output that has both particles and a catalog.
    offsets: 'auto' (TNG's offsets file, else the catalog's own GroupOffsetType/SubhaloOffsetType,
    checked against the lengths, else computed from GroupLenType and SubhaloLenType), 'file' or
    'computed'. subhalo_lengths: for a cutout only, the particle counts of its subhalos in file
    order (primary first), which gives it ground-truth labels.
    Raises DataError for anything that is not a readable, group-ordered source.
    """
    from deephalo_core.data.cutout import is_cutout, open_cutout
    from deephalo_core.data.gadget import open_gadget
    from deephalo_core.data.tng import open_tng
    from deephalo_core.data.virtual import open_virtual

    where = _locate(path)
    if where[0] == "outputs":
        if subhalo_lengths is not None:
            raise DataError("subhalo_lengths applies to cutout files only; a snapshot takes "
                            "its labels from its group catalog")
        files = _pick(where, snap)
        if files.particles.tng_layout and files.catalog.tng_layout:
            return open_tng(where[1], files, offsets)
        return open_gadget(where[2], files, offsets)
    _, path, f = where
    if "Snapshots" in f:
        if subhalo_lengths is not None:
            f.close()
            raise DataError("subhalo_lengths applies to cutout files only")
        return open_virtual(path, f, snap, offsets)
    if is_cutout(f):
        return open_cutout(path, f, subhalo_lengths=subhalo_lengths)
    if "Group" in f or "Subhalo" in f:
        kind = "a group catalog chunk"
    elif DM in f or "Header" in f:
        kind = "a snapshot chunk"
    else:
        kind = "not a simulation file"
    f.close()
    raise DataError(f"{path} is {kind}, not a simulation.hdf5 or a cutout; open the output "
                    f"directory ({path.parent}) or the simulation root holding output/ instead")


def list_outputs(path) -> list[OutputInfo]:
    """The outputs at `path` that have both particles and a catalog, sorted by snapshot number;
    reads only headers. A cutout gives its one output."""
    from deephalo_core.data.cutout import is_cutout
    from deephalo_core.data.virtual import list_outputs as virtual_outputs

    where = _locate(path)
    if where[0] == "outputs":
        _, _, output, named, _ = where
        found = outputs.scan(output)
        snaps = [named] if named is not None else outputs.complete_snaps(found)
        infos = []
        for snap in snaps:
            files = found.get(snap)
            if files is None or not files.complete:
                _pick(where, snap)  # raises, saying what is missing
            with open_hdf5(files.particles.path(0), "snapshot chunk") as f:
                attrs = f["Header"].attrs if "Header" in f else {}
                a = float(attrs.get("Time", 1.0))
                infos.append(OutputInfo(snap, float(attrs.get("Redshift", 1.0 / a - 1.0)), a))
        return infos
    _, path, f = where
    with f:
        if "Snapshots" in f:
            f.close()
            return virtual_outputs(path)
        if is_cutout(f):
            attrs = f["Header"].attrs
            a = float(attrs.get("Time", 1.0))
            return [OutputInfo(int(attrs.get("SnapshotNumber", -1)),
                               float(attrs.get("Redshift", 1.0 / a - 1.0)), a)]
    # not a simulation: the opener's message says what it is
    open_simulation(path)
    return []
