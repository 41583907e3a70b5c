"""Reference methods with the models' interface: labels from a halo, no training.

- all-primary: every particle in the primary subhalo, the floor a collapsed model reaches.
- hdbscan: scikit-learn's HDBSCAN on standardised phase-space coordinates (each of the six
  position and velocity columns of the seed features scaled to zero mean and unit variance);
  the largest cluster is the primary, the rest ranked by size, noise is fuzz.
"""
import numpy as np

from deephalo_core.models import relabel_by_size

BASELINES = ("all-primary", "hdbscan")


def all_primary(features: np.ndarray) -> np.ndarray:
    return np.zeros(len(features), dtype=np.int32)


def hdbscan_labels(features: np.ndarray, min_cluster_size: int = 20, min_samples: int = 10) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    x = np.asarray(features, dtype=np.float64)[:, :6]
    if len(x) < min_cluster_size:
        return np.zeros(len(x), dtype=np.int32)
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)
    raw = HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, algorithm="kd_tree", copy=True).fit_predict(x)
    return relabel_by_size(raw, primary=None)


def baseline_labels(name: str, features: np.ndarray) -> np.ndarray:
    if name == "all-primary":
        return all_primary(features)
    if name == "hdbscan":
        return hdbscan_labels(features)
    raise ValueError(f"unknown baseline {name!r}: use one of {', '.join(BASELINES)}")
