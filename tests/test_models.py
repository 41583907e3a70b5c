"""Model shapes, a few training steps, clustering and the default method learning on a small snapshot."""
import numpy as np
import pytest
import torch

from deephalo_core.baselines import all_primary, hdbscan_labels
from deephalo_core.dataset import Sample, load_samples
from deephalo_core.metrics import halo_metrics, mean_metrics
from deephalo_core.models import build_model, checkpoint_dict, model_from_checkpoint, relabel_by_size
from deephalo_core.models.offset_cluster import (centre_offsets, density_clusters, host_frame_features,
                                                 semantic_targets)


def _blobs(seed=0, n_host=600, subs=(80, 40)):
    """A diffuse host plus tight phase-space blobs: features laid out like halo_features."""
    rng = np.random.default_rng(seed)
    parts, labels = [rng.normal(scale=[0.5] * 3 + [0.6] * 3 + [1.0], size=(n_host, 7))], [np.zeros(n_host)]
    for rank, n in enumerate(subs, start=1):
        centre = rng.uniform(-0.8, 0.8, size=7)
        parts.append(centre + rng.normal(scale=[0.02] * 3 + [0.05] * 3 + [0.02], size=(n, 7)))
        labels.append(np.full(n, rank))
    feats = np.concatenate(parts).astype(np.float32)
    feats[:, 6] = np.abs(feats[:, 6])
    lab = np.concatenate(labels).astype(np.int32)
    lab[:20] = -1  # a little fuzz
    return Sample(0, feats, lab)


def test_relabel_by_size_keeps_primary_and_ranks_the_rest():
    out = relabel_by_size(np.array([7, 7, 3, 3, 3, 0, -1, 9]))
    assert list(out) == [2, 2, 1, 1, 1, 0, -1, 3]
    out = relabel_by_size(np.array([7, 7, 3, 3, 3, -1]), primary=None)  # largest becomes primary
    assert list(out) == [1, 1, 0, 0, 0, -1]


def test_density_clusters_finds_two_blobs_and_noise():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(0, 0.01, (100, 6)), rng.normal(1, 0.01, (60, 6)), [[5.0] * 6]])
    lab = density_clusters(pts, eps=0.1, min_samples=5)
    assert len(set(lab[:100])) == 1 and len(set(lab[100:160])) == 1 and lab[0] != lab[100]
    assert lab[-1] == -1


def test_offset_targets_point_at_subhalo_centres():
    s = _blobs()
    coords = s.features[:, :6]
    off = centre_offsets(coords, s.labels)
    shifted = coords + off
    for rank in (1, 2):
        members = shifted[s.labels == rank]
        np.testing.assert_allclose(members, np.broadcast_to(members.mean(axis=0), members.shape), atol=1e-5)
    assert np.all(off[s.labels <= 0] == 0)
    assert list(np.unique(semantic_targets(s.labels))) == [0, 1, 2]


def test_seed_model_shapes_and_a_few_steps():
    torch.manual_seed(0)
    s = _blobs()
    for loss in ("weighted-ce", "bce", "focal"):
        model = build_model("seed", loss=loss)
        model.fit_statistics([s])
        batch = model.prepare(s.features, s.labels)
        assert model(batch["x"]).shape == (len(s.labels), 21)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(15):
            value, _ = model.loss(batch)
            opt.zero_grad()
            value.backward()
            opt.step()
            losses.append(value.item())
        assert losses[-1] < losses[0], loss
        labels = model.predict_labels(s.features)
        assert labels.dtype == np.int32 and labels.shape == s.labels.shape and labels.min() >= -1
    binary = build_model("seed", binary=True)
    assert binary(torch.as_tensor(s.features)).shape == (len(s.labels), 2)
    assert set(np.unique(binary.predict_labels(s.features))) <= {-1, 0}


def test_seed_smote_oversamples_minorities():
    s = _blobs()
    model = build_model("seed", smote=True)
    batch = model.prepare(s.features, s.labels, np.random.default_rng(0))
    counts = np.bincount(batch["y"].numpy())
    assert len(batch["y"]) > len(s.labels)
    assert counts[3] > 40  # subhalo rank 2 (class 3) grew from 40 members


def test_offset_cluster_checkpoint_round_trip():
    s = _blobs()
    model = build_model("offset-cluster", k=8)
    model.fit_statistics([s])
    logits, offset = model(*model.prepare(s.features).values())
    assert logits.shape == (len(s.labels), 3) and offset.shape == (len(s.labels), 6)
    ckpt = checkpoint_dict(model, epoch=1)
    again = model_from_checkpoint(ckpt)
    np.testing.assert_array_equal(again.predict_labels(s.features), model.predict_labels(s.features))


def test_host_frame_features_and_their_switch():
    f = np.zeros((3, 7), dtype=np.float32)
    f[0, :3], f[1, 3:6], f[2, 6] = [0.3, 0.4, 0.0], [1.0, 2.0, 2.0], 1.5
    f[1, 6] = 0.5
    np.testing.assert_allclose(host_frame_features(f), [[0.5, 0.0, 0.0], [0.0, 3.0, 5.0], [0.0, 0.0, 1.5]], rtol=1e-6)
    s = _blobs()
    plain, radial = build_model("offset-cluster", k=8), build_model("offset-cluster", k=8, radial_features=True)
    assert radial.prepare(s.features)["x"].shape[1] == plain.prepare(s.features)["x"].shape[1] + 3
    again = model_from_checkpoint(checkpoint_dict(radial, epoch=1))  # the switch travels in the config
    assert again.config["radial_features"] is True
    np.testing.assert_array_equal(again.predict_labels(s.features), radial.predict_labels(s.features))


def test_default_model_learns_on_a_small_snapshot(small_sim_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPHALO_HOME", str(tmp_path))
    torch.manual_seed(0)
    train = load_samples(small_sim_dir, "all", progress=False)
    model = build_model("offset-cluster")
    model.fit_statistics(train)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(0)
    epoch_losses = []
    for _ in range(12):
        losses = []
        for i in rng.permutation(len(train)):
            loss, _ = model.loss(model.prepare(train[i].features, train[i].labels, rng))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        epoch_losses.append(np.mean(losses))
    assert epoch_losses[-1] < 0.7 * epoch_losses[0]
    model.eval()
    outputs = [model.outputs(s.features) for s in train]
    model.calibrate(outputs, [s.labels for s in train])
    learned = mean_metrics([halo_metrics(s.labels, model.labels_from_outputs(*o)) for s, o in zip(train, outputs)])
    floor = mean_metrics([halo_metrics(s.labels, all_primary(s.features)) for s in train])
    assert learned["ari"] > floor["ari"] + 0.2
    assert learned["pq"] > floor["pq"]


def test_hdbscan_baseline_finds_blobs():
    s = _blobs(n_host=400, subs=(120, 90))
    labels = hdbscan_labels(s.features)
    m = halo_metrics(s.labels, labels)
    assert m["n_pred"] >= 2 and m["ari"] > halo_metrics(s.labels, all_primary(s.features))["ari"]
