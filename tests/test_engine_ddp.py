"""Training under torchrun: two CPU processes (gloo), halos sharded, rank 0 writes a loadable result."""
import json
import os
import subprocess
import sys

import torch

from deephalo_core.methods import load_method


def test_torchrun_two_processes(small_sim_dir, tmp_path):
    out = tmp_path / "ddp-run"
    env = dict(os.environ, DEEPHALO_HOME=str(tmp_path / "home"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "deephalo_core", "train", "--data", str(small_sim_dir), "--model", "offset-cluster",
           "--out", str(out), "--epochs", "1", "--max-points", "1500", "--max-halos", "4", "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    assert json.loads((out / "status.json").read_text())["state"] == "finished"
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1  # rank 0 alone writes
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1
    method = load_method(out / "best.pt", device="cpu")
    assert method.kind == "model"
