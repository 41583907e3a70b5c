"""Background training runs: launch, live state from disk, stop, crash, one run at a time.

A small stand-in trainer (FAKE_TRAINER) speaks the training CLI's on-disk contract (status.json,
metrics.jsonl, best.pt, STOP) so these tests take seconds; the browser test runs the real CLI.
"""
import json
import os
import signal
import sys
import time

import pytest

from deephalo_core import runs

FAKE_TRAINER = r'''
import json, os, sys, time
out, epochs, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def status(state, epoch, error=None):
    tmp = os.path.join(out, "status.tmp")
    with open(tmp, "w") as f:
        json.dump(dict(state=state, pid=os.getpid(), epoch=epoch, epochs=epochs, error=error,
                       started_at="t0", updated_at="t1"), f)
    os.replace(tmp, os.path.join(out, "status.json"))
status("running", 0)
print("training starts", flush=True)
for epoch in range(1, epochs + 1):
    time.sleep(0.15)
    if mode == "crash" and epoch == 2:
        raise RuntimeError("loss became NaN at epoch 2")
    with open(os.path.join(out, "metrics.jsonl"), "a") as f:
        f.write(json.dumps(dict(epoch=epoch, train_loss=1.0 / epoch, val_loss=1.2 / epoch, val_ari=0.1 * epoch,
                                val_pq=0.1 * epoch, val_matched_iou=0.1 * epoch, seconds=0.15)) + "\n")
    open(os.path.join(out, "best.pt"), "wb").close()
    status("running", epoch)
    print(f"epoch {epoch} done", flush=True)
    if os.path.exists(os.path.join(out, "STOP")):
        status("stopped", epoch)
        sys.exit(0)
    if mode == "hang":
        time.sleep(60)
status("finished", epochs)
'''


@pytest.fixture
def fake(tmp_path):
    script = tmp_path / "fake_trainer.py"
    script.write_text(FAKE_TRAINER)

    def command(epochs=3, mode="ok"):
        return [sys.executable, str(script), "{run_dir}", str(epochs), mode]

    return command


@pytest.fixture
def root(tmp_path):
    return tmp_path / "runs"


def test_train_command_maps_form_to_cli_flags(tmp_path):
    cmd = runs.train_command(dict(data="/d", model="seed", epochs=2, lr=None, max_points=5000,
                                  loss="focal", resume=False), tmp_path / "r")
    assert cmd[1:4] == ["-m", "deephalo_core", "train"]
    assert cmd[4:] == ["--data", "/d", "--model", "seed", "--epochs", "2", "--max-points", "5000",
                       "--loss", "focal", "--out", str(tmp_path / "r")]


def test_run_finishes_with_metrics_log_and_checkpoint(root, fake):
    run_dir = runs.launch(dict(model="seed", epochs=3), root=root, command=fake(3))
    assert runs.active_run(root) == run_dir
    info = runs.wait(run_dir, timeout=30)
    assert info["state"] == "finished" and info["epoch"] == 3 and info["error"] is None
    metrics = runs.read_metrics(run_dir)
    assert metrics["epoch"].tolist() == [1, 2, 3]
    assert "epoch 3 done" in runs.log_tail(run_dir)
    assert runs.active_run(root) is None  # the lock is released once the process is gone
    [listed] = runs.list_runs(root)
    assert listed["model"] == "seed" and listed["final"]["val_ari"] == pytest.approx(0.3)
    assert [c["run"] for c in runs.finished_checkpoints(root)] == [run_dir.name]
    labels = [label for label, spec in runs.model_choices(root)]
    assert any(run_dir.name in label for label in labels) and labels[-2:] == [
        "Baseline: all-primary", "Baseline: HDBSCAN"]


def test_one_run_at_a_time(root, fake):
    first = runs.launch(dict(model="seed"), root=root, command=fake(1, "hang"))
    with pytest.raises(runs.RunBusyError, match="one run at a time"):
        runs.launch(dict(model="seed"), root=root, command=fake(1))
    runs.request_stop(first)
    pid = json.loads((first / "launch.json").read_text())["pid"]
    os.kill(pid, signal.SIGTERM)  # the hang mode sleeps past STOP; end it to free the slot
    deadline = time.monotonic() + 10
    while runs.active_run(root) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runs.active_run(root) is None
    second = runs.launch(dict(model="seed"), root=root, command=fake(1))
    assert runs.wait(second, timeout=30)["state"] == "finished"


def test_stop_ends_the_run_cleanly(root, fake):
    run_dir = runs.launch(dict(model="seed", epochs=50), root=root, command=fake(50))
    deadline = time.monotonic() + 20
    while runs.read_metrics(run_dir).empty and time.monotonic() < deadline:
        time.sleep(0.05)
    runs.request_stop(run_dir)
    info = runs.wait(run_dir, timeout=30)
    assert info["state"] == "stopped" and 1 <= info["epoch"] < 50
    assert info["stop_requested"] and (run_dir / "best.pt").exists()


def test_crashed_run_shows_failed_with_its_error(root, fake):
    run_dir = runs.launch(dict(model="seed", epochs=5), root=root, command=fake(5, "crash"))
    info = runs.wait(run_dir, timeout=30)
    assert info["state"] == "failed"
    assert "loss became NaN at epoch 2" in info["error"]
    assert runs.finished_checkpoints(root) == []


def test_killed_run_shows_failed(root, fake):
    run_dir = runs.launch(dict(model="seed", epochs=5), root=root, command=fake(5, "hang"))
    deadline = time.monotonic() + 20
    while runs.read_metrics(run_dir).empty and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runs.status(run_dir)["state"] == "running"
    pid = json.loads((run_dir / "launch.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    info = runs.wait(run_dir, timeout=10)
    assert info["state"] == "failed" and "ended without finishing" in info["error"]


def test_running_run_has_an_eta(root, fake):
    run_dir = runs.launch(dict(model="seed", epochs=5), root=root, command=fake(5, "hang"))
    try:
        deadline = time.monotonic() + 20
        while runs.read_metrics(run_dir).empty and time.monotonic() < deadline:
            time.sleep(0.05)
        info = runs.status(run_dir)
        assert info["eta_seconds"] == pytest.approx(0.15 * 4)
    finally:
        os.kill(json.loads((run_dir / "launch.json").read_text())["pid"], signal.SIGKILL)
        runs.wait(run_dir, timeout=10)


def test_log_tail_keeps_the_last_state_of_progress_bars(tmp_path):
    (tmp_path / "train.log").write_text("starting\nepoch 1:  10%\repoch 1:  50%\repoch 1: 100%\nval ari 0.5\n")
    assert runs.log_tail(tmp_path) == "starting\nepoch 1: 100%\nval ari 0.5"
    assert runs.log_tail(tmp_path, lines=1) == "val ari 0.5"
    assert runs.log_tail(tmp_path / "missing") == ""


def test_stale_lock_is_cleared(root):
    root.mkdir(parents=True)
    (root / runs.LOCK_NAME).write_text(json.dumps(dict(run_dir=str(root / "gone"), pid=2**22 + 12345)))
    assert runs.active_run(root) is None
    assert not (root / runs.LOCK_NAME).exists()


def test_model_mtime():
    assert runs.model_mtime("hdbscan") == 0.0
    assert runs.model_mtime(__file__) == pytest.approx(os.path.getmtime(__file__))
