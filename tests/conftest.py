"""Shared fixtures: small synthetic snapshots in the real TNG layout, made once per test session."""
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def small_sim_dir(tmp_path_factory) -> Path:
    """A small synthetic TNG snapshot (simulation root) spread over 3 chunks."""
    from deephalo_core.synth import generate

    out = tmp_path_factory.mktemp("synth-small")
    generate(out, seed=7, n_groups=12, n_chunks=3, progress=False)
    return out


@pytest.fixture(scope="session")
def cutout_paths() -> list[Path]:
    return sorted(DATA.glob("cutout_*.hdf5"))


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shipped real GADGET-4 sample's output directory (outputs 000 at z = 1, 001 at z = 0)."""
    from deephalo_core.paths import SAMPLE_DIR

    assert (SAMPLE_DIR / "snapshot_001.hdf5").is_file(), "the shipped sample is missing"
    return SAMPLE_DIR
