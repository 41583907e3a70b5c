"""Training pieces: packing small halos into one step, collating their graphs, augmentation."""
import numpy as np
import torch

from deephalo_core.dataset import Sample
from deephalo_core.models.offset_cluster import OffsetClusterModel
from deephalo_core.models import collate
from deephalo_core.train import augment, pack, random_rotation


def test_pack_fills_steps_up_to_the_point_budget():
    sizes = [10, 20, 5000, 30, 8000, 40]
    steps = pack(range(len(sizes)), sizes, batch_points=100, max_points=6000)
    assert sorted(sum(steps, [])) == list(range(len(sizes)))  # every halo exactly once
    assert steps[0] == [0, 1]  # small halos share a step
    assert [2] in steps and [4] in steps  # a big one (capped at 6000) is a step of its own
    assert pack([2, 0], sizes, 0, 6000) == [[2], [0]]  # no budget: one halo per step


def test_collated_halos_stay_disjoint_graphs():
    model = OffsetClusterModel(in_features=9, k=4)
    rng = np.random.default_rng(0)
    parts = [model.prepare(rng.normal(size=(n, 9)).astype(np.float32), rng.integers(-1, 3, n), rng)
             for n in (30, 50)]
    batch = collate(parts)
    assert len(batch["x"]) == 80 and len(batch["sem"]) == 80 and len(batch["offset"]) == 80
    first, second = batch["nbr"][:30], batch["nbr"][30:]
    assert int(first.max()) < 30 and int(second.min()) >= 30  # no edge crosses between halos
    assert torch.equal(second - 30, parts[1]["nbr"])
    loss, _ = model.loss(batch)
    assert torch.isfinite(loss)


def test_augmentation_turns_vectors_and_keeps_scalars():
    rng = np.random.default_rng(3)
    rot = random_rotation(rng)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    f = rng.normal(size=(100, 9)).astype(np.float32)
    s = Sample(5, f, np.zeros(100, np.int32), "x#1")
    out = augment(s, np.random.default_rng(4))
    assert out.group_id == 5 and out.source == "x#1" and out.labels is s.labels
    np.testing.assert_allclose(np.linalg.norm(out.features[:, :3], axis=1), np.linalg.norm(f[:, :3], axis=1),
                               rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out.features[:, 3:6], axis=1), np.linalg.norm(f[:, 3:6], axis=1),
                               rtol=1e-5)
    # positions and velocities turn together: radial velocities are unchanged
    np.testing.assert_allclose((out.features[:, :3] * out.features[:, 3:6]).sum(1), (f[:, :3] * f[:, 3:6]).sum(1),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(out.features[:, 6:], f[:, 6:])
    assert not np.allclose(out.features[:, :3], f[:, :3])


def test_size_weights_give_big_halos_half_the_say():
    from deephalo_core.train import size_weights

    w = size_weights([150, 200, 300, 5000, 20000, 120])
    big = np.array([False, False, False, True, True, False])
    assert w[big].sum() == w[~big].sum()  # the two halos >= 1000 weigh as much as the four others
    assert np.all(w[~big] == 1.0)
    np.testing.assert_array_equal(size_weights([100, 200]), [1.0, 1.0])  # one size class: plain mean


def test_weighted_calibration_follows_the_weights():
    """With all the weight on one halo, calibration picks that halo's best settings."""
    model = OffsetClusterModel(in_features=9, k=4)
    rng = np.random.default_rng(2)
    feats = [rng.normal(size=(60, 9)).astype(np.float32) for _ in range(2)]
    labels = [np.zeros(60, np.int32), np.where(np.arange(60) < 30, 0, -1).astype(np.int32)]
    outputs = [model.outputs(f) for f in feats]
    for heavy in (0, 1):
        w = [1.0, 1e-9] if heavy == 0 else [1e-9, 1.0]
        model.calibrate(outputs, labels, w)
        alone = OffsetClusterModel(in_features=9, k=4)
        alone.load_state_dict(model.state_dict())
        alone.calibrate([outputs[heavy]], [labels[heavy]])
        from deephalo_core.metrics import halo_metrics
        score = lambda m: sum(halo_metrics(labels[heavy], m.labels_from_outputs(*outputs[heavy]))[k] for k in ("pq", "ari"))
        assert score(model) == score(alone)
