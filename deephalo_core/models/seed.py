"""The seed paper's PointNetInstanceSeg, kept faithful as a selectable baseline.

Per-particle 21-way classification: class 0 fuzz, class c = subhalo rank c - 1 (class 1 the
primary); ranks >= 19 all fall into class 20, as the seed clipped its label range. Two
DynamicEdgeConv layers (k nearest neighbours recomputed in feature space, k = 4 as in the seed's
repository) with SiLU activations on the 7 input features, then Linear(64, 21).
Losses: "weighted-ce" (cross-entropy with class weights 1 / log(1.2 + class frequency), the
seed's formula), "bce" (one-hot BCE-with-logits), "focal" (sigmoid focal loss, gamma 2, the same
class weights as alpha). Options: `smote` oversamples minority classes in feature space with
imbalanced-learn's SMOTE (training only), `binary` predicts primary-vs-rest (rest -> fuzz, -1).
Classifying by rank asks a particle's neighbourhood for an arbitrary instance number it cannot
know, which is why this model collapses to the primary; it is kept to show that.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deephalo_core.metrics import SEED_CLASSES, seed_classes
from deephalo_core.models import relabel_by_size

LOSSES = ("weighted-ce", "bce", "focal")


def _dynamic_edge_conv(mlp: nn.Module, k: int) -> nn.Module:
    try:
        import torch_cluster  # noqa: F401  (DynamicEdgeConv's k-NN lives there in PyG 2.7)
    except ImportError as exc:
        raise ImportError("the seed model needs torch-cluster (DynamicEdgeConv's k-NN); run `make setup` "
                          "to compile it") from exc
    from torch_geometric.nn import DynamicEdgeConv

    return DynamicEdgeConv(mlp, k=k)


class SeedModel(nn.Module):
    name = "seed"

    def __init__(self, in_features: int = 7, k: int = 4, loss: str = "weighted-ce", smote: bool = False,
                 binary: bool = False, feature_set: str = "seed", **_ignored):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r} for the seed model: use one of {', '.join(LOSSES)}")
        self.config = dict(in_features=int(in_features), k=int(k), loss=loss, smote=bool(smote),
                           binary=bool(binary), feature_set=feature_set)
        self.n_classes = 2 if binary else SEED_CLASSES
        self.conv1 = _dynamic_edge_conv(nn.Sequential(nn.Linear(2 * in_features, 64), nn.SiLU(),
                                                      nn.Linear(64, 64), nn.SiLU()), k)
        self.conv2 = _dynamic_edge_conv(nn.Sequential(nn.Linear(2 * 64, 64), nn.SiLU()), k)
        self.fc = nn.Linear(64, self.n_classes)
        self.register_buffer("class_weights", torch.ones(self.n_classes))

    def classes(self, labels: np.ndarray) -> np.ndarray:
        if self.config["binary"]:
            return (np.asarray(labels) == 0).astype(np.int64)
        return seed_classes(labels)

    def fit_statistics(self, samples) -> None:
        counts = np.zeros(self.n_classes)
        for s in samples:
            counts += np.bincount(self.classes(s.labels), minlength=self.n_classes)
        freq = counts / max(counts.sum(), 1)
        self.class_weights.copy_(torch.as_tensor(1.0 / np.log(1.2 + freq), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv2(self.conv1(x)))

    def prepare(self, features: np.ndarray, labels: np.ndarray | None = None, rng=None) -> dict:
        x = np.asarray(features, dtype=np.float32)
        batch = {}
        if labels is not None:
            y = self.classes(labels)
            if self.config["smote"]:
                x, y = _smote(x, y, rng)
            batch["y"] = torch.as_tensor(y, dtype=torch.long)
        batch["x"] = torch.as_tensor(x)
        return batch

    def loss(self, batch: dict):
        logits = self(batch["x"])
        y = batch["y"]
        w = self.class_weights
        kind = self.config["loss"]
        if kind == "weighted-ce":
            loss = F.cross_entropy(logits, y, weight=w)
        else:
            onehot = F.one_hot(y, self.n_classes).float()
            bce = F.binary_cross_entropy_with_logits(logits, onehot, reduction="none")
            if kind == "bce":
                loss = bce.mean()
            else:
                pt = torch.exp(-bce)
                loss = (w[None, :] * (1 - pt) ** 2 * bce).mean()
        acc = (logits.argmax(1) == y).float().mean().item()
        return loss, {"accuracy": acc}

    @torch.no_grad()
    def predict_labels(self, features: np.ndarray) -> np.ndarray:
        device = self.class_weights.device
        cls = self(torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)).argmax(1).cpu().numpy()
        if self.config["binary"]:
            return np.where(cls == 1, 0, -1).astype(np.int32)
        return relabel_by_size(cls.astype(np.int64) - 1, primary=0)


def _smote(x: np.ndarray, y: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Oversample each minority class up to N / n_classes (never past the majority) with SMOTE.

    The seed balanced every class to the majority, which multiplies a halo's size by the number
    of classes; this cap keeps the cost bounded. Classes with fewer than 2 members are left alone.
    """
    from imblearn.over_sampling import SMOTE

    classes, counts = np.unique(y, return_counts=True)
    target = max(len(y) // max(len(classes), 1), 1)
    strategy = {int(c): int(min(max(n, target), counts.max())) for c, n in zip(classes, counts) if n >= 2}
    strategy = {c: n for c, n in strategy.items() if n > counts[classes == c][0]}
    if not strategy:
        return x, y
    k = int(min(5, min(counts[classes == c][0] for c in strategy) - 1))
    seed = int(rng.integers(2**31)) if rng is not None else 0
    xs, ys = SMOTE(sampling_strategy=strategy, k_neighbors=max(k, 1), random_state=seed).fit_resample(x, y)
    return xs.astype(np.float32), ys.astype(np.int64)
