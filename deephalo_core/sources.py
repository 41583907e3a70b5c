"""The explorer's data-source choice, resolved into a `Simulation` and its list of outputs.

Four kinds of source: the shipped real GADGET-4 sample (the default; outputs 000 at z = 1 and 001
at z = 0), the embedded synthetic snapshot (made on first use), a simulation path the user types
(a TNG, GADGET-4 or AREPO root or output directory, one snapshot file, or `simulation.hdf5`), or a
single cutout file. The resolving itself is `deephalo_core.data.open_simulation`; this module only
decides which path, and makes the embedded snapshot when it is missing.
"""
from __future__ import annotations

import fcntl
import inspect
import os
import shutil
from pathlib import Path
from typing import Callable

from deephalo_core import paths
from deephalo_core.data.types import OutputInfo
from deephalo_core.errors import DataError

SAMPLE = "sample"
EMBEDDED = "embedded"
TNG_PATH = "tng"
CUTOUT = "cutout"
KINDS = {  # the first is the default
    SAMPLE: "Real GADGET-4 sample (z = 0 and z = 1)",
    EMBEDDED: "Embedded synthetic snapshot",
    TNG_PATH: "Simulation path (TNG, GADGET-4 or AREPO output)",
    CUTOUT: "Cutout file",
}
DEFAULT_KIND = SAMPLE
# The one output the synthetic generator writes (write_snapshot's snap 99, at z = 0): listed
# before the embedded snapshot exists, so listing never has to generate it.
EMBEDDED_OUTPUTS = [OutputInfo(snap=99, redshift=0.0, time=1.0)]
_COMPLETE_MARK = ".complete"


def embedded_ready() -> bool:
    return (paths.embedded_snapshot_dir() / _COMPLETE_MARK).exists()


def ensure_embedded(progress: Callable[[float, str], None] | None = None) -> Path:
    """The embedded snapshot's root, generated first if missing (seed and size from `paths`).

    Generation writes into a temporary sibling directory and renames it into place, so an
    interrupted run never leaves a half-written snapshot behind; a file lock keeps two sessions
    from generating it at the same time. `progress(fraction, message)` is told how it goes.
    """
    target = paths.embedded_snapshot_dir()
    if embedded_ready():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if embedded_ready():  # another session made it while we waited
            return target
        from deephalo_core.synth import generate

        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        n_groups = paths.embedded_groups()
        if progress:
            progress(0.0, f"generating the embedded synthetic snapshot ({n_groups} groups, seed "
                          f"{paths.EMBEDDED_SEED}); this happens once")
        kwargs = dict(seed=paths.EMBEDDED_SEED, n_groups=n_groups, n_chunks=paths.EMBEDDED_CHUNKS)
        accepts_callback = "progress_callback" in inspect.signature(generate).parameters
        if accepts_callback and progress:
            kwargs["progress_callback"] = lambda frac, msg="": progress(float(frac), msg or "generating")
        generate(tmp, progress=not accepts_callback, **kwargs)
        (tmp / _COMPLETE_MARK).write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
        if progress:
            progress(1.0, "embedded snapshot ready")
    return target


def source_path(kind: str, typed_path: str | None = None) -> Path:
    """The path a source choice stands for (the embedded one made if needed); DataError if unusable."""
    if kind == SAMPLE:
        if not (paths.SAMPLE_DIR / "snapshot_001.hdf5").is_file():
            raise DataError(f"the shipped sample is missing from {paths.SAMPLE_DIR}; restore it "
                            "from the repository (git checkout -- assets/sample)")
        return paths.SAMPLE_DIR
    if kind == EMBEDDED:
        return paths.embedded_snapshot_dir()
    if kind not in KINDS:
        raise DataError(f"unknown data source {kind!r}; choose one of {', '.join(KINDS)}")
    text = (typed_path or "").strip()
    if not text:
        what = ("a TNG simulation root, a TNG, GADGET-4 or AREPO output directory, one "
                "snapshot file or simulation.hdf5") if kind == TNG_PATH else "a TNG cutout .hdf5 file"
        raise DataError(f"no path given for the {KINDS[kind].lower()}: type the path of {what}")
    path = Path(os.path.expanduser(text))
    if not path.exists():
        raise DataError(f"{path} does not exist; check the path (it is read on the server's machine)")
    if kind == CUTOUT and not path.is_file():
        raise DataError(f"{path} is a directory, not a cutout file; choose "
                        f"'{KINDS[TNG_PATH]}' for a simulation directory or give the cutout's "
                        ".hdf5 file")
    return path


def list_outputs(kind: str, typed_path: str | None = None) -> list[OutputInfo]:
    """The outputs (snapshot number, redshift, scale factor) a source choice offers, sorted by
    snapshot, each with particles and a catalog; reads only headers, generates nothing."""
    from deephalo_core.data import list_outputs as outputs_at

    if kind == EMBEDDED and not embedded_ready():
        return list(EMBEDDED_OUTPUTS)
    return outputs_at(source_path(kind, typed_path))


def open_source(kind: str, typed_path: str | None = None, snap: int | None = None,
                progress: Callable[[float, str], None] | None = None):
    """The `Simulation` for a source choice at output `snap` (None: its last output); DataError
    with a clear message when it cannot be read. `progress(fraction, message)` hears about the
    embedded snapshot's generation, the only slow step."""
    from deephalo_core.data import open_simulation

    if kind == EMBEDDED:
        return open_simulation(ensure_embedded(progress), snap=snap)
    return open_simulation(source_path(kind, typed_path), snap=snap)


def describe(kind: str, typed_path: str | None = None) -> str:
    if kind == SAMPLE:
        return f"real GADGET-4 sample {paths.SAMPLE_DIR.parent.name} (64³ particles, 8750 ckpc/h box)"
    if kind == EMBEDDED:
        return f"embedded synthetic snapshot (seed {paths.EMBEDDED_SEED}, {paths.embedded_groups()} groups)"
    return f"{KINDS.get(kind, kind).lower()} {typed_path}"
