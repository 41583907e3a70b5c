"""Segmentation models, selectable by name: `build_model(name, **config)`.

Every model is a torch Module with the same small interface, so training, evaluation and
inference never look at which one they hold:
  - `model.name`, `model.config` (plain types; with the state_dict it rebuilds the model)
  - `model.prepare(features, labels=None, rng=None) -> dict` of CPU tensors for one halo
    (graph, inputs and, given labels, the training targets)
  - `model.loss(batch) -> (loss tensor, {name: float})`
  - `model.predict_labels(features) -> int32 labels` (-1 fuzz, 0 primary, 1.. by decreasing size)
  - `model.fit_statistics(samples)`: optional, dataset statistics (class weights) set before training
"""
import numpy as np


def relabel_by_size(labels: np.ndarray, primary: int | None = 0) -> np.ndarray:
    """Renumber labels >= 0 so the primary stays 0 and the others run 1.. by decreasing size.

    With primary=None (or when label 0 is absent) the largest group becomes the primary.
    """
    labels = np.asarray(labels)
    out = np.full(len(labels), -1, dtype=np.int32)
    ids, sizes = np.unique(labels[labels >= 0], return_counts=True)
    if ids.size == 0:
        return out
    order = ids[np.argsort(-sizes, kind="stable")]
    if primary is not None and primary in ids:
        order = np.concatenate([[primary], order[order != primary]])
    rank_of = np.empty(len(ids), dtype=np.int32)
    rank_of[np.searchsorted(ids, order)] = np.arange(len(order), dtype=np.int32)
    mask = labels >= 0
    out[mask] = rank_of[np.searchsorted(ids, labels[mask])]
    return out


def collate(parts: list[dict]) -> dict:
    """One batch from several halos' prepared tensors (`model.prepare`): rows concatenated, and each
    halo's static neighbour indices ("nbr") shifted to its rows, so the halos stay disjoint graphs."""
    if len(parts) == 1:
        return parts[0]
    import torch

    out, offset = {key: [] for key in parts[0]}, 0
    for part in parts:
        for key, value in part.items():
            out[key].append(value + offset if key == "nbr" else value)
        offset += len(part["x"])
    return {key: torch.cat(values) for key, values in out.items()}


def model_names() -> list[str]:
    return ["offset-cluster", "seed"]


def build_model(name: str, **config):
    """A fresh model by registry name ("offset-cluster" is the default method, "seed" the paper's)."""
    if name == "seed":
        from deephalo_core.models.seed import SeedModel

        return SeedModel(**config)
    if name in ("offset-cluster", "default"):
        from deephalo_core.models.offset_cluster import OffsetClusterModel

        return OffsetClusterModel(**config)
    raise ValueError(f"unknown model {name!r}: choose one of {', '.join(model_names())}")


def checkpoint_dict(model, **extra) -> dict:
    """A checkpoint of plain types plus the state_dict, loadable with torch.load(weights_only=True)."""
    return {"model": model.name, "config": dict(model.config),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra}


def model_from_checkpoint(ckpt: dict):
    """Rebuild the model a checkpoint dict describes and load its weights."""
    model = build_model(ckpt["model"], **ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model
