"""Where the project keeps generated data, runs and the shipped model.

Everything generated lives under one data home: $DEEPHALO_HOME, else `.deephalo/` in the
repository, so a clone is self-contained and nothing is written outside it.
"""
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
DEFAULT_MODEL = ASSETS_DIR / "models" / "default.pt"
DEFAULT_MODEL_CARD = ASSETS_DIR / "models" / "default.json"
# The shipped real sample: a GADGET-4 run's output directory, z = 1 (000) and z = 0 (001); see its
# README.md
SAMPLE_DIR = ASSETS_DIR / "sample" / "L8750-N64-s181170" / "output"

# The embedded default snapshot: seed and size are part of its identity.
EMBEDDED_SEED = 0
EMBEDDED_GROUPS = 150
EMBEDDED_CHUNKS = 4


def data_home() -> Path:
    return Path(os.environ.get("DEEPHALO_HOME", REPO_ROOT / ".deephalo"))


def embedded_groups() -> int:
    """Groups in the embedded snapshot; $DEEPHALO_EMBEDDED_GROUPS makes a smaller one (tests, demos)."""
    return int(os.environ.get("DEEPHALO_EMBEDDED_GROUPS", EMBEDDED_GROUPS))


def embedded_snapshot_dir() -> Path:
    return data_home() / f"synthetic-seed{EMBEDDED_SEED}-groups{embedded_groups()}"


def runs_dir() -> Path:
    return data_home() / "runs"


def cache_dir() -> Path:
    return data_home() / "cache"
