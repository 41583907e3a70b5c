"""`python -m deephalo_core synth`: the files it writes, what it prints, same seed same bytes."""
import subprocess
import sys

import h5py
import numpy as np
import pytest

from deephalo_core.synth import main

EXPECTED = [
    "output/snapdir_099/snap_099.0.hdf5",
    "output/snapdir_099/snap_099.1.hdf5",
    "output/groups_099/fof_subhalo_tab_099.0.hdf5",
    "postprocessing/offsets/offsets_099.hdf5",
    "simulation.hdf5",
]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth-cli")
    assert main(["--out", str(out), "--groups", "5", "--chunks", "2", "--seed", "3"]) == 0
    return out


def test_cli_writes_the_tng_file_names(written):
    for name in EXPECTED:
        assert (written / name).is_file(), name
    assert not (written / "output/snapdir_099/snap_099.2.hdf5").exists()


def test_cli_prints_time_and_sizes(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--groups", "3", "--chunks", "1", "--seed", "4"]) == 0
    text = capsys.readouterr().out
    assert "generated in" in text and "MB" in text and "snap_099.0.hdf5" in text


def test_same_seed_same_data(written, tmp_path):
    assert main(["--out", str(tmp_path), "--groups", "5", "--chunks", "2", "--seed", "3"]) == 0
    for name in EXPECTED[:2]:
        with h5py.File(written / name) as a, h5py.File(tmp_path / name) as b:
            for field in ("Coordinates", "Velocities", "ParticleIDs", "Potential", "SubfindHsml"):
                assert np.array_equal(a["PartType1"][field][()], b["PartType1"][field][()]), field


def test_bad_arguments_exit_with_a_message(tmp_path):
    result = subprocess.run([sys.executable, "-m", "deephalo_core", "synth", "--out", str(tmp_path),
                             "--groups", "0"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--groups" in result.stderr
