"""Variants of the shipped GADGET-4 sample, written by the tests: the same particles and catalog in
other layouts (pieces, AREPO names) or damaged on purpose (reordered, wrong offsets).

Every variant starts from `deephalo_core.paths.SAMPLE_DIR` (GADGET-4's single-file layout:
`snapshot_NNN.hdf5` + `fof_subhalo_tab_NNN.hdf5`), never from data outside the repository.
"""
import shutil
from pathlib import Path

import h5py
import numpy as np

from deephalo_core.paths import SAMPLE_DIR


def copy_sample(out: Path, snaps=(0, 1)) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for snap in snaps:
        for name in (f"snapshot_{snap:03d}.hdf5", f"fof_subhalo_tab_{snap:03d}.hdf5"):
            shutil.copyfile(SAMPLE_DIR / name, out / name)
    return out


def _copy_attrs(source, target, rename=None):
    for name, value in source.attrs.items():
        target.attrs[(rename or {}).get(name, name)] = value


def _write_particles(path: Path, src: h5py.File, lo: int, hi: int, n_files: int):
    with h5py.File(path, "w") as out:
        for group in ("Header", "Parameters", "Config"):
            _copy_attrs(src[group], out.create_group(group))
        this = np.array(src["Header"].attrs["NumPart_ThisFile"])
        this[1] = hi - lo
        out["Header"].attrs["NumPart_ThisFile"] = this
        out["Header"].attrs["NumFilesPerSnapshot"] = np.int32(n_files)
        dm = out.create_group("PartType1")
        for name, ds in src["PartType1"].items():
            _copy_attrs(ds, dm.create_dataset(name, data=ds[lo:hi]))


def _write_catalog(path: Path, src: h5py.File, groups: tuple, subs: tuple, n_files: int):
    with h5py.File(path, "w") as out:
        for group in ("Header", "Parameters", "Config"):
            _copy_attrs(src[group], out.create_group(group))
        out["Header"].attrs["Ngroups_ThisFile"] = np.uint64(groups[1] - groups[0])
        out["Header"].attrs["Nsubhalos_ThisFile"] = np.uint64(subs[1] - subs[0])
        out["Header"].attrs["NumFiles"] = np.int32(n_files)
        out.create_group("IDs")
        for kind, (lo, hi) in (("Group", groups), ("Subhalo", subs)):
            grp = out.create_group(kind)
            if hi > lo:
                for name, ds in src[kind].items():
                    grp.create_dataset(name, data=ds[lo:hi])


def split_output(out: Path, snap: int, particle_bounds: list[int], n_catalog_files: int,
                 prefix: str = "snapshot") -> Path:
    """The sample's output `snap` as GADGET-4 writes it in pieces: snapdir_NNN/<prefix>_NNN.K.hdf5
    cut at `particle_bounds` (inner boundaries) and groups_NNN/fof_subhalo_tab_NNN.K.hdf5 with the
    groups spread evenly over `n_catalog_files` (each group's subhalos in its file)."""
    out = Path(out)
    snapdir, groupdir = out / f"snapdir_{snap:03d}", out / f"groups_{snap:03d}"
    snapdir.mkdir(parents=True, exist_ok=True)
    groupdir.mkdir(parents=True, exist_ok=True)
    with h5py.File(SAMPLE_DIR / f"snapshot_{snap:03d}.hdf5", "r") as src:
        n = int(src["Header"].attrs["NumPart_Total"][1])
        bounds = [0, *particle_bounds, n]
        for k in range(len(bounds) - 1):
            _write_particles(snapdir / f"{prefix}_{snap:03d}.{k}.hdf5", src, bounds[k],
                             bounds[k + 1], len(bounds) - 1)
    with h5py.File(SAMPLE_DIR / f"fof_subhalo_tab_{snap:03d}.hdf5", "r") as src:
        n_groups = len(src["Group/GroupLen"])
        group_bounds = np.linspace(0, n_groups, n_catalog_files + 1).astype(int)
        sub_bounds = np.searchsorted(src["Subhalo/SubhaloGroupNr"][()], group_bounds)
        for k in range(n_catalog_files):
            _write_catalog(groupdir / f"fof_subhalo_tab_{snap:03d}.{k}.hdf5", src,
                           (group_bounds[k], group_bounds[k + 1]),
                           (sub_bounds[k], sub_bounds[k + 1]), n_catalog_files)
    return out


def arepo_output(out: Path, snap: int) -> Path:
    """The sample's output `snap` named as AREPO writes one file: snap_NNN.hdf5 with cosmology in
    /Header, fof_subhalo_tab_NNN.hdf5 with TNG's names (SubhaloGrNr, Nsubgroups_*) and no
    GroupOffsetType / SubhaloOffsetType."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLE_DIR / f"snapshot_{snap:03d}.hdf5", out / f"snap_{snap:03d}.hdf5")
    with h5py.File(out / f"snap_{snap:03d}.hdf5", "r+") as f:
        for name in ("HubbleParam", "Omega0", "OmegaLambda"):
            f["Header"].attrs[name] = f["Parameters"].attrs[name]
    rename = {"Nsubhalos_ThisFile": "Nsubgroups_ThisFile", "Nsubhalos_Total": "Nsubgroups_Total"}
    with h5py.File(SAMPLE_DIR / f"fof_subhalo_tab_{snap:03d}.hdf5", "r") as src, \
            h5py.File(out / f"fof_subhalo_tab_{snap:03d}.hdf5", "w") as dst:
        for group in ("Header", "Parameters", "Config"):
            _copy_attrs(src[group], dst.create_group(group), rename)
        for kind in ("Group", "Subhalo"):
            grp = dst.create_group(kind)
            for name, ds in src[kind].items():
                if name not in ("GroupOffsetType", "SubhaloOffsetType"):
                    grp.create_dataset("SubhaloGrNr" if name == "SubhaloGroupNr" else name,
                                       data=ds[()])
    return out


def reorder_particles(output: Path, snap: int, rows: slice, seed: int = 0):
    """Shuffle the particles in `rows` of one single-file snapshot (every dataset alike): the same
    particles, no longer in the catalog's order."""
    with h5py.File(Path(output) / f"snapshot_{snap:03d}.hdf5", "r+") as f:
        n = len(range(*rows.indices(len(f["PartType1/ParticleIDs"]))))
        order = np.random.default_rng(seed).permutation(n)
        for ds in f["PartType1"].values():
            ds[rows] = ds[rows][order]


def sample_arrays(snap: int) -> dict:
    """The raw sample: PartType1 datasets, /Header attributes and the catalog, as stored."""
    with h5py.File(SAMPLE_DIR / f"snapshot_{snap:03d}.hdf5", "r") as f:
        arrays = {name: ds[()] for name, ds in f["PartType1"].items()}
        arrays["header"] = dict(f["Header"].attrs)
        arrays["parameters"] = dict(f["Parameters"].attrs)
    with h5py.File(SAMPLE_DIR / f"fof_subhalo_tab_{snap:03d}.hdf5", "r") as f:
        for kind in ("Group", "Subhalo"):
            arrays.update({name: ds[()] for name, ds in f[kind].items()})
    return arrays
