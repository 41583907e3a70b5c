"""`python -m deephalo_core bench --quick`: every figure present as a positive ratio, JSON written."""
import json
import math

import pytest

from deephalo_core import bench, train


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.fixture(scope="module")
def checkpoint(small_sim_dir, tmp_path_factory):
    """A one-epoch default-architecture model: the bench times it, its quality is irrelevant."""
    home = tmp_path_factory.mktemp("bench-model")
    run = home / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DEEPHALO_HOME", str(home))  # the feature cache stays out of the repository
        assert train.main(["--data", str(small_sim_dir), "--model", "offset-cluster",
                           "--out", str(run), "--epochs", "1", "--max-halos", "2",
                           "--no-progress"]) == 0
    return run


def test_bench_quick_writes_all_ratios(small_sim_dir, checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEPHALO_HOME", str(tmp_path / "home"))
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--data", str(small_sim_dir), "--model", str(checkpoint),
                       "--json", str(out)]) == 0
    r = json.loads(out.read_text())
    assert set(r) >= {"machine", "data", "halo_load", "inference", "training", "real", "app"}
    assert r["machine"]["cores"] >= 1 and r["data"]["n_groups"] == 12
    for name in ("largest", "typical"):
        load = r["halo_load"][name]
        for key in ("ours_s", "illustris_s", "raw_h5py_s", "ratio_vs_illustris", "ratio_vs_raw"):
            assert positive(load[key]), (name, key, load[key])
        assert load["ratio_vs_raw"] == pytest.approx(load["ours_s"] / load["raw_h5py_s"])
    assert r["halo_load"]["largest"]["n_particles"] > r["halo_load"]["typical"]["n_particles"]
    inf = r["inference"]
    for key in ("default_particles_per_s", "hdbscan_particles_per_s", "speedup_vs_hdbscan"):
        assert positive(inf[key]), (key, inf[key])
    assert inf["speedup_vs_hdbscan"] == pytest.approx(inf["hdbscan_s"] / inf["default_s"])
    tr = r["training"]
    for key in ("offset-cluster_s_per_epoch", "seed_s_per_epoch", "seed_over_default"):
        assert positive(tr[key]), (key, tr)
    real = r["real"]  # the shipped GADGET-4 sample: both outputs have SUBFIND's time from its log
    assert {o["snap"]: o["subfind_s"] for o in real["outputs"]} == {0: 4.00, 1: 5.74}
    for o in real["outputs"]:
        assert (o["n_groups"], o["particles_in_groups"]) in bench.SUBFIND_SECONDS
        for key in ("warm_s", "cold_wall_s", "cold_reported_s", "warm_cpu_s", "cold_cpu_s", "speedup_warm",
                    "speedup_cold"):
            assert positive(o[key]), (key, o)
        assert o["speedup_warm"] == pytest.approx(o["subfind_s"] / o["warm_s"])
        assert o["speedup_cold"] == pytest.approx(o["subfind_s"] / o["cold_wall_s"])
        assert o["cold_wall_s"] > o["cold_reported_s"]  # the process's start-up is on top
    app = r["app"]
    assert app["n_particles"] == r["halo_load"]["largest"]["n_particles"]
    for key in ("load_s", "predict_s", "analysis_s", "scene_s", "total_s"):
        assert positive(app[key]), (key, app[key])
    assert app["payload_bytes"] > 10_000  # the packed scene of both views
    gpu_rows = (inf["gpu"], tr["gpu"])
    if r["machine"]["gpu"] is None:
        assert all(row == {"status": "n/a", "reason": "no GPU on this machine"} for row in gpu_rows)
    table = capsys.readouterr().out
    assert "Halo load" in table and "Inference" in table and "Training" in table and "App" in table
    assert "predict vs SUBFIND" in table and "5.74 s" in table and "4.00 s" in table
    assert "n/a" not in table.split("Training")[0].replace("GPU: n/a", "")


def test_missing_model_is_an_na_row_not_a_crash(small_sim_dir, tmp_path):
    row = bench.bench_inference(small_sim_dir, str(tmp_path / "no-model.pt"), 1, quick=True)
    assert row["status"] == "n/a" and "cannot be loaded" in row["reason"]
    row = bench.bench_app(small_sim_dir, str(tmp_path / "no-model.pt"))
    assert row["status"] == "n/a"


def test_real_section_without_a_snapshot_is_an_na_row(tmp_path):
    row = bench.bench_real(tmp_path / "nothing", "all-primary", 1, quick=True)
    assert row["status"] == "n/a" and "--real" in row["reason"]


def test_halo_load_needs_a_chunked_snapshot(cutout_paths):
    row = bench.bench_halo_load(cutout_paths[0], 1, quick=True)
    assert row["status"] == "n/a" and "chunked snapshot" in row["reason"]
