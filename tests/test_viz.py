"""Drawing helpers: shared palette with matched colours, display subsampling, scenes, exports."""
import io

import h5py
import numpy as np
import pandas as pd
import pytest

from deephalo_core import viz
from deephalo_core.data.types import Halo


def make_halo(labels, seed=0) -> Halo:
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=np.int32)
    n = len(labels)
    centres = rng.normal(0, 50, size=(labels.max() + 2, 3))
    pos = 1000.0 + centres[labels + 1] + rng.normal(0, 5, size=(n, 3))
    return Halo(group_id=3, pos=pos, vel=rng.normal(0, 100, (n, 3)).astype(np.float32),
                potential=-rng.random(n).astype(np.float32), ids=np.arange(n, dtype=np.uint64) + 500,
                labels=labels, subhalo_ids=np.arange(labels.max() + 1), center=np.full(3, 1000.0),
                catalog={}, particle_mass=0.0186755, box_size=35000.0)


def test_palette_is_stable_and_distinct():
    small, large = viz.palette(5), viz.palette(60)
    assert small.shape == (5, 3) and large.shape == (60, 3)
    assert np.array_equal(large[:5], small)
    assert len({tuple(c) for c in large}) == 60
    assert not any(tuple(c) == viz.FUZZ_COLOUR for c in large)


def test_matched_prediction_takes_its_ground_truth_colour():
    truth = np.array([0] * 6 + [1] * 3 + [2] * 2 + [-1] * 2)
    # the model found the same subhalos but numbered 1 and 2 the other way round, plus a spurious one
    pred = np.array([0] * 6 + [2] * 3 + [1] * 2 + [3] * 2)
    matches = pd.DataFrame({"true_rank": [0, 1, 2, -1], "true_size": [6, 3, 2, 0],
                            "pred_rank": [0, 2, 1, 3], "pred_size": [6, 3, 2, 2],
                            "iou": [1.0, 1.0, 1.0, 0.0]})
    true_map, pred_map = viz.matched_colour_maps(truth, pred, matches)
    assert pred_map[0] == true_map[0]
    assert pred_map[2] == true_map[1] and pred_map[1] == true_map[2]
    assert pred_map[3] not in {true_map[r] for r in (0, 1, 2)}  # unmatched: a colour of its own
    assert true_map[-1] == pred_map[-1] == viz.FUZZ_COLOUR
    rgb = viz.colours_for(pred, pred_map)
    assert tuple(rgb[6]) == true_map[1] and tuple(rgb[-1]) == pred_map[3]


def test_zero_iou_pairs_do_not_share_colours():
    truth, pred = np.array([0, 0, 1, 1]), np.array([0, 0, -1, -1])
    matches = pd.DataFrame({"true_rank": [0, 1], "true_size": [2, 2], "pred_rank": [0, -1],
                            "pred_size": [2, 0], "iou": [1.0, 0.0]})
    true_map, pred_map = viz.matched_colour_maps(truth, pred, matches)
    assert set(pred_map) == {-1, 0} and true_map[1] != true_map[0]


def test_weak_pairs_do_not_share_colours():
    truth, pred = np.array([0, 0, 0, 1, 1, -1]), np.array([0, 0, 0, 1, -1, -1])
    matches = pd.DataFrame({"true_rank": [0, 1], "true_size": [3, 2], "pred_rank": [0, 1],
                            "pred_size": [3, 1], "iou": [1.0, 0.3]})
    true_map, pred_map = viz.matched_colour_maps(truth, pred, matches)
    assert pred_map[0] == true_map[0] and pred_map[1] not in (true_map[0], true_map[1])
    _, loose = viz.matched_colour_maps(truth, pred, matches, min_iou=0.2)
    assert loose[1] == true_map[1]


def test_matching_from_the_metrics_module_agrees():
    from deephalo_core.metrics import match_subhalos

    truth = np.array([0] * 50 + [1] * 20 + [2] * 5 + [-1] * 5)
    pred = np.array([0] * 50 + [2] * 20 + [1] * 5 + [-1] * 5)
    true_map, pred_map = viz.matched_colour_maps(truth, pred, match_subhalos(truth, pred))
    assert pred_map[2] == true_map[1] and pred_map[1] == true_map[2]


def test_colours_without_ground_truth():
    pred = np.array([0, 0, 1, -1])
    true_map, pred_map = viz.matched_colour_maps(None, pred, None)
    assert true_map == {-1: viz.FUZZ_COLOUR}
    assert len({pred_map[0], pred_map[1], pred_map[-1]}) == 3


def test_display_subsample_keeps_small_subhalos_and_budget():
    labels = np.concatenate([np.zeros(100_000, int), np.full(30, 1), np.full(7, 2), np.full(500, -1)])
    rng = np.random.default_rng(1)
    labels = labels[rng.permutation(len(labels))]
    shown = viz.display_indices(5_000, labels)
    assert len(shown) <= 5_000 and len(shown) > 4_500
    assert np.all(np.diff(shown) > 0)
    kept = labels[shown]
    assert (kept == 1).sum() == 30 and (kept == 2).sum() == 7  # small ones entirely
    assert (kept == -1).sum() >= 64
    assert np.array_equal(shown, viz.display_indices(5_000, labels))  # deterministic


def test_display_subsample_stratifies_on_prediction_too():
    truth = np.zeros(50_000, int)
    pred = np.zeros(50_000, int)
    pred[:12] = 4  # a small predicted subhalo inside the ground-truth primary
    shown = viz.display_indices(1_000, truth, pred)
    assert (pred[shown] == 4).sum() == 12


def test_display_subsample_small_halo_untouched_and_bad_budget():
    labels = np.array([0, 0, 1])
    assert np.array_equal(viz.display_indices(10, labels), [0, 1, 2])
    with pytest.raises(ValueError, match="budget"):
        viz.display_indices(0, labels)


def test_legend_lists_labels_with_counts():
    labels = np.array([0, 0, 0, 1, -1, -1])
    true_map, _ = viz.matched_colour_maps(labels, labels, None)
    table = viz.legend(labels, true_map)
    assert table["subhalo"].tolist() == ["primary (rank 0)", "rank 1", "fuzz"]
    assert table["particles"].tolist() == [3, 1, 2]
    assert table["colour"].iloc[2] == viz.hex_colour(viz.FUZZ_COLOUR)


def test_cumulative_counts():
    curve = viz.cumulative_counts(np.array([1.0, 10.0, 100.0, 0.0, -3.0]), n_bins=3)
    assert curve["x"].tolist() == pytest.approx([1.0, 10.0, 100.0])
    assert curve["n_above"].tolist() == [3, 2, 1]
    assert len(viz.cumulative_counts(np.array([]))) == 0
    masses = np.array([1.656517e11, 4.454e12, 3.0e11])  # log/exp round-off must not lose the ends
    curve = viz.cumulative_counts(masses, n_bins=30)
    assert curve["n_above"].iloc[0] == 3 and curve["n_above"].iloc[-1] == 1
    assert curve["n_above"].min() >= 1 and curve["x"].is_monotonic_increasing
    single = viz.cumulative_counts(np.array([5.9e12]), n_bins=30)  # one subhalo: one point, N = 1
    assert single["n_above"].tolist() == [1] and single["x"].tolist() == pytest.approx([5.9e12])


def test_plotter_renders_coloured_points_to_png():
    from PIL import Image

    halo = make_halo([0] * 300 + [1] * 100 + [-1] * 50)
    true_map, _ = viz.matched_colour_maps(halo.labels, halo.labels, None)
    plotter = viz.build_plotter(halo.pos, rgb=viz.colours_for(halo.labels, true_map), point_size=5,
                                window_size=(200, 160), centre=halo.center)
    image = np.asarray(Image.open(io.BytesIO(viz.screenshot_png(plotter))))
    assert image.shape[:2] == (160, 200)
    background = np.array([0x10, 0x13, 0x1A])
    drawn = np.any(np.abs(image[..., :3].astype(int) - background) > 30, axis=-1)
    assert drawn.mean() > 0.005  # points were drawn
    primary = np.array(true_map[0])
    assert np.any(np.all(np.abs(image[..., :3].astype(int) - primary) < 40, axis=-1))


def test_plotter_by_scalar():
    halo = make_halo([0] * 200)
    plotter = viz.build_plotter(halo.pos, scalars=viz.speed(halo.vel), scalar_name="speed",
                                window_size=(120, 100))
    assert plotter.mesh is not None and "speed" in plotter.mesh.point_data


def test_label_exports_round_trip():
    halo = make_halo([0, 0, 1, -1])
    pred = np.array([0, 1, 1, -1], dtype=np.int32)
    csv = pd.read_csv(io.BytesIO(viz.labels_csv(halo, pred)))
    assert csv["predicted_label"].tolist() == [0, 1, 1, -1]
    assert csv["subfind_label"].tolist() == [0, 0, 1, -1]
    assert csv["particle_id"].tolist() == [500, 501, 502, 503]
    with h5py.File(io.BytesIO(viz.labels_hdf5(halo, pred, "hdbscan")), "r") as f:
        assert f["predicted_label"][:].tolist() == [0, 1, 1, -1]
        assert f.attrs["method"] == "hdbscan" and f.attrs["group_id"] == 3
