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
