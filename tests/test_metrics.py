"""Scores on hand-made label arrays whose answers are worked out by hand."""
import math

import numpy as np
import pytest

from deephalo_core.metrics import halo_metrics, match_subhalos, mean_metrics, seed_classes

# 50 primary, 30 in subhalo 1, 20 in subhalo 2, 10 fuzz
TRUE = np.array([0] * 50 + [1] * 30 + [2] * 20 + [-1] * 10)


def test_perfect_prediction_scores_one_and_ignores_label_names():
    renamed = np.where(TRUE == 1, 2, np.where(TRUE == 2, 1, TRUE))  # swap the two subhalos' ranks
    m = halo_metrics(TRUE, renamed)
    for key in ("pq", "sq", "rq", "matched_iou", "completeness_20", "purity_20", "primary_iou",
                "fuzz_precision", "fuzz_recall", "ari"):
        assert m[key] == pytest.approx(1.0), key
    assert m["n_true"] == 3 and m["n_pred"] == 3
    # the seed's score counts rank classes, so renaming instances costs it 50 of 110 particles
    assert m["seed_iou"] == pytest.approx(60 / 110)


def test_subhalo_merged_into_primary():
    pred = np.where(TRUE == 2, 0, TRUE)
    m = halo_metrics(TRUE, pred)
    assert m["primary_iou"] == pytest.approx(50 / 70)
    assert m["sq"] == pytest.approx((50 / 70 + 1.0) / 2)
    assert m["rq"] == pytest.approx(2 / 2.5)  # TP 2, FN 1, FP 0
    assert m["pq"] == pytest.approx(m["sq"] * m["rq"])
    assert m["matched_iou"] == pytest.approx((50 / 70 + 1.0 + 0.0) / 3)
    assert m["completeness_20"] == pytest.approx(2 / 3)
    assert m["purity_20"] == pytest.approx(1.0)
    assert math.isnan(m["completeness_100"]) and math.isnan(m["purity_100"])  # no object that big


def test_all_primary_collapse():
    m = halo_metrics(TRUE, np.zeros_like(TRUE))
    assert m["ari"] == pytest.approx(0.0)
    assert m["pq"] == 0.0 and m["rq"] == 0.0
    assert m["primary_iou"] == pytest.approx(50 / 110)
    assert m["matched_iou"] == pytest.approx(50 / 110 / 3)
    assert m["fuzz_recall"] == 0.0 and math.isnan(m["fuzz_precision"])
    assert m["purity_100"] == 0.0  # the one predicted object (110 particles) matches nothing at IoU > 0.5
    assert m["seed_iou"] == pytest.approx(50 / 110)


def test_split_subhalo_is_one_match_and_one_false_positive():
    pred = TRUE.copy()
    pred[50:60] = 3  # 10 of subhalo 1's 30 particles become their own object
    m = halo_metrics(TRUE, pred)
    assert m["n_pred"] == 4
    assert m["rq"] == pytest.approx(3 / (3 + 0.5))
    assert m["sq"] == pytest.approx((1 + 20 / 30 + 1) / 3)


def test_match_subhalos_rows():
    pred = TRUE.copy()
    pred[50:60] = 3
    table = match_subhalos(TRUE, pred)
    assert list(table.columns) == ["true_rank", "true_size", "pred_rank", "pred_size", "iou"]
    assert len(table) == 4  # three ground-truth rows and the unmatched prediction
    row1 = table[table.true_rank == 1].iloc[0]
    assert (row1.pred_rank, row1.pred_size, row1.iou) == (1, 20, pytest.approx(20 / 30))
    extra = table[table.true_rank == -1].iloc[0]
    assert (extra.pred_rank, extra.pred_size, extra.iou) == (3, 10, 0.0)


def test_hungarian_prefers_the_best_global_assignment():
    # predicted object A overlaps both truths; the one-to-one optimum gives A to truth 1
    true = np.array([1] * 10 + [2] * 10)
    pred = np.array([5] * 10 + [5] * 4 + [6] * 6)
    table = match_subhalos(true, pred).set_index("true_rank")
    assert table.loc[1, "pred_rank"] == 5 and table.loc[2, "pred_rank"] == 6


def test_seed_classes_clip_and_mean_skips_nan():
    assert list(seed_classes(np.array([-1, 0, 1, 18, 19, 40]))) == [0, 1, 2, 19, 20, 20]
    means = mean_metrics([{"a": 1.0, "b": float("nan")}, {"a": 0.0, "b": float("nan")}])
    assert means == {"a": 0.5, "b": None}


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="same length"):
        halo_metrics(TRUE, TRUE[:-1])
