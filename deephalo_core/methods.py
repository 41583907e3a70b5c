"""One way to get labels for a halo, whatever produced them: a trained checkpoint or a baseline.

`load_method(spec)` takes "default" (the shipped assets/models/default.pt), "all-primary",
"hdbscan", a checkpoint path, or a training run directory (its best.pt). Models run on CUDA when
available, else on the CPU. `Method.checksum` is the sha256 of the checkpoint bytes the weights
came from (None for a baseline): what names a model in caches of its predictions.
"""
import hashlib
import io
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from deephalo_core import paths
from deephalo_core.baselines import BASELINES, baseline_labels
from deephalo_core.dataset import halo_features
from deephalo_core.errors import DataError

DEFAULT_COMMAND = ("python -m deephalo_core synth --out .deephalo/synthetic-seed0-groups150 --seed 0 --groups 150 && "
                   "python -m deephalo_core train --data .deephalo/synthetic-seed0-groups150 --model offset-cluster "
                   "--out .deephalo/runs/default (see assets/models/default.json for the exact flags)")


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Method:
    name: str
    kind: str  # "model" | "baseline"
    device: str = "cpu"
    model: object = None
    feature_set: str = "seed"
    checkpoint: Path | None = None
    info: dict = field(default_factory=dict)  # checkpoint metadata (epoch, metrics, data)
    checksum: str | None = None  # sha256 of the checkpoint's bytes; None for a baseline

    def predict(self, halo) -> np.ndarray:
        """int32 labels for every particle: -1 fuzz, 0 primary, 1.. by decreasing size."""
        features = halo_features(halo, self.feature_set)
        if self.kind == "baseline":
            return baseline_labels(self.name, features)
        return np.asarray(self.model.predict_labels(features), dtype=np.int32)

    def predict_many(self, halos) -> list[np.ndarray]:
        """`predict` of each halo, in order; a model that can batch halos (`predict_many`) runs
        its network once per batch instead of once per halo, with the same labels."""
        if self.kind == "model" and hasattr(self.model, "predict_many"):
            features = (halo_features(halo, self.feature_set) for halo in halos)
            return [np.asarray(labels, dtype=np.int32) for labels in self.model.predict_many(features)]
        return [self.predict(halo) for halo in halos]


def _read_checkpoint(path: Path, device: str) -> tuple[dict, str]:
    """(the checkpoint, sha256 of its bytes), both from one read of the file."""
    import torch

    try:
        data = path.read_bytes()
        return (torch.load(io.BytesIO(data), map_location=device, weights_only=True),
                hashlib.sha256(data).hexdigest())
    except Exception as exc:  # a truncated or foreign file: say which and what to do
        raise DataError(f"cannot read checkpoint {path}: {exc}. Use a .pt written by "
                        "`python -m deephalo_core train`") from exc


def load_method(spec, device: str | None = None) -> Method:
    """A ready-to-use Method for "default", "all-primary", "hdbscan", a checkpoint or a run dir."""
    from deephalo_core.models import model_from_checkpoint

    device = device or default_device()
    if isinstance(spec, str) and spec in BASELINES:
        return Method(name=spec, kind="baseline", device="cpu")
    if isinstance(spec, str) and spec == "default":
        path = paths.DEFAULT_MODEL
        if not path.exists():
            raise DataError(f"the shipped default model {path} is missing: restore it from git "
                            f"(git checkout -- assets/models) or retrain it: {DEFAULT_COMMAND}")
    else:
        path = Path(spec)
        if path.is_dir():
            path = path / "best.pt"
        if not path.exists():
            raise DataError(f"no model {str(spec)!r}: not a checkpoint file, run directory or one of "
                            f"default, {', '.join(BASELINES)}")
    ckpt, checksum = _read_checkpoint(path, device)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "state_dict" not in ckpt:
        raise DataError(f"{path} is not a DeepHalo checkpoint (no model name or weights)")
    model = model_from_checkpoint(ckpt).to(device).eval()
    name = "default" if spec == "default" else ckpt["model"]
    info = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer", "rng")}
    return Method(name=name, kind="model", device=device, model=model,
                  feature_set=ckpt["config"].get("feature_set", "seed"), checkpoint=path, info=info,
                  checksum=checksum)


@lru_cache(maxsize=8)
def _cached(spec: str, mtime: float) -> Method:
    return load_method(spec)


def predict(model, halo) -> np.ndarray:
    """Labels for `halo` from a Method, a spec string ("default", "hdbscan", ...) or a checkpoint path."""
    if not isinstance(model, Method):
        spec = str(model)
        p = paths.DEFAULT_MODEL if spec == "default" else Path(spec)
        model = _cached(spec, p.stat().st_mtime if p.exists() else 0.0)
    return model.predict(halo)


def timed_predict(method: Method, halo) -> tuple[np.ndarray, float]:
    """(labels, wall seconds incl. features and graph building)."""
    t0 = time.perf_counter()
    labels = method.predict(halo)
    if method.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
    return labels, time.perf_counter() - t0
