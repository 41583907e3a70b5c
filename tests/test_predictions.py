"""Fast inference gives the same labels; predictions kept on disk per (model, source, group);
the background precompute fills the per-halo scores."""
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from deephalo_core import paths, predictions
from deephalo_core.data import open_simulation
from deephalo_core.dataset import halo_features
from deephalo_core.methods import load_method
from deephalo_core.metrics import halo_metrics
from deephalo_core.models import offset_cluster
from deephalo_core.models.offset_cluster import (graph_coords, host_frame_features, knn_neighbours,
                                                 local_binding_features, shell_medians)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Predictions go to a data home of each test's own."""
    monkeypatch.setenv("DEEPHALO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def default():
    return load_method("default", device="cpu")


@pytest.fixture(scope="module")
def halos(small_sim_dir):
    """Four halos of the small snapshot: the largest, the smallest and two between."""
    with open_simulation(small_sim_dir) as sim:
        order = sim.halos.sort_values("n_particles")["group_id"].tolist()
        picks = [order[0], order[len(order) // 3], order[2 * len(order) // 3], order[-1]]
        return [sim.load_halo(g) for g in picks]


def reference_inputs(model, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network's inputs and neighbours as the first version of the model built them: one
    k-d tree with default settings per query, one np.median per radial shell."""
    x = np.asarray(features, dtype=np.float32)
    coords = graph_coords(x, model.config["vel_weight"])
    n, k = len(x), model.config["k"]
    dist, nbr = cKDTree(coords).query(coords, k=k + 1)
    log_dist = np.log10(dist[:, 1:].mean(axis=1) + 1e-6).astype(np.float32)
    f = x.astype(np.float64)
    pos, vel, phi = f[:, :3], f[:, 3:6], f[:, 6]
    r = np.sqrt((pos**2).sum(axis=1))
    edges = np.unique(np.quantile(r, np.linspace(0, 1, 25)))
    shell = np.clip(np.searchsorted(edges, r, side="right") - 1, 0, max(len(edges) - 2, 0))
    smooth = np.zeros(max(len(edges) - 1, 1))
    for b in np.unique(shell):
        smooth[b] = np.median(phi[shell == b])
    resid = phi - smooth[shell]
    _, near = cKDTree(pos).query(pos, k=17)
    dv2 = ((vel - vel[near].mean(axis=1)) ** 2).sum(axis=1)
    binding = np.stack([resid, np.log10(dv2 + 1e-4), 0.5 * dv2 + resid], axis=1).astype(np.float32)
    parts = [x, log_dist[:, None], binding]
    if model.config["radial_features"]:
        parts.append(host_frame_features(x))
    return np.concatenate(parts, axis=1), nbr[:, 1:]


def test_fast_inference_gives_the_first_versions_labels(default, halos):
    model = default.model
    features = [halo_features(h, default.feature_set) for h in halos]
    expected = []
    for f in features:
        x, nbr = reference_inputs(model, f)
        batch = model.prepare(f)
        np.testing.assert_allclose(batch["x"].numpy(), x, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(np.sort(batch["nbr"].numpy(), axis=1), np.sort(nbr, axis=1))
        with torch.no_grad():
            logits, offset = model(torch.as_tensor(x), torch.as_tensor(np.ascontiguousarray(nbr)))
        expected.append(model.labels_from_outputs(graph_coords(f, model.config["vel_weight"]),
                                                  logits.numpy(), offset.numpy()))
    batched = default.predict_many(halos)  # the network sees several halos at once
    assert [len(b) for b in batched] == [h.n_particles for h in halos]
    for want, single, got in zip(expected, (model.predict_labels(f) for f in features), batched):
        assert halo_metrics(want, got)["ari"] == pytest.approx(1.0)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(single, want)
    assert len(np.unique(np.concatenate(batched))) > 2  # real segmentations, not all one label


def test_inference_forward_is_the_training_forward(default, halos, monkeypatch):
    """Without grad (neighbour messages gathered in row chunks) forward gives the numbers of the
    training forward (the whole gather, with grad) exactly."""
    model = default.model
    batch = model.prepare(halo_features(halos[-1], default.feature_set))
    with torch.enable_grad():
        want = [t.detach() for t in model(batch["x"], batch["nbr"])]
    monkeypatch.setattr(offset_cluster, "INFER_CHUNK_ROWS", 1000)  # chunks that do not divide N
    with torch.no_grad():
        got = model(batch["x"], batch["nbr"])
    assert len(batch["x"]) % 1000 != 0
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def test_batches_split_where_the_rows_run_out(default, halos, monkeypatch):
    """Small batches (one halo each) and one big batch give the same labels."""
    whole = default.predict_many(halos)
    monkeypatch.setattr(offset_cluster, "BATCH_POINTS", 1)
    for a, b in zip(whole, default.predict_many(halos)):
        np.testing.assert_array_equal(a, b)


def test_shell_medians_equal_numpy_median():
    rng = np.random.default_rng(3)
    values = rng.normal(size=1001)
    shell = rng.integers(0, 7, size=1001)
    shell[shell == 4] = 5  # an empty shell
    got = shell_medians(values, shell, 8)
    for b in range(8):
        members = values[shell == b]
        assert got[b] == (np.median(members) if len(members) else 0.0)  # exact, odd and even counts


def test_neighbours_do_not_depend_on_threads(halos):
    coords = graph_coords(halo_features(halos[-1], "seed"), 0.3)
    one, log_one = knn_neighbours(coords, 12, workers=1)
    every, log_every = knn_neighbours(coords, 12, workers=-1)
    np.testing.assert_array_equal(np.sort(one, axis=1), np.sort(every, axis=1))
    np.testing.assert_array_equal(log_one, log_every)
    f = halo_features(halos[-1], "seed")
    np.testing.assert_array_equal(local_binding_features(f), local_binding_features(f, workers=-1))


def test_large_halos_on_torch_threads_get_the_same_labels(default, halos, monkeypatch):
    """A halo of >= TORCH_THREADS_MIN_ROWS runs the network on every core: same labels as on one."""
    features = halo_features(halos[-1], default.feature_set)
    monkeypatch.setattr(offset_cluster, "TORCH_THREADS_MIN_ROWS", 10**12)
    one = default.model.predict_labels(features)
    monkeypatch.setattr(offset_cluster, "TORCH_THREADS_MIN_ROWS", 1)
    torch.set_num_threads(2)
    np.testing.assert_array_equal(default.model.predict_labels(features), one)


def test_one_torch_thread_restores_the_setting():
    before = torch.get_num_threads()
    with offset_cluster.one_torch_thread():
        with offset_cluster.one_torch_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_prediction_is_read_back_after_reopening(small_sim_dir, default, home):
    with open_simulation(small_sim_dir) as sim:
        g = int(sim.halos.sort_values("n_particles")["group_id"].iloc[0])
        labels, seconds, cached = predictions.get_or_predict(default, sim, g)
        assert not cached and seconds > 0 and labels.dtype == np.int32
        assert labels.shape == (sim.halos.set_index("group_id").loc[g, "n_particles"],)
    files = list((home / "cache" / "predictions").rglob("group-*.npz"))
    assert [f.name for f in files] == [f"group-{g}.npz"]
    with open_simulation(small_sim_dir) as again:  # a new process would see the same
        assert predictions.source_key(again) == predictions.source_key(sim)
        same, same_seconds, cached = predictions.get_or_predict(load_method("default", device="cpu"), again, g)
        assert cached and same_seconds == seconds
        np.testing.assert_array_equal(same, labels)
        np.testing.assert_array_equal(predictions.cached_labels(default, again, g), labels)
        assert predictions.cached_labels(default, again, g + 1) is None


def test_key_follows_the_checkpoint_bytes(small_sim_dir, tmp_path):
    ckpt = torch.load(paths.DEFAULT_MODEL, weights_only=True)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(paths.DEFAULT_MODEL.read_bytes())
    name = next(k for k in ckpt["state_dict"] if k.endswith("bias"))
    ckpt["state_dict"][name] = ckpt["state_dict"][name] + 1.0
    changed = tmp_path / "changed.pt"
    torch.save(ckpt, changed)
    shipped, same, other = (load_method(p, device="cpu") for p in ("default", copy, changed))
    assert predictions.model_key(shipped) == predictions.model_key(same)  # same bytes, same model
    assert predictions.model_key(other) != predictions.model_key(shipped)
    assert predictions.model_key(load_method("hdbscan")) == "baseline-hdbscan"
    with open_simulation(small_sim_dir) as sim:
        g = int(sim.halos.sort_values("n_particles")["group_id"].iloc[0])
        assert not predictions.get_or_predict(shipped, sim, g)[2]
        assert predictions.get_or_predict(same, sim, g)[2]
        assert not predictions.get_or_predict(other, sim, g)[2]


def test_key_follows_the_data_files(small_sim_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small_sim_dir, copy)
    with open_simulation(copy) as sim:
        files = predictions.source_files(sim)
        assert any("snap_099" in f.name for f in files) and any("fof_subhalo_tab_099" in f.name for f in files)
        key = predictions.source_key(sim)
    with open_simulation(small_sim_dir) as original:
        assert predictions.source_key(original) != key  # another path
    chunk = next(f for f in files if "snap_099" in f.name)
    os.utime(chunk, ns=(chunk.stat().st_atime_ns, chunk.stat().st_mtime_ns + 10**9))
    with open_simulation(copy) as sim:
        assert predictions.source_key(sim) != key  # a rewritten file


def test_prediction_files_are_atomic(small_sim_dir, default, monkeypatch):
    with open_simulation(small_sim_dir) as sim:
        g = int(sim.halos.sort_values("n_particles")["group_id"].iloc[0])
        where = predictions.folder(default, sim)
        real_savez = np.savez

        def dies_halfway(file, **arrays):
            real_savez(file, labels=arrays["labels"][:5])  # part of the file is written ...
            raise OSError("disk full")  # ... then the write fails

        monkeypatch.setattr(np, "savez", dies_halfway)
        with pytest.raises(OSError, match="disk full"):
            predictions.get_or_predict(default, sim, g)
        assert sorted(p.name for p in where.iterdir()) == ["about.json"]  # nothing half-written
        monkeypatch.setattr(np, "savez", real_savez)
        labels, _, cached = predictions.get_or_predict(default, sim, g)
        assert not cached
        (where / f"group-{g}.npz").write_bytes(b"not a zip file")  # damaged by hand: redone
        again, _, cached = predictions.get_or_predict(default, sim, g)
        assert not cached
        np.testing.assert_array_equal(again, labels)


def test_precompute_fills_the_scores(small_sim_dir):
    method = load_method("all-primary")
    with open_simulation(small_sim_dir) as sim:
        empty = predictions.halo_scores(method, sim)
        assert list(empty.columns) == list(predictions.SCORE_COLUMNS) and len(empty) == 0
        g = int(sim.halos["group_id"].iloc[3])
        predictions.get_or_predict(method, sim, g)  # one already on disk: skipped
        job = predictions.Precompute(method, sim)
        deadline = time.monotonic() + 120
        while job.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not job.running and job.errors == {}
        assert job.progress() == (len(sim.halos), len(sim.halos))
        scores = predictions.halo_scores(method, sim)
        assert sorted(scores["group_id"]) == sorted(sim.halos["group_id"])
        truth = sim.halos.set_index("group_id").loc[scores["group_id"]]
        # everything in one subhalo: one found, Subfind's count expected, no agreement beyond chance
        assert (scores["n_found"] == 1).all()
        np.testing.assert_array_equal(scores["n_expected"], truth["n_subhalos"])
        assert np.allclose(scores["ari"], 0.0)
        halo = sim.load_halo(g)
        expected = halo_metrics(halo.labels, np.zeros(halo.n_particles, np.int32))
        row = scores.set_index("group_id").loc[g]
        assert row["pq"] == pytest.approx(expected["pq"]) and 0 < row["pq"] < 1


def finish(job, timeout_s: float = 120):
    job._thread.join(timeout_s)
    assert not job.running


def test_precompute_leaves_a_halo_in_hand_and_records_failures(small_sim_dir):
    """A halo a page is predicting (its lock held) is left to the page; a halo whose prediction
    fails is recorded, and the others of its batch are still predicted."""
    method = load_method("all-primary")
    with open_simulation(small_sim_dir) as sim:
        ids = sim.halos["group_id"].tolist()
        in_hand, broken = ids[0], ids[1]
        real = method.predict_many

        def fails_on_one(halos):
            if any(h.group_id == broken for h in halos):
                raise ValueError(f"cannot segment group {broken}")
            return real(halos)

        method.predict_many = fails_on_one
        lock = predictions._lock(predictions._file(predictions.folder(method, sim), in_hand))
        with lock:
            job = predictions.Precompute(method, sim)
            finish(job)
        assert job.errors == {broken: f"ValueError: cannot segment group {broken}"}
        assert job.progress() == (len(ids), len(ids))
        scored = set(predictions.halo_scores(method, sim)["group_id"])
        assert scored == set(ids) - {in_hand, broken}


def test_precompute_goes_largest_first_and_stops(small_sim_dir):
    method = load_method("all-primary")
    with open_simulation(small_sim_dir) as sim:
        job = predictions.Precompute(method, sim, start=False)
        sizes = [job.sizes[g] for g in job.group_ids]
        assert sizes == sorted(sizes, reverse=True) and len(sizes) == len(sim.halos)
        job.BATCH_HALOS = 1
        job.stop()  # asked to stop before it starts: it predicts nothing
        job.start()
        job._thread.join(30)
        assert not job.running and predictions.halo_scores(method, sim).empty


def test_process_exits_cleanly_while_a_precompute_runs(tmp_path):
    """A background job still inside torch when the interpreter exits used to abort the process
    (exit 134): the job is stopped and joined at exit instead."""
    import subprocess
    import sys

    script = ("import time\n"
              "from deephalo_core import paths, predictions\n"
              "from deephalo_core.data import open_simulation\n"
              "from deephalo_core.methods import load_method\n"
              "job = predictions.Precompute(load_method('default', device='cpu'), open_simulation(paths.SAMPLE_DIR))\n"
              "time.sleep(1.0)\n"
              "assert job.running\n")
    env = dict(os.environ, DEEPHALO_HOME=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parent.parent, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_worst_first_puts_one_label_halos_and_unscored_ones_last():
    """Lowest ARI first, then PQ, the larger halo first among ties; a halo SUBFIND leaves as one
    subhalo without fuzz (ARI 0 once one particle differs) after every other scored halo; halos
    without a score yet at the end."""
    import pandas as pd

    table = pd.DataFrame({
        "group_id":      [0,    1,    2,    3,    4,    5,      6],
        "n_particles":   [9000, 5000, 40,   4000, 60,   3000,   50],
        "n_subhalos":    [12,   3,    1,    1,    1,    2,      1],
        "fuzz_fraction": [0.02, 0.01, 0.0,  0.03, 0.0,  0.01,   0.0],
        "ari":           [0.44, 0.80, 0.0,  0.50, -0.02, 0.80,  np.nan],
        "pq":            [0.58, 0.90, 0.94, 0.90, 0.96, 0.70,   np.nan],
    })
    order = predictions.worst_first(table)["group_id"].tolist()
    # 3 has one subhalo but fuzz too, so its ARI means something; 5 and 1 tie on ARI, PQ decides
    assert order == [0, 3, 5, 1, 4, 2, 6]
    assert list(predictions.worst_first(table).columns) == list(table.columns)
    plain = predictions.worst_first(table.drop(columns=["fuzz_fraction"]))  # no fuzz column: ARI alone
    assert plain["group_id"].tolist() == [4, 2, 0, 3, 5, 1, 6]
