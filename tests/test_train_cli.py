"""The training CLI's run directory contract: files, status, resume, clean stop."""
import json

import pytest
import torch

from deephalo_core import train
from deephalo_core.methods import load_method
from deephalo_core.models import model_from_checkpoint


@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPHALO_HOME", str(tmp_path / "home"))
    return tmp_path


def _args(data, out, *extra):
    return ["--data", str(data), "--model", "offset-cluster", "--out", str(out), "--max-points", "3000",
            "--no-progress", *extra]


def test_train_one_epoch_then_resume(small_sim_dir, home):
    out = home / "run"
    assert train.main(_args(small_sim_dir, out, "--epochs", "1")) == 0
    for name in ("config.json", "metrics.jsonl", "last.pt", "best.pt", "train.log", "status.json"):
        assert (out / name).exists(), name
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished" and status["epoch"] == 1 and status["epochs"] == 1
    assert {"pid", "started_at", "updated_at", "error"} <= set(status)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1
    for key in ("epoch", "train_loss", "val_loss", "val_ari", "val_pq", "val_matched_iou", "seconds"):
        assert key in rows[0], key
    assert rows[0]["train_loss"] > 0 and -1 <= rows[0]["val_ari"] <= 1
    assert "epoch 1" in (out / "train.log").read_text()

    ckpt = torch.load(out / "best.pt", weights_only=True)
    assert ckpt["model"] == "offset-cluster" and ckpt["epoch"] == 1
    model = model_from_checkpoint(ckpt)
    assert model.config["cluster_eps"] == ckpt["config"]["cluster_eps"]
    method = load_method(out / "best.pt", device="cpu")
    assert method.kind == "model" and method.name == "offset-cluster"
    # the default segmenter's own inputs unless --features says otherwise
    assert json.loads((out / "config.json").read_text())["features"] == "binding"
    assert method.feature_set == "binding" and model.config["radial_features"] is True

    assert train.main(_args(small_sim_dir, out, "--epochs", "2", "--resume")) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 2
    assert "resumed from" in (out / "train.log").read_text()


def test_stop_file_ends_the_run_cleanly(small_sim_dir, home, monkeypatch):
    out = home / "stopped"
    run = train.Run(out, writer=False)
    out.mkdir()
    assert not run.stop_requested()
    (out / "STOP").write_text("now")
    assert run.stop_requested()
    (out / "STOP").unlink()
    # the trainer removes a stale STOP at start, so make the file appear once training is going
    from deephalo_core.models.offset_cluster import OffsetClusterModel

    original = OffsetClusterModel.loss

    def loss_then_stop(self, batch):
        (out / "STOP").write_text("stop")
        return original(self, batch)

    monkeypatch.setattr(OffsetClusterModel, "loss", loss_then_stop)
    assert train.main(_args(small_sim_dir, out, "--epochs", "3")) == 0
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "stopped"
    assert (out / "last.pt").exists()
    assert not (out / "metrics.jsonl").exists()  # stopped after one step, before any epoch ended


def test_bad_data_marks_the_run_failed(home):
    out = home / "failed"
    assert train.main(_args(home / "no-such-snapshot", out, "--epochs", "1")) == 2
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and "no-such-snapshot" in status["error"]


def test_unknown_model_is_a_clear_error(small_sim_dir, home):
    out = home / "bad-model"
    code = train.main(["--data", str(small_sim_dir), "--model", "resnet", "--out", str(out), "--no-progress"])
    assert code == 2
    assert "unknown model 'resnet'" in json.loads((out / "status.json").read_text())["error"]
