"""How much of a model's ARI is lost to its fuzz decision: a diagnosis, not a method.

    .venv/bin/python scripts/fuzz_oracle.py --data OUTPUT_DIR [--snaps all] [--split test]
        [--method default] [--min-particles 1000]

For each output (redshift) it prints the mean ARI over the split's halos of at least
--min-particles, as predicted and with SUBFIND's own fuzz put in place of the model's fuzz/primary
calls: a particle SUBFIND calls fuzz and the model primary or fuzz becomes fuzz, a particle the model
calls fuzz and SUBFIND does not becomes primary. Satellite assignments stay the model's. The gap is
what a perfect fuzz decision would add.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere as a script

from deephalo_core.data import open_simulation  # noqa: E402
from deephalo_core.dataset import expand_sources, groups_in_split  # noqa: E402
from deephalo_core.methods import load_method  # noqa: E402
from deephalo_core.metrics import halo_metrics  # noqa: E402


def with_true_fuzz(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """`pred` with SUBFIND's fuzz/primary split wherever the model said primary or fuzz."""
    out = pred.copy()
    out[(true < 0) & (pred <= 0)] = -1
    out[(true >= 0) & (pred < 0)] = 0
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, nargs="+")
    p.add_argument("--snaps", default="all")
    p.add_argument("--split", default="test")
    p.add_argument("--method", default="default", help="anything `evaluate` takes")
    p.add_argument("--min-particles", type=int, default=1000)
    args = p.parse_args(argv)
    method = load_method(args.method)
    print("| output | z | halos | ARI | ARI with SUBFIND's fuzz |")
    print("|---|---|---|---|---|")
    for path, snap in expand_sources(args.data, args.snaps):
        with open_simulation(path, snap=snap) as sim:
            halos = sim.halos[sim.halos["n_particles"] >= args.min_particles]
            aris, fixed = [], []
            for group in groups_in_split(halos, args.split):
                halo = sim.load_halo(group)
                true, pred = np.asarray(halo.labels), np.asarray(method.predict(halo))
                aris.append(halo_metrics(true, pred)["ari"])
                fixed.append(halo_metrics(true, with_true_fuzz(true, pred))["ari"])
            print(f"| {path}#{sim.header.snap} | {sim.header.redshift:.2f} | {len(aris)} | "
                  f"{np.mean(aris):.3f} | {np.mean(fixed):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
