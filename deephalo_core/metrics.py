"""How well predicted subhalo labels match Subfind's: the one place every score is defined.

Labels follow the project convention: -1 fuzz, 0 primary subhalo, 1.. further subhalos. A
"subhalo" below is any label >= 0 (the primary included); fuzz is not an instance.

- Matching: ground-truth and predicted subhalos are paired one-to-one by the Hungarian algorithm
  on their intersection-over-union (scipy `linear_sum_assignment`), pairs with IoU 0 are unmatched.
- Panoptic quality (Kirillov et al. 2019): a pair is a true positive when IoU > 0.5 (such pairs are
  unique, so the matching cannot change them); SQ = mean IoU of true positives,
  RQ = TP / (TP + FP/2 + FN/2), PQ = SQ * RQ.
- matched_iou: mean over ground-truth subhalos of the IoU of their matched prediction (0 if none).
- completeness_N: fraction of ground-truth subhalos with >= N particles found (IoU > 0.5);
  purity_N: fraction of predicted subhalos with >= N particles that are real (IoU > 0.5).
  NaN where the bin is empty, so means over halos skip it.
- seed_iou: the seed paper's score, which one-hot encodes classes 0 fuzz, 1..20 rank + 1 (ranks
  >= 19 share class 20) and averages a per-particle IoU of the one-hot rows: that is exactly the
  fraction of particles whose class is right, an accuracy the primary alone dominates.
"""
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

MATCH_IOU = 0.5
SIZE_BINS = (20, 100, 1000)
SEED_CLASSES = 21


def seed_classes(labels: np.ndarray) -> np.ndarray:
    """The seed model's class per particle: 0 fuzz, rank + 1 for subhalos, clipped at 20."""
    return np.minimum(np.asarray(labels, dtype=np.int64) + 1, SEED_CLASSES - 1)


def _check(true_labels, pred_labels) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(true_labels).astype(np.int64, copy=False)
    pred = np.asarray(pred_labels).astype(np.int64, copy=False)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"label arrays must be 1-D and the same length, got {true.shape} and {pred.shape}")
    return true, pred


def iou_matrix(true_labels, pred_labels) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(IoU[n_true, n_pred], true ids, pred ids, true sizes, pred sizes) over labels >= 0."""
    true, pred = _check(true_labels, pred_labels)
    true_ids, true_sizes = np.unique(true[true >= 0], return_counts=True)
    pred_ids, pred_sizes = np.unique(pred[pred >= 0], return_counts=True)
    both = (true >= 0) & (pred >= 0)
    ti = np.searchsorted(true_ids, true[both])
    pi = np.searchsorted(pred_ids, pred[both])
    inter = np.zeros((len(true_ids), len(pred_ids)), dtype=np.float64)
    np.add.at(inter, (ti, pi), 1.0)
    union = true_sizes[:, None] + pred_sizes[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return iou, true_ids, pred_ids, true_sizes, pred_sizes


def _hungarian(iou: np.ndarray) -> list[tuple[int, int]]:
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] > 0]


def match_subhalos(true_labels, pred_labels) -> pd.DataFrame:
    """One row per ground-truth subhalo, then one per unmatched predicted subhalo.

    Columns: true_rank, true_size, pred_rank, pred_size, iou. A missing side has rank -1 and
    size 0 (and iou 0).
    """
    iou, true_ids, pred_ids, true_sizes, pred_sizes = iou_matrix(true_labels, pred_labels)
    pair_of_true = dict(_hungarian(iou))
    rows = []
    for t, rank in enumerate(true_ids):
        p = pair_of_true.get(t)
        rows.append((int(rank), int(true_sizes[t]),
                     int(pred_ids[p]) if p is not None else -1,
                     int(pred_sizes[p]) if p is not None else 0,
                     float(iou[t, p]) if p is not None else 0.0))
    matched_pred = set(pair_of_true.values())
    for p, rank in enumerate(pred_ids):
        if p not in matched_pred:
            rows.append((-1, 0, int(rank), int(pred_sizes[p]), 0.0))
    return pd.DataFrame(rows, columns=["true_rank", "true_size", "pred_rank", "pred_size", "iou"])


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def halo_metrics(true_labels, pred_labels) -> dict:
    """All scores for one halo (see the module docstring for definitions)."""
    true, pred = _check(true_labels, pred_labels)
    iou, true_ids, pred_ids, true_sizes, pred_sizes = iou_matrix(true, pred)
    pairs = _hungarian(iou)
    pair_iou = np.array([iou[t, p] for t, p in pairs])
    tp_pairs = [(t, p) for t, p in pairs if iou[t, p] > MATCH_IOU]
    tp = len(tp_pairs)
    fp = len(pred_ids) - tp
    fn = len(true_ids) - tp
    sq = _ratio(sum(iou[t, p] for t, p in tp_pairs), tp) if tp else 0.0
    rq = _ratio(tp, tp + 0.5 * fp + 0.5 * fn)
    if np.isnan(rq):  # nothing on either side: a perfect (empty) answer
        sq, rq = 1.0, 1.0
    found_true = np.zeros(len(true_ids), dtype=bool)
    real_pred = np.zeros(len(pred_ids), dtype=bool)
    for t, p in tp_pairs:
        found_true[t] = True
        real_pred[p] = True

    out = {
        "ari": float(adjusted_rand_score(true, pred)),
        "pq": float(sq * rq),
        "sq": float(sq),
        "rq": float(rq),
        "matched_iou": _ratio(pair_iou.sum(), len(true_ids)) if len(true_ids) else float("nan"),
    }
    for n in SIZE_BINS:
        big_true = true_sizes >= n
        big_pred = pred_sizes >= n
        out[f"completeness_{n}"] = _ratio(found_true[big_true].sum(), big_true.sum())
        out[f"purity_{n}"] = _ratio(real_pred[big_pred].sum(), big_pred.sum())
    true_primary, pred_primary = true == 0, pred == 0
    out["primary_iou"] = _ratio((true_primary & pred_primary).sum(), (true_primary | pred_primary).sum())
    true_fuzz, pred_fuzz = true < 0, pred < 0
    out["fuzz_precision"] = _ratio((true_fuzz & pred_fuzz).sum(), pred_fuzz.sum())
    out["fuzz_recall"] = _ratio((true_fuzz & pred_fuzz).sum(), true_fuzz.sum())
    out["seed_iou"] = float(np.mean(seed_classes(true) == seed_classes(pred))) if true.size else float("nan")
    out["n_true"] = int(len(true_ids))
    out["n_pred"] = int(len(pred_ids))
    return out


def mean_metrics(per_halo: list[dict]) -> dict:
    """Means over halos of each score, skipping NaN (empty size bins); None where all are NaN."""
    if not per_halo:
        return {}
    out = {}
    for key in per_halo[0]:
        values = np.array([m[key] for m in per_halo], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[key] = float(finite.mean()) if finite.size else None
    return out
