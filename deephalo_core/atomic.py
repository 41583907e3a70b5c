"""Atomic file writes: write to a temporary name beside the target, then rename onto it.

A reader (the app, a resumed run, another rank) sees either the old file or the whole new one,
never half of one; a failed write leaves nothing behind.
"""
import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path, prefix: str | None = None, suffix: str = ".tmp"):
    """Yield a temporary path next to `path`; it replaces `path` when the block succeeds and is
    removed when it fails. `prefix` names the temporary file (default: "." + the target's name)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; these files are meant to be read by others
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path, payload, indent: int | None = 1, **dump_kwargs) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=indent, **dump_kwargs))


def save_npz(path, prefix: str | None = None, **arrays) -> None:
    with atomic_path(path, prefix=prefix, suffix=".tmp.npz") as tmp:
        np.savez(tmp, **arrays)
