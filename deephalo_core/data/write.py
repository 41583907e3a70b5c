"""Write a snapshot in the IllustrisTNG file layout: particle chunks, FoF/Subfind catalog chunks,
the offsets file and a `simulation.hdf5` of virtual datasets (tng-format.md).

Every file is written under a temporary name in its own directory and moved into place with
os.replace, so a reader never sees half a file. Particles are cast and written one chunk at a
time, so a 20M-particle snapshot never needs a second full copy in memory.
"""
import contextlib
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from deephalo_core import units
from deephalo_core.atomic import atomic_path
from deephalo_core.data import groupcat, offsets, snapshot
from deephalo_core.errors import DataError

REQUIRED_HEADER = ("BoxSize", "HubbleParam", "Omega0", "OmegaBaryon", "OmegaLambda", "Redshift",
                   "Time", "MassTable")
GIT_COMMIT = np.bytes_(b"0000000000000000000000000000000000000000")
GIT_DATE = np.bytes_(b"Thu Jan 1 00:00:00 1970 +0000")


@contextlib.contextmanager
def atomic_hdf5(path: Path, **kwargs):
    """An h5py.File open for writing at a temporary name next to `path`, moved onto `path` only
    when the block finishes without error (removed otherwise)."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", **kwargs) as f:
            yield f


def split_counts(n: int, parts: int) -> np.ndarray:
    """n items in `parts` contiguous, nearly equal pieces (the first n % parts get one more)."""
    counts = np.full(parts, n // parts, dtype=np.int64)
    counts[: n % parts] += 1
    return counts


def _cast(name: str, values, table: dict, where: str, n: int | None = None) -> np.ndarray:
    if name not in table:
        raise DataError(f"{where}: unknown dataset {name!r}; known: {sorted(table)}")
    dtype, tail = table[name]
    arr = np.asarray(values)
    if arr.shape[1:] != tail or (n is not None and len(arr) != n):
        want = ("N" if n is None else str(n),) + tail
        raise DataError(f"{where}/{name} has shape {arr.shape}, expected {want}")
    return arr.astype(dtype, copy=False)


def _catalog(arrays: dict, kind: str) -> dict:
    """Catalog arrays cast to TNG dtypes, with Len filled from LenType where absent."""
    table = groupcat.CATALOG_FIELDS[kind]
    arrays = dict(arrays)
    if f"{kind}LenType" not in arrays:
        raise DataError(f"{kind} catalog needs {kind}LenType (N,6); got {sorted(arrays)}")
    if f"{kind}Len" not in arrays:
        arrays[f"{kind}Len"] = np.asarray(arrays[f"{kind}LenType"]).sum(axis=1)
    n = len(arrays[f"{kind}LenType"])
    return {name: _cast(name, values, table, f"/{kind}", n) for name, values in arrays.items()}


def _snapshot_header(header: dict, n_total: int, n_this: int, n_chunks: int) -> dict:
    num_this = np.zeros(6, dtype=np.int32)
    num_this[1] = n_this
    num_total = np.zeros(6, dtype=np.uint32)
    num_total[1] = n_total & 0xFFFFFFFF
    high = np.zeros(6, dtype=np.uint32)
    high[1] = n_total >> 32
    attrs = {name: np.float64(header[name]) for name in REQUIRED_HEADER if name != "MassTable"}
    attrs.update(
        MassTable=np.asarray(header["MassTable"], dtype=np.float64).reshape(6),
        NumFilesPerSnapshot=np.int32(n_chunks),
        NumPart_ThisFile=num_this, NumPart_Total=num_total, NumPart_Total_HighWord=high,
        UnitLength_in_cm=np.float64(units.UNIT_LENGTH_CM),
        UnitMass_in_g=np.float64(units.UNIT_MASS_G),
        UnitVelocity_in_cm_per_s=np.float64(units.UNIT_VELOCITY_CM_S),
        Flag_Cooling=np.int32(0), Flag_DoublePrecision=np.int32(0), Flag_Feedback=np.int32(0),
        Flag_Metals=np.int32(0), Flag_Sfr=np.int32(0), Flag_StellarAge=np.int32(0),
        Composition_vector_length=np.int32(0), Git_commit=GIT_COMMIT, Git_date=GIT_DATE,
    )
    return attrs


def _config_and_parameters(f: h5py.File, header: dict):
    """TNG-like /Config (compile-time switches) and /Parameters (run-time parameters)."""
    config = f.create_group("Config")
    for name, value in dict(NTYPES=6, PERIODIC=1, SELFGRAVITY=1, GADGET2_HEADER=0, FOF=1,
                            SUBFIND=1, FOF_PRIMARY_LINK_TYPES=2, FOF_SECONDARY_LINK_TYPES=1,
                            TREE_BASED_TIMESTEPS=1, PMGRID=4096, HAVE_HDF5=1,
                            SAVE_HSML_IN_SNAPSHOT=1, SUBFIND_CALC_MORE=1).items():
        config.attrs[name] = np.int32(value)
    params = f.create_group("Parameters")
    for name in ("BoxSize", "HubbleParam", "Omega0", "OmegaBaryon", "OmegaLambda"):
        params.attrs[name] = np.float64(header[name])
    params.attrs["ComovingIntegrationOn"] = np.int32(1)
    params.attrs["PeriodicBoundariesOn"] = np.int32(1)
    params.attrs["UnitLength_in_cm"] = np.float64(units.UNIT_LENGTH_CM)
    params.attrs["UnitMass_in_g"] = np.float64(units.UNIT_MASS_G)
    params.attrs["UnitVelocity_in_cm_per_s"] = np.float64(units.UNIT_VELOCITY_CM_S)
    softening = header.get("Softening", units.TNG50_4_DARK["softening"])
    params.attrs["SofteningComovingType1"] = np.float64(softening)
    params.attrs["MinFoFGroupSize"] = np.int32(32)
    params.attrs["DesLinkNgb"] = np.int32(20)
    params.attrs["TimeBegin"] = np.float64(1.0 / 128.0)
    params.attrs["TimeMax"] = np.float64(1.0)


def _catalog_chunk_bounds(groups: dict, subhalos: dict, n_cat: int) -> tuple:
    """Group and subhalo index bounds per catalog chunk: groups split evenly, and each group's
    subhalos kept in the same chunk as the group."""
    n_groups = len(groups["GroupLenType"])
    group_bounds = np.concatenate([[0], np.cumsum(split_counts(n_groups, n_cat))])
    grnr = subhalos["SubhaloGrNr"] if "SubhaloGrNr" in subhalos else np.zeros(0, np.int32)
    sub_bounds = np.searchsorted(grnr, group_bounds, side="left")
    return group_bounds, sub_bounds


def _check_consistency(groups: dict, subhalos: dict, n_particles: int):
    n_in_groups = int(groups["GroupLenType"][:, 1].astype(np.int64).sum())
    if n_in_groups > n_particles:
        raise DataError(f"groups hold {n_in_groups} particles but only {n_particles} were given")
    n_subs = len(subhalos["SubhaloLenType"])
    if n_subs:
        if "SubhaloGrNr" not in subhalos:
            raise DataError("/Subhalo needs SubhaloGrNr to place subhalos in their groups")
        for name in ("GroupNsubs", "GroupFirstSub"):
            if name not in groups:
                raise DataError(f"/Group needs {name} when there are subhalos")
        if np.any(np.diff(subhalos["SubhaloGrNr"]) < 0):
            raise DataError("SubhaloGrNr must be sorted: subhalos are stored group by group")
        nsubs = groups["GroupNsubs"].astype(np.int64)
        if int(nsubs.sum()) != n_subs:
            raise DataError(f"GroupNsubs sums to {int(nsubs.sum())} but there are {n_subs} "
                            "subhalos")
        grnr = subhalos["SubhaloGrNr"].astype(np.int64)
        if not np.array_equal(np.bincount(grnr, minlength=len(nsubs)), nsubs):
            raise DataError("SubhaloGrNr does not match GroupNsubs (subhalos per group differ)")
        first = np.where(nsubs > 0, offsets.exclusive_cumsum(nsubs), -1)
        if not np.array_equal(groups["GroupFirstSub"].astype(np.int64), first):
            bad = int(np.nonzero(groups["GroupFirstSub"] != first)[0][0])
            got = int(groups["GroupFirstSub"][bad])
            raise DataError(f"GroupFirstSub[{bad}] is {got}, expected {int(first[bad])} (its "
                            "first subhalo, or -1 when it has none)")
        in_subs = np.bincount(grnr, weights=subhalos["SubhaloLenType"][:, 1],
                              minlength=len(nsubs))
        over = np.nonzero(in_subs > groups["GroupLenType"][:, 1])[0]
        if len(over):
            g = int(over[0])
            raise DataError(f"group {g}: its subhalos hold {int(in_subs[g])} particles, more than "
                            f"its GroupLenType {int(groups['GroupLenType'][g, 1])}")


def _write_catalog_chunk(path: Path, kind_arrays: dict, bounds: dict, header_attrs: dict,
                         header: dict):
    with atomic_hdf5(path) as f:
        h = f.create_group("Header")
        for name, value in header_attrs.items():
            h.attrs[name] = value
        for kind, (lo, hi) in bounds.items():
            grp = f.create_group(kind)
            h.attrs[f"{groupcat.COUNT_ATTR[kind]}_ThisFile"] = np.int32(hi - lo)
            if hi > lo:
                for name, arr in kind_arrays[kind].items():
                    grp.create_dataset(name, data=arr[lo:hi])
        f.create_group("IDs")
        _config_and_parameters(f, header)


def _write_offsets(path: Path, group_off, sub_off, file_group, file_sub, file_snap):
    with atomic_hdf5(path) as f:
        f.create_dataset("Group/SnapByType", data=group_off)
        f.create_dataset("Subhalo/SnapByType", data=sub_off)
        f.create_dataset("FileOffsets/Group", data=file_group)
        f.create_dataset("FileOffsets/Subhalo", data=file_sub)
        f.create_dataset("FileOffsets/SnapByType", data=file_snap)


def _virtual(f: h5py.File, name: str, pieces: list, dtype, tail: tuple):
    """A virtual dataset at `name` concatenating (relative file, dataset, length) pieces."""
    total = sum(n for _, _, n in pieces)
    layout = h5py.VirtualLayout(shape=(total,) + tuple(tail), dtype=dtype)
    at = 0
    for rel, dset, n in pieces:
        if n:
            layout[at:at + n] = h5py.VirtualSource(rel, dset, shape=(n,) + tuple(tail), dtype=dtype)
            at += n
    f.create_virtual_dataset(name, layout)


def write_virtual_file(root: Path, snap: int, snap_header: dict, particle_fields: dict,
                       particle_counts, catalog_fields: dict, catalog_counts: dict,
                       n_groups: int, n_subhalos: int):
    """simulation.hdf5: HDF5 virtual datasets with paths relative to `root` over the snapshot,
    catalog and offsets files."""
    root = Path(root)
    # Virtual datasets need the 1.10 file format; no newer, so older HDF5 builds still read it.
    with atomic_hdf5(root / "simulation.hdf5", libver=("v110", "v110")) as f:
        h = f.create_group("Header")
        for name, value in snap_header.items():
            if name != "NumPart_ThisFile":
                h.attrs[name] = value
        h.attrs["NumFilesPerSnapshot"] = np.int32(1)
        h.attrs["Ngroups_Total"] = np.int32(n_groups)
        h.attrs["Nsubgroups_Total"] = np.int32(n_subhalos)
        out = Path("output")
        snap_rel = [str(snapshot.chunk_path(out, snap, k)) for k in range(len(particle_counts))]
        for name, (dtype, tail) in particle_fields.items():
            pieces = [(rel, f"PartType1/{name}", int(n))
                      for rel, n in zip(snap_rel, particle_counts)]
            _virtual(f, f"Snapshots/{snap}/PartType1/{name}", pieces, dtype, tail)
        for kind, fields in catalog_fields.items():
            counts = catalog_counts[kind]
            cat_rel = [str(groupcat.chunk_path(out, snap, k)) for k in range(len(counts))]
            for name, (dtype, tail) in fields.items():
                pieces = [(rel, f"{kind}/{name}", int(n)) for rel, n in zip(cat_rel, counts)]
                _virtual(f, f"Groups/{snap}/{kind}/{name}", pieces, dtype, tail)
        off_rel = str(offsets_relpath(snap))
        for kind, n in (("Group", n_groups), ("Subhalo", n_subhalos)):
            _virtual(f, f"Offsets/{snap}/{kind}/SnapByType",
                     [(off_rel, f"{kind}/SnapByType", n)], np.int64, (6,))


def offsets_relpath(snap: int) -> Path:
    """The offsets file relative to the simulation root (where illustris_python looks for it)."""
    return Path("postprocessing") / "offsets" / f"offsets_{snap:03d}.hdf5"


def write_snapshot(root, *, header: dict, particles: dict, groups: dict, subhalos: dict,
                   n_chunks: int = 4, n_catalog_chunks: int | None = None, snap: int = 99,
                   progress: bool = False) -> Path:
    """Write a TNG-layout snapshot under `root` (a simulation root) and return Path(root).

    header: BoxSize, HubbleParam, Omega0, OmegaBaryon, OmegaLambda, Redshift, Time, MassTable (6).
    particles: PartType1 dataset -> array in snapshot order (Coordinates required).
    groups / subhalos: /Group and /Subhalo dataset -> array (GroupLenType, GroupNsubs,
    GroupFirstSub, SubhaloLenType, SubhaloGrNr needed; GroupLen/SubhaloLen filled if absent).
    progress: a tqdm bar over the particle chunks.
    """
    root = Path(root)
    missing = [name for name in REQUIRED_HEADER if name not in header]
    if missing:
        raise DataError(f"write_snapshot: header lacks {missing}")
    if "Coordinates" not in particles:
        raise DataError("write_snapshot: particles need at least 'Coordinates'")
    n_particles = len(particles["Coordinates"])
    for name, arr in particles.items():
        if name not in snapshot.PARTICLE_FIELDS:
            raise DataError(f"write_snapshot: unknown PartType1 dataset {name!r}; known: "
                            f"{sorted(snapshot.PARTICLE_FIELDS)}")
        dtype, tail = snapshot.PARTICLE_FIELDS[name]
        if len(arr) != n_particles or tuple(arr.shape[1:]) != tail:
            raise DataError(f"write_snapshot: PartType1/{name} has shape {arr.shape}, expected "
                            f"({n_particles},{','.join(map(str, tail))})")
    if n_chunks < 1:
        raise DataError(f"write_snapshot: n_chunks must be >= 1, got {n_chunks}")
    n_cat = n_chunks if n_catalog_chunks is None else int(n_catalog_chunks)
    if n_cat < 1:
        raise DataError(f"write_snapshot: n_catalog_chunks must be >= 1, got {n_cat}")

    groups = dict(groups)
    subhalos = dict(subhalos) if subhalos else {"SubhaloLenType": np.zeros((0, 6), np.int32)}
    if len(subhalos["SubhaloLenType"]) == 0:
        n = len(groups.get("GroupLenType", ()))
        groups.setdefault("GroupNsubs", np.zeros(n, np.int32))
        groups.setdefault("GroupFirstSub", np.full(n, -1, np.int32))
        subhalos.setdefault("SubhaloGrNr", np.zeros(0, np.int32))
    groups = _catalog(groups, "Group")
    subhalos = _catalog(subhalos, "Subhalo")
    _check_consistency(groups, subhalos, n_particles)
    n_groups, n_subs = len(groups["GroupLenType"]), len(subhalos["SubhaloLenType"])

    output = root / "output"
    for directory in (snapshot.snapdir(output, snap), groupcat.groupdir(output, snap)):
        directory.mkdir(parents=True, exist_ok=True)

    # Particle chunks, one at a time.
    counts = split_counts(n_particles, n_chunks)
    starts = offsets.chunk_starts(counts)
    snap_header = _snapshot_header(header, n_particles, 0, n_chunks)
    for k in tqdm(range(n_chunks), desc="snapshot chunks", unit="chunk", disable=not progress):
        lo, hi = int(starts[k]), int(starts[k] + counts[k])
        with atomic_hdf5(snapshot.chunk_path(output, snap, k)) as f:
            h = f.create_group("Header")
            for name, value in _snapshot_header(header, n_particles, hi - lo, n_chunks).items():
                h.attrs[name] = value
            _config_and_parameters(f, header)
            if hi > lo:
                grp = f.create_group(snapshot.DM)
                for name, arr in particles.items():
                    dtype, _ = snapshot.PARTICLE_FIELDS[name]
                    grp.create_dataset(name, data=np.asarray(arr[lo:hi]).astype(dtype, copy=False))

    # Catalog chunks.
    group_bounds, sub_bounds = _catalog_chunk_bounds(groups, subhalos, n_cat)
    cat_header = dict(
        Ngroups_Total=np.int32(n_groups), Nsubgroups_Total=np.int32(n_subs),
        Nids_ThisFile=np.int32(0), Nids_Total=np.int64(0), NumFiles=np.int32(n_cat),
        FlagDoubleprecision=np.int32(0),
        **{name: np.float64(header[name]) for name in ("Time", "Redshift", "HubbleParam",
                                                       "BoxSize", "Omega0", "OmegaLambda")})
    for k in range(n_cat):
        _write_catalog_chunk(
            groupcat.chunk_path(output, snap, k), {"Group": groups, "Subhalo": subhalos},
            {"Group": (group_bounds[k], group_bounds[k + 1]),
             "Subhalo": (sub_bounds[k], sub_bounds[k + 1])}, cat_header, header)

    # Offsets, from the lengths.
    group_off = offsets.group_offsets(groups["GroupLenType"])
    sub_off = offsets.subhalo_offsets(group_off, groups.get("GroupFirstSub", np.zeros(0)),
                                      subhalos["SubhaloLenType"],
                                      subhalos.get("SubhaloGrNr", np.zeros(0)))
    file_snap = np.zeros((n_chunks, 6), dtype=np.int64)
    file_snap[:, 1] = starts
    _write_offsets(root / offsets_relpath(snap), group_off, sub_off,
                   group_bounds[:-1].astype(np.int64), sub_bounds[:-1].astype(np.int64), file_snap)

    write_virtual_file(
        root, snap, snap_header,
        {name: snapshot.PARTICLE_FIELDS[name] for name in particles}, counts,
        {"Group": {n: groupcat.GROUP_FIELDS[n] for n in groups},
         "Subhalo": {n: groupcat.SUBHALO_FIELDS[n] for n in subhalos}},
        {"Group": np.diff(group_bounds), "Subhalo": np.diff(sub_bounds)}, n_groups, n_subs)

    _remove_stale_chunks(output, snap, n_chunks, n_cat)
    return root


def _remove_stale_chunks(output: Path, snap: int, n_chunks: int, n_cat: int):
    """Chunks beyond the new counts, left from an earlier write into the same root."""
    for path_of, n in ((snapshot.chunk_path, n_chunks), (groupcat.chunk_path, n_cat)):
        k = n
        while path_of(output, snap, k).exists():
            path_of(output, snap, k).unlink()
            k += 1
