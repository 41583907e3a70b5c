"""`python -m deephalo_core synth`: write a synthetic snapshot in the TNG file layout."""
import argparse
import time
from pathlib import Path

from deephalo_core.synth.generator import PRESETS, build


def generate(out_dir, seed: int = 0, n_groups: int = 150, n_chunks: int = 4,
             preset: str | None = None, progress: bool = True) -> Path:
    """Build a synthetic snapshot and write it under out_dir (a TNG simulation root)."""
    from deephalo_core.data.write import write_snapshot

    header, particles, groups, subhalos = build(seed=seed, n_groups=n_groups, preset=preset,
                                                progress=progress)
    write_snapshot(out_dir, header=header, particles=particles, groups=groups, subhalos=subhalos,
                   n_chunks=n_chunks)
    return Path(out_dir)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deephalo_core synth",
                                     description="Write a synthetic TNG50-4-Dark-like snapshot "
                                     "(FoF groups with Subfind labels) in the TNG file layout.")
    parser.add_argument("--out", required=True, type=Path, help="simulation root to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--groups", type=int, default=150, help="number of FoF groups")
    parser.add_argument("--chunks", type=int, default=4, help="snapshot chunks")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None,
                        help="tng50-4: TNG50-4-Dark's particle count (19.7M; large, minutes)")
    args = parser.parse_args(argv)
    if args.groups < 1 or args.chunks < 1:
        parser.error("--groups and --chunks must be at least 1")
    t0 = time.perf_counter()
    root = generate(args.out, seed=args.seed, n_groups=args.groups, n_chunks=args.chunks,
                    preset=args.preset, progress=True)
    seconds = time.perf_counter() - t0
    files = sorted(p for p in root.rglob("*.hdf5") if p.is_file())
    total = 0
    for p in files:
        size = p.stat().st_size
        total += size
        print(f"{size / 1e6:10.2f} MB  {p.relative_to(root)}")
    print(f"{total / 1e6:10.2f} MB  total in {root}")
    print(f"generated in {seconds:.1f} s")
    return 0
