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


def test_agreement_classes_on_a_hand_made_halo():
    from deephalo_core.agreement import (FALSE_MEMBER, MISSED, PRIMARY_FUZZ, RIGHT, WRONG_SUBHALO,
                                         agreement_classes, agreement_counts)
    from deephalo_core.metrics import match_subhalos

    # Subfind: primary (0), satellites 1 and 2, fuzz. The model numbers its satellites the other way
    # round, finds satellite 1 (2 of its 8 members lost to the primary, 1 put in the other
    # satellite), finds satellite 2, calls one primary particle and one fuzz particle satellite
    # members, and swaps a primary particle and a fuzz particle.
    truth = np.array([0] * 10 + [1] * 8 + [2] * 5 + [-1] * 4)
    pred = np.array([0] * 7 + [2, -1, -1]          # primary: right, false member, swapped to fuzz x2
                    + [2] * 5 + [0, 0] + [1]       # satellite 1 -> pred 2: 5 right, 2 missed, 1 wrong
                    + [1] * 5                      # satellite 2 -> pred 1: right
                    + [-1, -1, 1, 0])              # fuzz: 2 right, 1 false member, 1 swapped
    matches = match_subhalos(truth, pred)
    classes = agreement_classes(truth, pred, matches)
    expected = np.array([RIGHT] * 7 + [FALSE_MEMBER, PRIMARY_FUZZ, PRIMARY_FUZZ]
                        + [RIGHT] * 5 + [MISSED] * 2 + [WRONG_SUBHALO]
                        + [RIGHT] * 5
                        + [RIGHT, RIGHT, FALSE_MEMBER, PRIMARY_FUZZ])
    assert classes.tolist() == expected.tolist()
    assert agreement_counts(classes) == {"right": 19, "missed": 2, "false member": 2,
                                         "wrong subhalo": 1, "primary/fuzz swap": 3}


def test_agreement_needs_a_match_good_enough_to_count():
    from deephalo_core.agreement import RIGHT, WRONG_SUBHALO, agreement_classes, matched_pairs

    truth = np.array([0, 0, 0, 1, 1, 1, 1])
    pred = np.array([0, 0, 0, 1, 2, 2, 2])  # satellite 1 split: the pair (1, 1) has IoU 0.25
    matches = pd.DataFrame({"true_rank": [0, 1, -1], "true_size": [3, 4, 0], "pred_rank": [0, 1, 2],
                            "pred_size": [3, 1, 3], "iou": [1.0, 0.25, 0.0]})
    assert matched_pairs(matches) == {0: 0}
    assert agreement_classes(truth, pred, matches).tolist() == [RIGHT] * 3 + [WRONG_SUBHALO] * 4
    assert agreement_classes(truth, pred, matches, min_iou=0.2)[3] == RIGHT
    with pytest.raises(ValueError, match="same length"):
        agreement_classes(truth, pred[:-1], matches)


def test_scene_payload_round_trips_with_aligned_arrays():
    from deephalo_core import scene

    labels = np.array([0, 0, 1, -1, 2])
    pos = np.arange(15, dtype=np.float64).reshape(5, 3) + 100.0
    views = [scene.View("a", np.full((5, 3), 7, np.uint8), scene.label_roles(labels), ("truth",)),
             scene.View("b", np.full((5, 3), 9, np.uint8), scene.label_roles(labels))]
    arrays = scene.build_arrays(pos, np.full(3, 100.0), views, labels, None)
    descriptors, data = scene.pack_arrays(arrays)
    assert all(d["offset"] % 4 == 0 for d in descriptors)
    payload = scene.encode({"scene": "x", "n": 5}, descriptors, data)
    assert payload[:4] == b"DHV1" and (len(payload) - len(data)) % 4 == 0
    header, back = scene.decode(payload)
    assert header["scene"] == "x" and header["n"] == 5
    assert back["pos"].dtype == np.float32 and np.allclose(back["pos"], pos - 100.0)
    assert back["truth"].tolist() == [0, 0, 1, -1, 2] and back["pred"].tolist() == [-1] * 5
    assert back["rgba0"][:, 3].tolist() == [scene.PRIMARY_ROLE, scene.PRIMARY_ROLE, scene.MEMBER_ROLE,
                                            scene.FUZZ_ROLE, scene.MEMBER_ROLE]
    assert back["rgba1"][0, :3].tolist() == [9, 9, 9]
    with pytest.raises(ValueError, match="has 5"):
        scene.build_arrays(pos, np.zeros(3), [scene.View("c", np.zeros((4, 3), np.uint8), np.zeros(4))], None, None)
    with pytest.raises(ValueError, match="bad magic"):
        scene.decode(b"nope" + payload[4:])


def test_scene_focus_and_extent():
    from deephalo_core import scene

    rng = np.random.default_rng(0)
    pos = np.concatenate([rng.normal(0, 100, (500, 3)), rng.normal(300, 2, (50, 3))]) + 1000.0
    members = np.arange(550) >= 500
    where = scene.focus(pos, np.full(3, 1000.0), members)
    assert np.allclose(where["centre"], 300, atol=2) and 1 < where["radius"] < 10
    assert scene.focus(pos, np.zeros(3), np.zeros(550, bool)) is None
    assert 150 < scene.extent(pos, np.full(3, 1000.0)) < 600


def test_view_style_and_scalar_colours():
    faint, hidden = viz.view_style(4, "faint"), viz.view_style(4, "hidden", show_fuzz=True)
    assert faint["member_size"] == 4 and faint["primary_size"] < 4 and 0 < faint["primary_alpha"] < 1
    assert faint["fuzz_alpha"] == 0 and hidden["primary_alpha"] == 0 and hidden["fuzz_alpha"] > 0
    with pytest.raises(ValueError, match="primary style"):
        viz.view_style(4, "glowing")
    rgb, low, high = viz.scalar_colours(np.linspace(0, 100, 101))
    assert rgb.dtype == np.uint8 and rgb.shape == (101, 3)
    assert low == pytest.approx(1) and high == pytest.approx(99)
    assert tuple(rgb[0]) == (68, 1, 84) and tuple(rgb[-1]) == (253, 231, 37)


def test_view_png_draws_members_over_a_faint_primary():
    from PIL import Image

    from deephalo_core import scene

    halo = make_halo([0] * 300 + [1] * 100 + [-1] * 50)
    true_map, _ = viz.matched_colour_maps(halo.labels, halo.labels, None)
    rgb = viz.colours_for(halo.labels, true_map)
    roles = scene.label_roles(halo.labels)

    def png(primary):
        png = viz.view_png(halo.pos - halo.center, rgb, roles, viz.view_style(6, primary), window_size=(200, 160))
        return np.asarray(Image.open(io.BytesIO(png)))[..., :3].astype(int)

    member, primary = np.array(true_map[1]), np.array(true_map[0])
    for image in (png("faint"), png("hidden")):
        assert np.any(np.all(np.abs(image - member) < 40, axis=-1))  # members drawn in their colour
    hidden_primary = np.all(np.abs(png("hidden") - primary) < 40, axis=-1).mean()
    full_primary = np.all(np.abs(png("full") - primary) < 40, axis=-1).mean()
    assert full_primary > 0.01 and hidden_primary < full_primary / 10


def test_halo_views_truth_prediction_and_agreement():
    from deephalo_core import scene
    from deephalo_core.agreement import CLASS_COLOURS, MISSED, agreement_classes
    from deephalo_core.halo_views import halo_views, highlight_focus
    from deephalo_core.metrics import match_subhalos

    halo = make_halo([0] * 300 + [1] * 100 + [2] * 20 + [-1] * 50)
    pred = halo.labels.copy()
    pred[300:310] = 0  # ten members of satellite 1 missed
    matches = match_subhalos(halo.labels, pred)
    classes = agreement_classes(halo.labels, pred, matches)
    descriptors, data, info = halo_views(halo, pred, matches, classes, budget=200, agreement=True)
    header, arrays = scene.decode(scene.encode({}, descriptors, data))
    assert [v["kind"] for v in info["views"]] == ["truth", "pred", "agreement"]
    assert info["n"] == len(arrays["pos"]) <= 200 and (arrays["truth"] == 2).sum() == 20  # small ones kept
    assert info["legend"][1] == {"name": "missed", "colour": viz.hex_colour(CLASS_COLOURS[MISSED])}
    missed = (arrays["truth"] == 1) & (arrays["pred"] == 0)
    assert missed.any() and (arrays["rgba2"][missed, :3] == CLASS_COLOURS[MISSED]).all()
    assert (arrays["rgba2"][missed, 3] == scene.MEMBER_ROLE).all()
    assert (arrays["rgba0"][arrays["truth"] == 0, 3] == scene.PRIMARY_ROLE).all()
    assert info["colourbar"] is None and info["radius"] > 0
    _, _, scalar = halo_views(halo, pred, matches, classes, budget=200, colour_by="speed")
    assert scalar["colourbar"]["name"] == "speed [km/s]" and scalar["legend"] is None
    focus = highlight_focus(halo, pred, {"truth": 2, "pred": None})
    assert np.allclose(focus["centre"], np.median(halo.pos[halo.labels == 2] - halo.center, axis=0))
    assert highlight_focus(halo, pred, None) is None


def test_halo_views_without_labels_show_the_particles():
    from deephalo_core.halo_views import halo_views

    halo = make_halo([0] * 50)
    halo.labels = None
    _, _, info = halo_views(halo, None, None, None, budget=100, agreement=True)
    assert [v["kind"] for v in info["views"]] == ["particles"] and info["n"] == 50
