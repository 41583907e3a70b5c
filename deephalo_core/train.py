"""`python -m deephalo_core train`: train a segmentation model into a run directory.

    python -m deephalo_core train --data PATH [PATH ...] --model offset-cluster|seed --out RUN_DIR
        [--snaps last|all|N,M --epochs N --lr X --loss weighted-ce|bce|focal --k N --max-points N --seed N
         --features seed|seed+subfind|seed+energy|binding --smote --binary --no-augment
         --train-fraction F --folds K --fold I --resume]

Several --data paths (and --snaps all) train one model on every snapshot given: each contributes
the train split of its groups, and the val split of each is validated on. Augmentation (on by
default for offset-cluster): every step sees its halo under a random rotation and reflection
(positions and velocities turned together), so a few hundred real halos look like many more.
--train-fraction keeps a random fraction of the training halos (learning curves); --folds K
--fold I swaps the fixed 70/15/15 split for K-fold cross-validation by group id.

One halo is one step (its own graph). The run directory holds config.json, metrics.jsonl (one
JSON object per epoch), last.pt and best.pt (written atomically; best = highest val_pq + val_ari),
train.log and status.json ({"state": "running"|"finished"|"stopped"|"failed", ...}). A file named
STOP in the run directory ends the run cleanly after the current step; --resume continues from
last.pt. Validation scores come from the val split's halos, capped at --max-points with a fixed
subsample so epochs compare. Runs on CUDA when present.

Under `torchrun --nproc_per_node=N -m deephalo_core train ...` the training halos are sharded
across ranks and gradients averaged with DistributedDataParallel (gloo on CPU, nccl on CUDA);
rank 0 alone validates and writes files.
"""
import argparse
import json
import math
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from deephalo_core.atomic import atomic_path, write_json
from deephalo_core.errors import DataError

MODEL_DEFAULTS = {
    # the default method (density-preserving crops; validation on full-resolution halos). Measured:
    # 20 epochs on the two real GADGET-4 runs (7 outputs) in about 8 min wall on 2 shared CPU
    # cores (see assets/models/default.json)
    "offset-cluster": dict(epochs=20, lr=3e-3, max_points=6000, k=12, cap="crop", val_max_points=0,
                           features="binding", augment=True, batch_points=6000, val_min_particles=100,
                           model_config=dict(radial_features=True, hidden=64)),
    # the seed paper's own settings (AdamW, lr 1e-3, weight decay 5e-4, k = 4, 20 epochs)
    "seed": dict(epochs=20, lr=1e-3, max_points=8000, k=4, cap="subsample", val_max_points=8000),
}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m deephalo_core train", description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, nargs="+",
                   help="one or more snapshots: simulation root, output dir, snapshot file or simulation.hdf5")
    p.add_argument("--snaps", default="last", help="which outputs of each --data path: last, all or N,M,...")
    p.add_argument("--model", required=True, help="offset-cluster (the default method; alias 'default') or seed")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--loss", default="weighted-ce", help="seed model: weighted-ce | bce | focal")
    p.add_argument("--k", type=int, help="neighbours per particle in the model's graph")
    p.add_argument("--hidden", type=int, help="offset-cluster: width of its layers (default 32)")
    p.add_argument("--max-points", type=int, help="cap on particles per halo per step (0: no cap)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--features", choices=["seed", "seed+subfind", "seed+energy", "binding"],
                   help="per-particle feature set (default: binding for offset-cluster, seed for seed)")
    p.add_argument("--smote", action="store_true", help="seed model: SMOTE oversampling of minority classes")
    p.add_argument("--binary", action="store_true", help="seed model: primary-vs-rest variant")
    p.add_argument("--max-halos", type=int, default=0, help="use only the first N training halos (short runs)")
    p.add_argument("--train-fraction", type=float, default=1.0,
                   help="train on a random fraction of the training halos (learning curves)")
    p.add_argument("--no-augment", action="store_true", help="no random rotations and reflections")
    p.add_argument("--folds", type=int, default=0, help="K-fold cross-validation by group id: number of folds")
    p.add_argument("--fold", type=int, default=0, help="with --folds: which fold is the held-out test fold")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def save_atomic(obj, path: Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


class Run:
    """The run directory: status, log, metrics. Only rank 0 writes."""

    def __init__(self, out: Path, writer: bool):
        self.out, self.writer = out, writer
        self.status = {"state": "running", "pid": os.getpid(), "epoch": 0, "epochs": 0,
                       "started_at": _now(), "updated_at": _now(), "error": None}
        self.log_path = out / "train.log"
        # the app's launcher already sends stdout to train.log: then print only, never write twice
        self._stdout_is_log = writer and self.log_path.exists() and _same_file(sys.stdout, self.log_path)

    def set(self, **changes) -> None:
        self.status.update(changes, updated_at=_now())
        if self.writer:
            write_json(self.out / "status.json", self.status)

    def log(self, message: str) -> None:
        if not self.writer:
            return
        line = f"{_now()} {message}"
        print(line, flush=True)
        if not self._stdout_is_log:
            with open(self.log_path, "a") as f:
                f.write(line + "\n")

    def stop_requested(self) -> bool:
        return (self.out / "STOP").exists()


def _same_file(stream, path: Path) -> bool:
    try:
        a, b = os.fstat(stream.fileno()), os.stat(path)
        return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
    except (OSError, ValueError, AttributeError):
        return False


def resolve_config(args, out: Path) -> dict:
    from deephalo_core.models import model_names

    name = "offset-cluster" if args.model == "default" else args.model
    if name not in model_names():
        raise DataError(f"unknown model {args.model!r}: use one of {', '.join(model_names())}")
    d = MODEL_DEFAULTS[name]
    features = args.features or d.get("features", "seed")
    from deephalo_core.dataset import expand_sources

    if args.folds and not 0 <= args.fold < args.folds:
        raise DataError(f"--fold {args.fold} is not in 0..{args.folds - 1} (--folds {args.folds})")
    if not 0 < args.train_fraction <= 1:
        raise DataError(f"--train-fraction {args.train_fraction} must be in (0, 1]")
    sources = [[str(Path(path).resolve()), snap] for path, snap in expand_sources(args.data, args.snaps)]
    cfg = dict(data=sources, model=name, epochs=args.epochs or d["epochs"],
               lr=args.lr or d["lr"], weight_decay=args.weight_decay, seed=args.seed, features=features,
               max_points=d["max_points"] if args.max_points is None else args.max_points,
               max_halos=args.max_halos, cap=d["cap"], val_max_points=d["val_max_points"],
               augment=d.get("augment", False) and not args.no_augment, train_fraction=args.train_fraction,
               batch_points=d.get("batch_points", 0), val_min_particles=d.get("val_min_particles", 0),
               folds=[args.folds, args.fold] if args.folds else None,
               model_config=dict(d.get("model_config", {}), k=args.k or d["k"], feature_set=features))
    if name == "seed":
        cfg["model_config"].update(loss=args.loss, smote=args.smote, binary=args.binary)
    elif args.hidden:
        cfg["model_config"]["hidden"] = args.hidden
    if args.resume and (out / "config.json").exists():
        saved = json.loads((out / "config.json").read_text())
        saved["epochs"] = args.epochs or saved["epochs"]
        return saved
    return cfg


def _distributed():
    """(rank, world size, device) under torchrun, else (0, 1, None)."""
    import torch
    import torch.distributed as dist

    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1, None
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu"
    if not cuda:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return rank, world, device


class _LossModule:
    """Wraps model.loss as a forward so DistributedDataParallel sees (and syncs) the gradients."""

    @staticmethod
    def wrap(model):
        import torch

        class LossForward(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, batch):
                return self.inner.loss(batch)

        return LossForward(model)


def _sources(data) -> list[tuple[str, int | None]]:
    """The config's data: a list of [path, snapshot] (or, from older runs, one path)."""
    if isinstance(data, str):
        return [(data, None)]
    return [(str(path), None if snap is None else int(snap)) for path, snap in data]


def pack(order, sizes, batch_points: int, max_points: int) -> list[list[int]]:
    """Halos (in `order`) grouped into training steps: with batch_points, consecutive halos share a
    step until their capped particle counts reach it (hundreds of small real halos would otherwise
    each pay a whole step); without, one halo per step."""
    if not batch_points:
        return [[int(i)] for i in order]
    steps, current, total = [], [], 0
    for i in order:
        n = min(sizes[i], max_points) if max_points else sizes[i]
        if current and total + n > batch_points:
            steps.append(current)
            current, total = [], 0
        current.append(int(i))
        total += n
    if current:
        steps.append(current)
    return steps


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 orthogonal matrix (rotation, reflected half the time)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))  # uniform over O(3) (Haar measure)
    return q


def augment(sample, rng: np.random.Generator):
    """The sample seen from a random orientation: positions (columns 0-2) and velocities (3-5) turned
    by one random orthogonal matrix; scalars (potentials, energies) are unchanged by it."""
    rot = random_rotation(rng).astype(np.float32)
    f = sample.features.copy()
    f[:, 0:3] = f[:, 0:3] @ rot.T
    f[:, 3:6] = f[:, 3:6] @ rot.T
    return type(sample)(sample.group_id, f, sample.labels, sample.source)


def size_weights(sizes, big: int = 1000) -> np.ndarray:
    """Per-halo weights that give the halos of at least `big` particles as much say, together, as
    all the others: a few dozen small groups would otherwise choose a clustering radius that merges
    the satellites of the largest halos."""
    sizes = np.asarray(sizes)
    is_big = sizes >= big
    if is_big.all() or not is_big.any():
        return np.ones(len(sizes))
    return np.where(is_big, (~is_big).sum() / is_big.sum(), 1.0)


def validate(model, samples, device, max_points: int, seed: int, min_particles: int = 0) -> dict:
    """Mean loss and scores over the val halos (a fixed subsample where max_points caps them).

    Scores (and the checkpoint choice made from them) count halos of at least `min_particles`
    particles: a real snapshot's val split is mostly groups of a few dozen particles, a primary
    and no satellite, which reward predicting no subhalo at all. A model with a `calibrate` step
    (offset-cluster's clustering radius and decision biases) tunes it here on those same val
    halos first, the halos of >= 1000 particles weighing as much as the rest (`size_weights`);
    the test split is never looked at."""
    import torch

    from deephalo_core.dataset import subsample
    from deephalo_core.metrics import halo_metrics, mean_metrics

    model.eval()
    losses, every, big_enough = [], [], []
    with torch.no_grad():
        for s in samples:
            rng = np.random.default_rng(seed + s.group_id)
            cut = s.take(subsample(s.labels, max_points, rng))
            batch = {k: v.to(device) for k, v in model.prepare(cut.features, cut.labels, rng).items()}
            losses.append(model.loss(batch)[0].item())
            every.append(cut)
            if len(s.labels) >= min_particles:
                big_enough.append(cut)
        cuts = big_enough or every  # no val halo is big enough: score them all rather than none
        if hasattr(model, "calibrate"):
            outputs = [model.outputs(c.features) for c in cuts]
            model.calibrate(outputs, [c.labels for c in cuts], size_weights([len(c.labels) for c in cuts]))
            scores = [halo_metrics(c.labels, model.labels_from_outputs(*o)) for c, o in zip(cuts, outputs)]
        else:
            scores = [halo_metrics(c.labels, model.predict_labels(c.features)) for c in cuts]
    model.train()
    m = mean_metrics(scores)
    return {"val_loss": float(np.mean(losses)) if losses else float("nan"),
            "val_ari": m.get("ari"), "val_pq": m.get("pq"), "val_matched_iou": m.get("matched_iou"),
            "val_completeness_100": m.get("completeness_100"), "val_purity_100": m.get("purity_100"),
            "val_primary_iou": m.get("primary_iou"), "val_seed_iou": m.get("seed_iou")}


def train(args) -> int:
    import torch
    from tqdm import tqdm

    from deephalo_core.dataset import crop, load_many, subsample
    from deephalo_core.models import build_model, checkpoint_dict, collate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rank, world, device = _distributed()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    run = Run(out, writer=rank == 0)
    run.set(state="running", epochs=args.epochs or 0, error=None)
    try:
        cfg = resolve_config(args, out)
        run.set(epochs=cfg["epochs"])
        if run.writer:
            write_json(out / "config.json", {**cfg, "world_size": world, "device": device})
            if (out / "STOP").exists() and not args.resume:
                (out / "STOP").unlink()
        torch.manual_seed(cfg["seed"])
        progress = not args.no_progress and rank == 0
        sources = _sources(cfg["data"])
        folds = tuple(cfg["folds"]) if cfg.get("folds") else None
        train_samples = load_many(sources, "train", cfg["features"], progress=progress, folds=folds)
        val_samples = load_many(sources, "val", cfg["features"], progress=False, folds=folds)
        if cfg.get("train_fraction", 1.0) < 1.0:
            keep = np.random.default_rng(cfg["seed"]).permutation(len(train_samples))
            keep = np.sort(keep[:max(1, round(cfg["train_fraction"] * len(train_samples)))])
            train_samples = [train_samples[i] for i in keep]
        if cfg.get("max_halos"):
            train_samples = train_samples[: cfg["max_halos"]]
            val_samples = val_samples[: max(1, cfg["max_halos"] // 4)]
        if not train_samples:
            raise DataError(f"{cfg['data']}: no training halos (need groups with subhalos in the train split)")
        in_features = train_samples[0].features.shape[1]
        model = build_model(cfg["model"], in_features=in_features, **cfg["model_config"])
        model.fit_statistics(train_samples)
        model.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        first_epoch, best_score = 1, -math.inf
        if args.resume:
            last = out / "last.pt"
            if not last.exists():
                raise DataError(f"--resume: {last} does not exist; start the run without --resume")
            ckpt = torch.load(last, map_location=device, weights_only=True)
            model.load_state_dict(ckpt["state_dict"])
            opt.load_state_dict(ckpt["optimizer"])
            first_epoch, best_score = int(ckpt["epoch"]) + 1, float(ckpt.get("best_score", -math.inf))
            run.log(f"resumed from {last} after epoch {ckpt['epoch']}")
        sizes = [len(s.labels) for s in train_samples]
        steps_per_epoch = math.ceil(len(pack(np.arange(len(sizes)), sizes, cfg.get("batch_points", 0),
                                             cfg["max_points"])) / world)
        total_steps, done_steps = cfg["epochs"] * steps_per_epoch, (first_epoch - 1) * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(  # cosine decay over the whole run, resumed in place
            opt, lambda step: 0.5 * (1 + math.cos(math.pi * min((step + done_steps) / max(total_steps, 1), 1.0))))
        step_model = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            step_model = DistributedDataParallel(_LossModule.wrap(model),
                                                 device_ids=[device] if device.startswith("cuda") else None)
        run.log(f"training {cfg['model']} on {len(train_samples)} halos ({sum(len(s.labels) for s in train_samples)} "
                f"particles), validating on {len(val_samples)}; device {device}, world size {world}")
        run.set(epoch=first_epoch - 1)
        stopped = False
        for epoch in range(first_epoch, cfg["epochs"] + 1):
            t0 = time.perf_counter()
            rng = np.random.default_rng([cfg["seed"], epoch])
            order = rng.permutation(len(train_samples))
            steps = pack(order, sizes, cfg.get("batch_points", 0), cfg["max_points"])
            per_rank = math.ceil(len(steps) / world)
            mine = [steps[(rank + world * i) % len(steps)] for i in range(per_rank)]
            losses = []
            bar = tqdm(mine, desc=f"epoch {epoch}/{cfg['epochs']}", disable=not progress, unit="step")
            for members in bar:
                parts = []
                for i in members:
                    s = train_samples[i]
                    idx = crop(s.features, s.labels, cfg["max_points"], rng) if cfg.get("cap") == "crop" \
                        else subsample(s.labels, cfg["max_points"], rng)
                    cut = s.take(idx)
                    if cfg.get("augment"):
                        cut = augment(cut, rng)
                    parts.append(model.prepare(cut.features, cut.labels, rng))
                batch = {k: v.to(device) for k, v in collate(parts).items()}
                loss, _ = step_model(batch) if world > 1 else model.loss(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                sched.step()
                losses.append(loss.item())
                bar.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
                if _any_rank(run.stop_requested(), world):
                    stopped = True
                    break
            if stopped:
                if run.writer:
                    save_atomic(checkpoint_dict(model, epoch=epoch - 1, best_score=best_score,
                                                optimizer=opt.state_dict(), train_config=cfg), out / "last.pt")
                run.log(f"stop requested: stopped during epoch {epoch}; last.pt holds epoch {epoch - 1} "
                        "plus this epoch's steps so far")
                run.set(state="stopped")
                break
            if run.writer:
                row = {"epoch": epoch, "train_loss": float(np.mean(losses)), "lr": opt.param_groups[0]["lr"]}
                row.update(validate(model, val_samples, device, cfg.get("val_max_points", cfg["max_points"]),
                                    cfg["seed"], cfg.get("val_min_particles", 0)))
                if "cluster_eps" in model.config:
                    row["cluster_eps"] = model.config["cluster_eps"]
                row["seconds"] = time.perf_counter() - t0
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
                score = (row["val_pq"] or 0.0) + (row["val_ari"] or 0.0)
                ckpt = checkpoint_dict(model, epoch=epoch, best_score=max(best_score, score),
                                       optimizer=opt.state_dict(), train_config=cfg,
                                       metrics={k: v for k, v in row.items() if v is not None})
                if score > best_score:
                    best_score = score
                    save_atomic({k: v for k, v in ckpt.items() if k != "optimizer"}, out / "best.pt")
                save_atomic(ckpt, out / "last.pt")
                run.log(f"epoch {epoch}: train_loss {row['train_loss']:.4f} val_loss {row['val_loss']:.4f} "
                        f"val_ari {_fmt(row['val_ari'])} val_pq {_fmt(row['val_pq'])} "
                        f"val_matched_iou {_fmt(row['val_matched_iou'])} ({row['seconds']:.1f} s)")
            _barrier(world)
            run.set(epoch=epoch)
        if not stopped:
            run.set(state="finished")
            run.log("finished")
        return 0
    except KeyboardInterrupt:
        run.set(state="stopped", error="interrupted")
        return 130
    except Exception as exc:
        run.set(state="failed", error=f"{type(exc).__name__}: {exc}")
        run.log("failed:\n" + traceback.format_exc())
        if isinstance(exc, DataError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    finally:
        if world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def _any_rank(flag: bool, world: int) -> bool:
    """True on every rank when any rank saw the flag (all ranks must leave the loop together)."""
    if world == 1:
        return flag
    import torch
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return bool(t.item() > 0)


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


def main(argv=None) -> int:
    return train(parse_args(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
