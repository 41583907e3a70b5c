"""Score several models and baselines on real snapshots and print the README's real-data table.

    .venv/bin/python scripts/real_eval.py --data OUTPUT_DIR [--snaps all] [--split test]
        --method "label=SPEC" [--method ...] [--json OUT.json]

SPEC is anything `python -m deephalo_core evaluate` takes (default, all-primary, hdbscan, a
checkpoint or a run directory). Each output (redshift) is scored separately; for each, the table
gives ARI, PQ, completeness_100 and purity_100 over halos of >= 1000 and >= 100 particles.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere as a script

from deephalo_core.atomic import write_json
from deephalo_core.data import open_simulation
from deephalo_core.dataset import expand_sources
from deephalo_core.evaluate import evaluate

KEYS = ("ari", "pq", "completeness_100", "purity_100")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, nargs="+")
    p.add_argument("--snaps", default="all")
    p.add_argument("--split", default="test")
    p.add_argument("--method", action="append", required=True, help="label=spec")
    p.add_argument("--json")
    args = p.parse_args(argv)
    sources = expand_sources(args.data, args.snaps)
    redshift = {}
    for path, snap in sources:
        with open_simulation(path, snap=snap) as sim:
            redshift[(path, snap)] = sim.header.redshift
    results = {}
    for item in args.method:
        label, _, spec = item.partition("=")
        for path, snap in sources:
            r = evaluate(path, spec, args.split, progress=False, snaps="last" if snap is None else str(snap))
            r.pop("halos")
            results.setdefault(label, {})[f"z={redshift[(path, snap)]:.2f} {path}#{snap}"] = r
            print(f"done {label} on {path}#{snap}", file=sys.stderr, flush=True)
    cols = list(next(iter(results.values())))
    head = "| method | " + " | ".join(f"{c.split()[0]} >=1000: ARI / PQ / compl_100 / purity_100 | >=100: ARI / PQ"
                                       for c in cols) + " |"
    print(head)
    print("|" + "---|" * (1 + 2 * len(cols)))
    for label, per in results.items():
        cells = []
        for c in cols:
            big, mid = per[c]["by_size"]["ge1000"], per[c]["by_size"]["ge100"]
            fmt = lambda d, keys: " / ".join("n/a" if d.get(k) is None else f"{d[k]:.2f}" for k in keys)
            cells += [fmt(big, KEYS) + f" ({big['n_halos']})", fmt(mid, KEYS[:2]) + f" ({mid['n_halos']})"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
