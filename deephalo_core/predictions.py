"""Predictions kept on disk, so nobody waits twice for the same halo, and the scores of each.

One file per (model, data source, FoF group):

    cache_dir()/predictions/<model key>/<source key>/group-<id>.npz

holding the labels (int32), the seconds the prediction took and, where the source has Subfind
labels, the halo's scores (ARI, PQ, subhalos found and expected), computed once when the labels
are made. The model key is the sha256 of the checkpoint's bytes (`Method.checksum`), or the
baseline's name; the source key hashes the resolved path, the snapshot number and the size and
modification time of the snapshot's files, so retraining a model or rewriting the data starts
afresh, while a server restart or another user reuses what is there. Files are written atomically,
so any number of threads and processes can share the folder: a reader sees a whole prediction or
none, and two writers of the same halo write the same labels.

`Precompute(method, sim)` predicts every halo of a snapshot in a background thread, largest first,
skipping the ones already on disk; `halo_scores(method, sim)` gathers the scores predicted so far.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import threading
import time
import weakref
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from deephalo_core import paths
from deephalo_core.atomic import save_npz, write_json

SCORE_COLUMNS = ("group_id", "ari", "pq", "n_found", "n_expected")
_FILE = re.compile(r"group-(\d+)\.npz")
_NUMBERED = re.compile(r"_(\d+)(?:\.\d+)?\.hdf5")  # snap_099.0.hdf5, snapshot_001.hdf5, offsets_099.hdf5
_NUMBERED_DIR = re.compile(r"(?:snapdir|groups)_(\d+)")
_MAX_DEPTH = 3  # root/output/snapdir_NNN/... and root/postprocessing/offsets/...

_source_keys = weakref.WeakKeyDictionary()  # Simulation -> its source key (computed once)
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()
_scores_seen: dict[Path, dict[str, dict]] = {}  # folder -> {file name: score row}
_scores_guard = threading.Lock()


def model_key(method) -> str:
    """What names a method's predictions: its checkpoint's sha256, or the baseline's name."""
    if method.kind == "baseline" or not getattr(method, "checksum", None):
        return f"baseline-{method.name}"
    return f"sha256-{method.checksum}"


def source_files(sim) -> list[Path]:
    """The files a Simulation's particles and catalog come from, as far as their names tell:
    a file source itself, or the .hdf5 files of its snapshot number under a directory (other
    outputs' folders are not walked)."""
    path = Path(sim.path).resolve()
    snap = getattr(sim, "snap", None)
    if path.is_file():
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        depth = len(Path(root).relative_to(path).parts)
        dirs[:] = [] if depth >= _MAX_DEPTH else sorted(
            d for d in dirs if not d.startswith(".") and _same_snap(_NUMBERED_DIR.fullmatch(d), snap))
        found += [Path(root) / f for f in sorted(files) if f.endswith(".hdf5") and (
            f == "simulation.hdf5" or _same_snap(_NUMBERED.search(f), snap, default=snap is None))]
    return found


def _same_snap(match, snap, default: bool = True) -> bool:
    return default if match is None or snap is None else int(match.group(1)) == int(snap)


def source_key(sim) -> str:
    """A short hash naming a data source: resolved path, snapshot number, and each file's name,
    size and modification time (computed once per Simulation object)."""
    try:
        return _source_keys[sim]
    except (KeyError, TypeError):
        pass
    stamp = [(str(p), (s := p.stat()).st_size, s.st_mtime_ns) for p in source_files(sim)]
    text = json.dumps([str(Path(sim.path).resolve()), getattr(sim, "snap", None), stamp])
    key = hashlib.sha256(text.encode()).hexdigest()[:24]
    try:
        _source_keys[sim] = key
    except TypeError:  # an object without weak references: recompute next time
        pass
    return key


def _where(method, sim) -> Path:
    return paths.cache_dir() / "predictions" / model_key(method) / source_key(sim)


def folder(method, sim) -> Path:
    """Where one method's predictions for one data source live (made on first use, with a small
    JSON note of what they are)."""
    where = _where(method, sim)
    note = where / "about.json"
    if not note.exists():
        write_json(note, {"method": method.name,
                          "checkpoint": str(method.checkpoint) if method.checkpoint else None,
                          "data": str(Path(sim.path).resolve()), "snap": getattr(sim, "snap", None),
                          "kind": getattr(sim, "kind", None)})
    return where


def _file(where: Path, group_id: int) -> Path:
    return where / f"group-{int(group_id)}.npz"


def _read(path: Path) -> dict | None:
    """A prediction file's arrays, or None where it is missing or unreadable (then it is redone)."""
    try:
        with np.load(path) as z:
            return {name: z[name] for name in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def _lock(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def scores_for(halo, labels: np.ndarray) -> dict:
    """A halo's scores against Subfind's labels (NaN without them): ARI, PQ, subhalos found (the
    prediction's, primary included) and expected (Subfind's), as the Compare page counts them."""
    if halo.labels is None:
        return dict(ari=np.nan, pq=np.nan, n_found=float(len(np.unique(labels[labels >= 0]))),
                    n_expected=np.nan)
    from deephalo_core.metrics import halo_metrics

    m = halo_metrics(halo.labels, labels)
    return dict(ari=m["ari"], pq=m["pq"], n_found=float(m["n_pred"]), n_expected=float(m["n_true"]))


def store(where: Path, halo, labels: np.ndarray, seconds: float) -> None:
    """Save one halo's prediction and its scores (atomically) in `where` (see `folder`)."""
    labels = np.asarray(labels, dtype=np.int32)
    scores = scores_for(halo, labels)
    save_npz(_file(where, halo.group_id), labels=labels, seconds=np.float64(seconds),
             **{name: np.float64(value) for name, value in scores.items()})


def cached_labels(method, sim, group_id: int) -> np.ndarray | None:
    """The labels on disk for this halo, or None."""
    found = _read(_file(folder(method, sim), group_id))
    return None if found is None or "labels" not in found else found["labels"].astype(np.int32)


def get_or_predict(method, sim, group_id: int, halo=None) -> tuple[np.ndarray, float, bool]:
    """(int32 labels, seconds the prediction took, whether it came from disk) for one halo. A halo
    that another thread of this process is predicting right now is waited for, not redone."""
    where = folder(method, sim)
    path = _file(where, group_id)

    def on_disk():
        found = _read(path)
        if found is not None and "labels" in found and (
                halo is None or len(found["labels"]) == halo.n_particles):
            return found["labels"].astype(np.int32), float(found["seconds"]), True
        return None

    hit = on_disk()
    if hit is not None:
        return hit
    with _lock(path):
        hit = on_disk()  # made by another thread while this one waited
        if hit is not None:
            return hit
        from deephalo_core.methods import timed_predict

        halo = halo if halo is not None else sim.load_halo(int(group_id))
        labels, seconds = timed_predict(method, halo)
        labels = np.asarray(labels, dtype=np.int32)
        store(where, halo, labels, seconds)
        return labels, seconds, False


def halo_scores(method, sim) -> pd.DataFrame:
    """group_id, ari, pq, n_found, n_expected of every halo whose prediction is on disk (an empty
    frame with these columns when there is none). Files read once per process, then remembered."""
    where = _where(method, sim)  # only read: the folder is not made here
    try:
        names = [e.name for e in os.scandir(where) if _FILE.fullmatch(e.name)]
    except FileNotFoundError:
        names = []
    with _scores_guard:
        seen = _scores_seen.setdefault(where, {})
        for name in names:
            if name not in seen:
                found = _read(where / name)
                if found is not None and "ari" in found:
                    seen[name] = {"group_id": int(_FILE.fullmatch(name).group(1)),
                                  **{c: float(found[c]) for c in SCORE_COLUMNS[1:]}}
        rows = [seen[name] for name in names if name in seen]
    frame = pd.DataFrame(rows, columns=list(SCORE_COLUMNS))
    frame["group_id"] = frame["group_id"].astype(np.int64)
    return frame.sort_values("group_id", ignore_index=True)


def worst_first(table: pd.DataFrame) -> pd.DataFrame:
    """Halos with scores (columns ari, pq, n_particles; n_subhalos and fuzz_fraction when known),
    the worst first: lowest ARI, then lowest PQ, the larger halo first among ties; unscored last.

    Halos whose SUBFIND truth is a single label (one subhalo, no fuzz) come after the rest: ARI is 0
    there as soon as one particle differs, so on a real snapshot dozens of small, nearly right
    halos would otherwise open the list (their PQ still says how right they are)."""
    one_label = pd.Series(False, index=table.index)
    if {"n_subhalos", "fuzz_fraction"} <= set(table.columns):
        one_label = (table["n_subhalos"] <= 1) & (table["fuzz_fraction"] <= 0)
    keys = table.assign(_unscored=table["ari"].isna(), _one_label=one_label)
    ordered = keys.sort_values(["_unscored", "_one_label", "ari", "pq", "n_particles"],
                               ascending=[True, True, True, True, False], na_position="last", kind="stable")
    return ordered.drop(columns=["_unscored", "_one_label"]).reset_index(drop=True)


_RUNNING = weakref.WeakSet()  # started jobs, stopped and joined when the interpreter exits


@atexit.register
def _stop_all_at_exit() -> None:
    """A daemon thread still inside torch while the interpreter tears down aborts the process
    ("terminate called without an active exception"): finish the batch in hand and stop first."""
    for job in list(_RUNNING):
        job.stop(timeout=60.0)


class Precompute:
    """Predict every halo of `sim` with `method` in a background thread, largest first, skipping
    those on disk. Halos are segmented in batches (`Method.predict_many`), each batch's seconds
    shared among its halos by particle count. The thread runs at a lower CPU priority than the
    process, so a halo someone is waiting for goes first. `progress()` -> (done, total)."""

    BATCH_HALOS = 32
    BATCH_PARTICLES = 50_000

    def __init__(self, method, sim, start: bool = True):
        self.method, self.sim = method, sim
        table = sim.halos.sort_values("n_particles", ascending=False, kind="stable")
        self.group_ids = [int(g) for g in table["group_id"]]
        self.sizes = dict(zip(self.group_ids, (int(n) for n in table["n_particles"])))
        self.errors: dict[int, str] = {}
        self.where = folder(method, sim)  # fixed now: the data home may change in this process later
        self._done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"precompute-{model_key(method)[:16]}-{source_key(sim)[:8]}")
        self.started_at = self.finished_at = None
        if start:
            self.start()

    def start(self) -> None:
        if not self._thread.is_alive() and self.started_at is None:
            self.started_at = time.time()
            _RUNNING.add(self)
            self._thread.start()

    def progress(self) -> tuple[int, int]:
        return self._done, len(self.group_ids)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the batch in hand (its predictions are kept)."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # this thread only
        except (AttributeError, OSError):
            pass
        sim = self._own_simulation()
        on_disk = {int(m.group(1)) for e in os.scandir(self.where) if (m := _FILE.fullmatch(e.name))}
        todo = [g for g in self.group_ids if g not in on_disk]
        self._done = len(self.group_ids) - len(todo)
        batch = []
        for g in todo:
            if self._stop.is_set():
                break
            batch.append(g)
            if len(batch) >= self.BATCH_HALOS or sum(self.sizes[b] for b in batch) >= self.BATCH_PARTICLES:
                self._predict(sim, batch)
                batch = []
        if batch and not self._stop.is_set():
            self._predict(sim, batch)
        self.finished_at = time.time()

    def _own_simulation(self):
        """A Simulation of our own for this thread (file handles are not shared across threads),
        the page's one where the source cannot be reopened."""
        from deephalo_core.data import open_simulation

        try:
            return open_simulation(self.sim.path, snap=self.sim.snap)
        except Exception:  # noqa: BLE001 (a source only its opener knows how to open)
            return self.sim

    def _predict(self, sim, groups: list[int]) -> None:
        where = self.where
        # a halo a page is predicting right now (its lock taken) is left to it, and one it has
        # finished is on disk; the locks held here make a page wait for this batch's halos
        held = [(g, lock) for g in groups if (lock := _lock(_file(where, g))).acquire(blocking=False)]
        todo = [g for g, _ in held if not _file(where, g).exists()]
        failed = None
        try:
            halos = [sim.load_halo(g) for g in todo]
            started = time.perf_counter()
            labels = self.method.predict_many(halos)
            seconds = time.perf_counter() - started
            total = max(sum(h.n_particles for h in halos), 1)
            for halo, lab in zip(halos, labels):
                store(where, halo, lab, seconds * halo.n_particles / total)
        except Exception as err:  # noqa: BLE001 (one bad batch must not end the others)
            failed = err
        finally:
            for _, lock in held:
                lock.release()
        if failed is not None and len(groups) > 1:  # find the halo that fails; keep the rest
            for g in groups:
                self._predict(sim, [g])
            return
        if failed is not None:
            self.errors[groups[0]] = f"{type(failed).__name__}: {failed}"
        self._done += len(groups)
