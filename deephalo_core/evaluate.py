"""`python -m deephalo_core evaluate`: score a checkpoint or a baseline on a split of a snapshot.

    python -m deephalo_core evaluate --data PATH (--checkpoint FILE | --method all-primary|hdbscan|default)
        [--split test|val|train|all] [--json OUT]

Every halo with subhalos in the split is predicted at full resolution and scored against
Subfind (deephalo_core.metrics). The JSON holds the means over halos of every score, `seconds`
(mean wall time of one halo's inference, features and graph building included), totals, and
the per-halo rows.
"""
import argparse
import sys
import time

from deephalo_core.atomic import write_json

TABLE_KEYS = ("ari", "pq", "sq", "rq", "matched_iou", "completeness_100", "purity_100", "primary_iou",
              "fuzz_recall", "seed_iou")


def evaluate(data_path, spec, split: str = "test", progress: bool = True, max_halos: int = 0) -> dict:
    """Scores of method `spec` (see deephalo_core.methods.load_method) on `split` of a snapshot."""
    from tqdm import tqdm

    from deephalo_core.data import open_simulation
    from deephalo_core.dataset import groups_in_split
    from deephalo_core.errors import DataError
    from deephalo_core.methods import load_method, timed_predict
    from deephalo_core.metrics import halo_metrics, mean_metrics

    method = load_method(str(spec))
    sim = open_simulation(data_path)
    groups = groups_in_split(sim.halos, split)
    if max_halos:
        groups = groups[:max_halos]
    if not groups:
        raise DataError(f"{data_path}: no halos with subhalos in split {split!r}")
    rows, n_particles, t_total = [], 0, time.perf_counter()
    for gid in tqdm(groups, desc=f"evaluate {method.name}", disable=not progress, unit="halo"):
        halo = sim.load_halo(gid)
        if halo.labels is None:
            raise DataError(f"{data_path}: halo {gid} has no Subfind labels to score against")
        labels, seconds = timed_predict(method, halo)
        row = {"group_id": gid, "n_particles": int(len(labels)), "seconds": seconds}
        row.update({k: (None if isinstance(v, float) and v != v else v)  # NaN -> null in JSON
                    for k, v in halo_metrics(halo.labels, labels).items()})
        rows.append(row)
        n_particles += len(labels)
    means = mean_metrics([{k: (float("nan") if v is None else v) for k, v in r.items()
                           if k not in ("group_id", "n_particles")} for r in rows])
    total_seconds = sum(r["seconds"] for r in rows)
    return {"method": method.name, "kind": method.kind, "checkpoint": str(method.checkpoint or ""),
            "data": str(data_path), "split": split, "device": method.device, "n_halos": len(rows),
            "n_particles": n_particles, **means,
            "seconds_total": total_seconds, "particles_per_second": n_particles / max(total_seconds, 1e-9),
            "wall_seconds": time.perf_counter() - t_total, "halos": rows}


def format_table(result: dict) -> str:
    head = f"{result['method']} on {result['split']} ({result['n_halos']} halos, {result['n_particles']} particles)"
    lines = [head, "-" * len(head)]
    for key in TABLE_KEYS + ("n_true", "n_pred", "seconds"):
        v = result.get(key)
        lines.append(f"{key:18s} {'n/a' if v is None else f'{v:.4f}'}")
    return "\n".join(lines)


def main(argv=None) -> int:
    from deephalo_core.errors import DataError

    p = argparse.ArgumentParser(prog="python -m deephalo_core evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a .pt file or a training run directory")
    src.add_argument("--method", help="all-primary, hdbscan or default (the shipped model)")
    p.add_argument("--split", default="test", choices=["test", "val", "train", "all"])
    p.add_argument("--json", help="write the result here")
    p.add_argument("--max-halos", type=int, default=0, help="only the first N halos of the split")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = evaluate(args.data, args.checkpoint or args.method, args.split, progress=not args.no_progress,
                          max_halos=args.max_halos)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
