"""Build the shipped real sample `assets/sample/L8750-N64-s181170/output/` from a GADGET-4 output.

    .venv/bin/python scripts/make_sample.py SOURCE_OUTPUT_DIR [--out DIR]

SOURCE_OUTPUT_DIR holds GADGET-4's single-file outputs `snapshot_NNN.hdf5` + `fof_subhalo_tab_NNN.hdf5`
of the run L8750-N64-s181170 (its full outputs are not shipped). Every output with both files is written to --out in
the same layout, so the project's GADGET-4 reader is the one that reads it.

What it keeps and drops:
- The catalog `fof_subhalo_tab_NNN.hdf5` is copied byte for byte: every /Group and /Subhalo
  dataset, /Header, /Parameters and /Config as GADGET-4 wrote them.
- The snapshot keeps only the particles in FOF groups. GADGET-4 stores a snapshot in group order
  when FOF/SUBFIND run at output time, groups first and the particles in no group after all of
  them, so these are the first Nids_Total = sum(GroupLenType) particles: the catalog's offsets
  and lengths stay valid unchanged. Every PartType1 dataset (Coordinates, Velocities, Potential,
  ParticleIDs) keeps its dtype, attributes (a_scaling, to_cgs, ...) and contiguous layout.
  /Parameters and /Config are copied as they are; /Header too, except NumPart_ThisFile and
  NumPart_Total, rewritten (same uint64 dtype) to the particles kept.
- Dropped: the particles in no FOF group (about half the box), which no halo, label or catalog
  quantity refers to.
Files are written atomically; it checks the result opens and labels like the original.
"""
import argparse
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deephalo_core.atomic import atomic_path  # noqa: E402
from deephalo_core.data import open_simulation  # noqa: E402
from deephalo_core.data.write import atomic_hdf5  # noqa: E402
from deephalo_core.errors import DataError  # noqa: E402

DEFAULT_OUT = REPO / "assets" / "sample" / "L8750-N64-s181170" / "output"


def copy_attrs(source, target):
    for name, value in source.attrs.items():
        target.attrs[name] = value


def particles_in_groups(catalog: Path) -> int:
    with h5py.File(catalog, "r") as f:
        n = int(f["Header"].attrs["Nids_Total"])
        lengths = f["Group/GroupLenType"][:, 1].astype(np.int64)
        offsets = f["Group/GroupOffsetType"][:, 1]
    if lengths.sum() != n or (len(lengths) and offsets[-1] + lengths[-1] != n):
        raise DataError(f"{catalog}: the groups do not fill the first Nids_Total = {n} particles; "
                        "this is not a group-ordered GADGET-4 output")
    return n


def write_snapshot(source: Path, target: Path, n_keep: int):
    with h5py.File(source, "r") as src, atomic_hdf5(target) as out:
        for group in ("Header", "Parameters", "Config"):
            copy_attrs(src[group], out.create_group(group))
        header = out["Header"]
        for name in ("NumPart_ThisFile", "NumPart_Total"):
            counts = np.array(src["Header"].attrs[name])
            if counts[1] < n_keep or np.any(np.delete(counts, 1) != 0):
                raise DataError(f"{source}: {name} = {counts}; expected dark matter only")
            counts[1] = n_keep
            header.attrs[name] = counts
        dm = out.create_group("PartType1")
        for name, ds in src["PartType1"].items():
            copy_attrs(ds, dm.create_dataset(name, data=ds[:n_keep]))


def check(source_dir: Path, out_dir: Path, snap: int):
    with open_simulation(source_dir, snap) as orig, open_simulation(out_dir, snap) as sample:
        assert sample.halos.equals(orig.halos) and sample.subhalos.equals(orig.subhalos)
        for g in range(orig.header.n_groups):
            a, b = orig.load_halo(g), sample.load_halo(g)
            for name in ("pos", "vel", "potential", "ids", "labels"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", type=Path, help="the run's GADGET-4 output directory")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    snaps = sorted(int(path.stem.split("_")[-1]) for path in args.source.glob("snapshot_*.hdf5")
                   if (args.source / f"fof_subhalo_tab_{path.stem.split('_')[-1]}.hdf5").is_file())
    if not snaps:
        raise SystemExit(f"{args.source} has no snapshot_NNN.hdf5 with fof_subhalo_tab_NNN.hdf5")
    args.out.mkdir(parents=True, exist_ok=True)
    for snap in snaps:
        catalog = args.source / f"fof_subhalo_tab_{snap:03d}.hdf5"
        n_keep = particles_in_groups(catalog)
        with atomic_path(args.out / catalog.name) as tmp:
            shutil.copyfile(catalog, tmp)
        write_snapshot(args.source / f"snapshot_{snap:03d}.hdf5",
                       args.out / f"snapshot_{snap:03d}.hdf5", n_keep)
        check(args.source, args.out, snap)
        print(f"output {snap:03d}: kept {n_keep:,} particles in FOF groups")
    total = sum(path.stat().st_size for path in args.out.iterdir())
    print(f"{args.out}: {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
