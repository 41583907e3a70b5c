"""Training runs on disk: launch one in the background, read its state, stop it, list the history.

A run is a directory under `paths.runs_dir()` written by `python -m deephalo_core train --out DIR`
(config.json, metrics.jsonl, status.json, last.pt, best.pt). The launcher adds launch.json (the
command, pid, when) and sends the process's stdout/stderr to train.log. Everything the app shows
is read back from these files, so the view survives page reloads and server restarts.

One run at a time per machine: an active-run lock file in the runs directory names the running
run; a lock whose process is gone is stale and is cleared.
"""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from deephalo_core import paths
from deephalo_core.atomic import write_json

LOCK_NAME = "active-run.json"
TERMINAL_STATES = ("finished", "stopped", "failed")


class RunBusyError(RuntimeError):
    """Another training run is still going on this machine."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _process_start_ticks(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), to tell a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int | None, start_ticks: int | None = None) -> bool:
    """True while `pid` runs (and, given `start_ticks`, is still the same process)."""
    if not pid:
        return False
    try:  # reap it if it is our own finished child, so it does not linger as a zombie
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return False
    except OSError:
        return False
    return start_ticks is None or _process_start_ticks(pid) == start_ticks


def train_command(config: dict, run_dir: Path) -> list[str]:
    """The training CLI call for a form's settings (keys are the CLI's flag names without --)."""
    cmd = [sys.executable, "-m", "deephalo_core", "train"]
    for key, value in config.items():
        if value is None or value is False or value == "":
            continue
        flag = "--" + key.replace("_", "-")
        cmd += [flag] if value is True else [flag, str(value)]
    return cmd + ["--out", str(run_dir)]


def _new_run_dir(root: Path, model: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = root / f"{stamp}-{model}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    run_dir.mkdir(parents=True)
    return run_dir


def active_run(root: Path | None = None) -> Path | None:
    """The run directory of the run going on now, or None (clears a stale lock)."""
    root = Path(root or paths.runs_dir())
    lock = _read_json(root / LOCK_NAME)
    if lock is None:
        return None
    if process_alive(lock.get("pid"), lock.get("start_ticks")):
        return Path(lock["run_dir"])
    (root / LOCK_NAME).unlink(missing_ok=True)
    return None


def launch(config: dict, root: Path | None = None, command: list[str] | None = None) -> Path:
    """Start a training run in the background and return its directory.

    `config` holds the training CLI's options (data, model, epochs, lr, loss, k, max_points,
    seed, features). `command` replaces the CLI call (tests); "{run_dir}" in it is filled in.
    Raises RunBusyError while another run is going.
    """
    root = Path(root or paths.runs_dir())
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # check-and-claim the active-run slot in one step
        busy = active_run(root)
        if busy is not None:
            raise RunBusyError(f"run {busy.name} is still going; stop it or wait for it to end "
                               "before starting another (one run at a time on this machine)")
        run_dir = _new_run_dir(root, str(config.get("model", "run")))
        cmd = [part.replace("{run_dir}", str(run_dir)) for part in command] if command \
            else train_command(config, run_dir)
        with open(run_dir / "train.log", "ab") as log:
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       cwd=str(paths.REPO_ROOT))
        launch_info = dict(pid=process.pid, start_ticks=_process_start_ticks(process.pid),
                           command=cmd, config=config, launched_at=_now())
        write_json(run_dir / "launch.json", launch_info)
        write_json(root / LOCK_NAME, dict(run_dir=str(run_dir), pid=process.pid,
                                                  start_ticks=launch_info["start_ticks"]))
    return run_dir


def read_metrics(run_dir: Path) -> pd.DataFrame:
    """metrics.jsonl as a table, one row per epoch (empty before the first epoch ends)."""
    rows = []
    try:
        for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line being written right now
    except FileNotFoundError:
        pass
    return pd.DataFrame(rows)


def log_tail(run_dir: Path, lines: int = 30) -> str:
    try:
        with open(Path(run_dir) / "train.log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    # progress bars redraw a line with carriage returns: keep each line's last state
    text = text.rstrip("\n")
    last_states = [line.rstrip("\r").split("\r")[-1] for line in text.split("\n")]
    return "\n".join(last_states[-lines:])


def status(run_dir: Path) -> dict:
    """The run's state as the app shows it: state, epoch, epochs, error, eta_seconds, ...

    status.json (written by the trainer) is the source; the launcher's pid says whether the
    process still lives, so a crashed or killed run reads as failed, with the log's last lines
    as its error when the trainer had no chance to write one.
    """
    run_dir = Path(run_dir)
    launch_info = _read_json(run_dir / "launch.json") or {}
    state = _read_json(run_dir / "status.json") or {}
    out = dict(run=run_dir.name, run_dir=str(run_dir), state=state.get("state", "starting"),
               epoch=state.get("epoch", 0), epochs=state.get("epochs") or
               (launch_info.get("config") or {}).get("epochs"),
               error=state.get("error"), started_at=state.get("started_at") or launch_info.get("launched_at"),
               updated_at=state.get("updated_at"), pid=launch_info.get("pid") or state.get("pid"),
               stop_requested=(run_dir / "STOP").exists(), eta_seconds=None)
    if out["state"] not in TERMINAL_STATES:
        alive = process_alive(out["pid"], launch_info.get("start_ticks")) if launch_info \
            else process_alive(state.get("pid"))
        if not alive:
            out["state"] = "failed"
            tail = log_tail(run_dir, 8).strip()
            out["error"] = out["error"] or ("the training process ended without finishing"
                                            + (f"; last log lines:\n{tail}" if tail else ""))
    metrics = read_metrics(run_dir)
    if out["state"] == "running" and len(metrics) and "seconds" in metrics and out["epochs"]:
        per_epoch = float(metrics["seconds"].tail(3).mean())
        out["eta_seconds"] = max(0.0, per_epoch * (int(out["epochs"]) - int(metrics["epoch"].max())))
    return out


def request_stop(run_dir: Path) -> None:
    """Ask the trainer to stop after the current step (it keeps last.pt and marks itself stopped)."""
    stop = Path(run_dir) / "STOP"
    stop.write_text(_now())


def list_runs(root: Path | None = None) -> list[dict]:
    """Every run directory under `root`, newest first, with status and final metrics."""
    root = Path(root or paths.runs_dir())
    if not root.is_dir():
        return []
    runs = []
    for run_dir in sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                          key=lambda p: p.stat().st_mtime, reverse=True):
        if not any((run_dir / name).exists() for name in ("launch.json", "status.json", "config.json")):
            continue
        info = status(run_dir)
        config = _read_json(run_dir / "config.json") or (_read_json(run_dir / "launch.json") or {}).get("config") or {}
        info["model"] = config.get("model", "?")
        info["config"] = config
        metrics = read_metrics(run_dir)
        info["final"] = metrics.iloc[-1].to_dict() if len(metrics) else {}
        best = run_dir / "best.pt"
        info["checkpoint"] = str(best) if best.exists() else None
        runs.append(info)
    return runs


def finished_checkpoints(root: Path | None = None) -> list[dict]:
    """Runs whose best checkpoint can be used as a model: finished (or stopped) with best.pt."""
    return [r for r in list_runs(root) if r["checkpoint"] and r["state"] in ("finished", "stopped")]


BASELINES = [("Baseline: all-primary", "all-primary"), ("Baseline: HDBSCAN", "hdbscan")]


def model_choices(root: Path | None = None) -> list[tuple[str, str]]:
    """(label, spec for methods.load_method) of every selectable model: the shipped default,
    each finished (or stopped) run's best checkpoint, and the two baselines."""
    shipped = "Shipped default model" + ("" if paths.DEFAULT_MODEL.exists() else " (not shipped yet)")
    choices = [(shipped, "default")]
    for run in finished_checkpoints(root):
        choices.append((f"Run {run['run']} ({run['model']}, {run['state']})", run["checkpoint"]))
    return choices + BASELINES


def model_mtime(spec: str) -> float:
    """Modification time of the checkpoint behind a spec (0 for baselines): part of every cache key,
    so a rewritten checkpoint is never served from a stale cache."""
    path = paths.DEFAULT_MODEL if spec == "default" else Path(spec)
    return path.stat().st_mtime if path.is_file() else 0.0


def wait(run_dir: Path, timeout: float = 60.0, poll: float = 0.2) -> dict:
    """Block until the run reaches a terminal state (tests, scripts); raises TimeoutError."""
    end = time.monotonic() + timeout
    while True:
        info = status(run_dir)
        if info["state"] in TERMINAL_STATES:
            return info
        if time.monotonic() > end:
            raise TimeoutError(f"run {run_dir} still {info['state']} after {timeout:.0f} s")
        time.sleep(poll)

