"""`python -m deephalo_core evaluate`: score a checkpoint or a baseline on a split of a snapshot.

    python -m deephalo_core evaluate --data PATH [PATH ...] (--checkpoint FILE | --method all-primary|hdbscan|default)
        [--snaps last|all|N,M] [--split test|val|train|all] [--folds K --fold I] [--json OUT]

Every halo with subhalos in the split is predicted at full resolution and scored against
Subfind (deephalo_core.metrics). The JSON holds the means over halos of every score, `seconds`
(mean wall time of one halo's inference, features and graph building included), totals, the
same means over halos of at least 100 and at least 1000 particles (`by_size`), and the per-halo
rows (with the snapshot each came from).
"""
import argparse
import sys
import time

from deephalo_core.atomic import write_json

SIZE_CUTS = (100, 1000)
TABLE_KEYS = ("ari", "pq", "sq", "rq", "matched_iou", "completeness_100", "purity_100", "primary_iou",
              "fuzz_recall", "seed_iou")


def evaluate(data_path, spec, split: str = "test", progress: bool = True, max_halos: int = 0,
             snaps: str = "last", folds: tuple[int, int] | None = None) -> dict:
    """Scores of method `spec` (see deephalo_core.methods.load_method) on `split` of one or more
    snapshots (`data_path`: a path or a list; `snaps`: see dataset.expand_sources)."""
    from tqdm import tqdm

    from deephalo_core.data import open_simulation
    from deephalo_core.dataset import expand_sources, groups_in_split, source_label
    from deephalo_core.errors import DataError
    from deephalo_core.methods import load_method, timed_predict
    from deephalo_core.metrics import halo_metrics

    method = load_method(str(spec))
    todo = []
    for path, snap in expand_sources(data_path, snaps):
        sim = open_simulation(path, snap=snap)
        todo += [(sim, source_label(path, sim.snap), g) for g in groups_in_split(sim.halos, split, folds)]
    if max_halos:
        todo = todo[:max_halos]
    if not todo:
        raise DataError(f"{data_path}: no halos with subhalos in split {split!r}")
    rows, n_particles, t_total = [], 0, time.perf_counter()
    for sim, label, gid in tqdm(todo, desc=f"evaluate {method.name}", disable=not progress, unit="halo"):
        halo = sim.load_halo(gid)
        if halo.labels is None:
            raise DataError(f"{label}: halo {gid} has no Subfind labels to score against")
        labels, seconds = timed_predict(method, halo)
        row = {"source": label, "group_id": gid, "n_particles": int(len(labels)), "seconds": seconds}
        row.update({k: (None if isinstance(v, float) and v != v else v)  # NaN -> null in JSON
                    for k, v in halo_metrics(halo.labels, labels).items()})
        rows.append(row)
        n_particles += len(labels)
    total_seconds = sum(r["seconds"] for r in rows)
    return {"method": method.name, "kind": method.kind, "checkpoint": str(method.checkpoint or ""),
            "data": [label for label in dict.fromkeys(r["source"] for r in rows)], "split": split,
            "folds": list(folds) if folds else None, "device": method.device, "n_halos": len(rows),
            "n_particles": n_particles, **summarise(rows),
            "by_size": {f"ge{cut}": {"n_halos": sum(r["n_particles"] >= cut for r in rows),
                                     **summarise([r for r in rows if r["n_particles"] >= cut])}
                        for cut in SIZE_CUTS},
            "seconds_total": total_seconds, "particles_per_second": n_particles / max(total_seconds, 1e-9),
            "wall_seconds": time.perf_counter() - t_total, "halos": rows}


def summarise(rows: list[dict]) -> dict:
    """Means over halos of every score in per-halo rows (null scores skipped)."""
    from deephalo_core.metrics import mean_metrics

    if not rows:
        return {}
    return mean_metrics([{k: (float("nan") if v is None else v) for k, v in r.items()
                          if k not in ("group_id", "n_particles", "source")} for r in rows])


def format_table(result: dict) -> str:
    head = f"{result['method']} on {result['split']} ({result['n_halos']} halos, {result['n_particles']} particles)"
    groups = {"all": result, **{f">= {k[2:]} particles ({v['n_halos']})": v
                                 for k, v in result.get("by_size", {}).items()}}
    lines = [head, "-" * len(head), f"{'':18s} " + " ".join(f"{name:>22s}" for name in groups)]
    for key in TABLE_KEYS + ("n_true", "n_pred", "seconds"):
        cells = [g.get(key) for g in groups.values()]
        lines.append(f"{key:18s} " + " ".join(f"{'n/a' if v is None else f'{v:.4f}':>22s}" for v in cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    from deephalo_core.errors import DataError

    p = argparse.ArgumentParser(prog="python -m deephalo_core evaluate", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, nargs="+", help="one or more snapshots (paths)")
    p.add_argument("--snaps", default="last", help="which outputs of each path: last, all or N,M,...")
    p.add_argument("--folds", type=int, default=0, help="K-fold cross-validation by group id: number of folds")
    p.add_argument("--fold", type=int, default=0, help="with --folds: the fold to score (its test split)")
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
                          max_halos=args.max_halos, snaps=args.snaps,
                          folds=(args.folds, args.fold) if args.folds else None)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(result))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
