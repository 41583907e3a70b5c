"""The evaluation CLI: JSON keys and values for a baseline and a trained checkpoint."""
import json

import pytest

from deephalo_core import evaluate, train

KEYS = ("method", "split", "n_halos", "n_particles", "ari", "pq", "sq", "rq", "matched_iou", "completeness_100",
        "purity_100", "primary_iou", "seconds")


def test_all_primary_json(small_sim_dir, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert evaluate.main(["--data", str(small_sim_dir), "--method", "all-primary", "--split", "all",
                          "--json", str(out), "--no-progress"]) == 0
    result = json.loads(out.read_text())
    for key in KEYS:
        assert key in result, key
    assert result["method"] == "all-primary" and result["split"] == "all"
    assert result["n_halos"] == len(result["halos"]) > 0
    assert result["n_particles"] == sum(h["n_particles"] for h in result["halos"])
    assert result["ari"] == pytest.approx(0.0, abs=1e-9)  # one cluster explains nothing
    assert result["pq"] < 1 and 0 < result["primary_iou"] < 1
    assert result["fuzz_recall"] == 0.0
    assert "all-primary on all" in capsys.readouterr().out


def test_checkpoint_json_and_bad_spec(small_sim_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPHALO_HOME", str(tmp_path / "home"))
    run = tmp_path / "run"
    assert train.main(["--data", str(small_sim_dir), "--model", "offset-cluster", "--out", str(run),
                       "--epochs", "1", "--max-points", "3000", "--no-progress"]) == 0
    result = evaluate.evaluate(small_sim_dir, run / "best.pt", split="all", progress=False)
    assert result["method"] == "offset-cluster" and result["kind"] == "model"
    assert result["seconds"] > 0 and result["n_halos"] > 0
    assert all(-1 <= h["ari"] <= 1 for h in result["halos"])
    assert evaluate.main(["--data", str(small_sim_dir), "--checkpoint", str(tmp_path / "missing.pt")]) == 2


def test_methods_by_name_and_missing_default(small_sim_dir, tmp_path, monkeypatch):
    import numpy as np

    import deephalo_core
    from deephalo_core import paths
    from deephalo_core.data import open_simulation
    from deephalo_core.errors import DataError
    from deephalo_core.methods import load_method

    sim = open_simulation(small_sim_dir)
    gid = int(sim.halos[sim.halos.n_subhalos > 1].group_id.iloc[0])
    halo = sim.load_halo(gid)
    labels = deephalo_core.predict("all-primary", halo)
    assert labels.dtype == np.int32 and np.all(labels == 0) and len(labels) == halo.n_particles
    hdb = load_method("hdbscan")
    assert (hdb.kind, hdb.name) == ("baseline", "hdbscan") and hdb.predict(halo).min() >= -1
    monkeypatch.setattr(paths, "DEFAULT_MODEL", tmp_path / "nowhere" / "default.pt")
    with pytest.raises(DataError, match="shipped default model"):
        load_method("default")
    with pytest.raises(DataError, match="no model 'nonsense'"):
        load_method("nonsense")


def test_shipped_default_model_segments_an_unseen_snapshot(small_sim_dir):
    # small_sim_dir is synthetic seed 7: the shipped model never saw it
    result = evaluate.evaluate(small_sim_dir, "default", split="all", progress=False)
    assert result["method"] == "default" and result["kind"] == "model"
    assert result["ari"] > 0.6 and result["pq"] > 0.6
    assert result["completeness_100"] > 0.8
