"""The data layer's fast paths agree with the plain ones: direct file reads, the one-pass unwrap,
run-length labels. (Speed itself is measured by `python -m deephalo_core bench`, not asserted.)"""
import shutil

import h5py
import numpy as np
import pytest

import handmade_tng as hm
from deephalo_core.data import open_simulation
from deephalo_core.data.simulation import _unwrap
from deephalo_core.errors import DataError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return hm.write_handmade(tmp_path_factory.mktemp("handmade-speed"))


def reference_unwrap(coords, center, box):
    d = coords - center
    d -= box * np.round(d / box)
    return center + d


@pytest.mark.parametrize("center", [[500.0, 500.0, 500.0], [2.0, 998.0, 500.0],
                                    [999.0, 0.5, 999.5], [0.0, 0.0, 0.0]])
def test_unwrap_matches_minimum_image(center):
    rng = np.random.default_rng(1)
    box, center = 1000.0, np.array(center)
    true = center + rng.normal(0, 30, (5000, 3))
    stored = np.mod(true, box)
    got = _unwrap(stored.copy(), center, box)
    np.testing.assert_allclose(got, reference_unwrap(stored, center, box), atol=1e-9)
    np.testing.assert_allclose(got, true, atol=1e-9)


def test_unwrap_takes_other_dtypes_and_empty_input():
    center = np.array([999.0, 1.0, 500.0], np.float32)
    stored = np.array([[1.0, 999.0, 500.0], [998.0, 2.0, 501.0]], dtype=">f8")  # big-endian file
    np.testing.assert_allclose(_unwrap(stored, center, 1000.0),
                               [[1001.0, -1.0, 500.0], [998.0, 2.0, 501.0]])
    assert _unwrap(np.zeros((0, 3)), center, 1000.0).shape == (0, 3)


def test_direct_reads_equal_h5py_across_chunks(root):
    with open_simulation(root) as sim:
        particles = sim._particles
        assert all(particles._raw_layout(k, "Coordinates") is not None
                   for k in range(particles.n_chunks)), "the writer's datasets should be contiguous"
        for start, stop in [(0, 930), (250, 330), (305, 625), (620, 620), (929, 930)]:
            for name in ("Coordinates", "Velocities", "ParticleIDs", "Potential"):
                ours = particles.read(name, start, stop)
                theirs = np.concatenate([h5py.File(p, "r")["PartType1"][name][()] for p in sorted(
                    (root / "output" / "snapdir_099").glob("snap_099.*.hdf5"))])[start:stop]
                assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
                np.testing.assert_array_equal(ours, theirs)


def test_chunked_compressed_datasets_read_through_h5py(root, tmp_path):
    copy = tmp_path / "sim"
    shutil.copytree(root, copy)
    chunk = copy / "output" / "snapdir_099" / "snap_099.1.hdf5"
    with h5py.File(chunk, "a") as f:
        data = f["PartType1/Coordinates"][()]
        del f["PartType1/Coordinates"]
        f.create_dataset("PartType1/Coordinates", data=data, chunks=(64, 3), compression="gzip")
    with open_simulation(root) as plain, open_simulation(copy) as gz:
        assert gz._particles._raw_layout(1, "Coordinates") is None
        for g in range(plain.header.n_groups):
            np.testing.assert_array_equal(gz.load_halo(g).pos, plain.load_halo(g).pos)


def test_truncated_dataset_bytes_are_a_data_error(root, tmp_path):
    copy = tmp_path / "sim"
    shutil.copytree(root, copy)
    with open_simulation(copy) as sim:
        layout = sim._particles._raw_layout(2, "ParticleIDs")
        assert layout is not None
        path = copy / "output" / "snapdir_099" / "snap_099.2.hdf5"
        with open(path, "r+b") as f:  # cut the file inside the IDs of chunk 2
            f.truncate(layout[1] + 10 * layout[4])
        with pytest.raises(DataError, match=r"ParticleIDs rows 630..880 from .*snap_099.2.hdf5 "
                                            r"failed .*truncated or corrupt"):
            sim.read_particles(630, 880, fields=("ParticleIDs",))


def test_run_length_labels_equal_per_subhalo_labels(small_sim_dir):
    with open_simulation(small_sim_dir) as sim:
        for g in range(sim.header.n_groups):
            halo = sim.load_halo(g)
            start, stop = sim.group_slice(g)
            expected = np.full(stop - start, -1, np.int32)
            for rank, s in enumerate(halo.subhalo_ids):
                lo, hi = sim.subhalo_slice(int(s))
                expected[lo - start:hi - start] = rank
            assert halo.labels.dtype == np.int32
            np.testing.assert_array_equal(halo.labels, expected)
        assert sim._label_plan[3].all(), "a well-formed snapshot takes the run-length path"


def test_handmade_labels_with_fuzz_and_empty_groups(root):
    with open_simulation(root) as sim:
        for g in range(4):
            np.testing.assert_array_equal(sim.load_halo(g).labels, hm.expected_labels(g))
        assert sim.load_halo(3).subhalo_ids.size == 0
