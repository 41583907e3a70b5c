"""Reading the TNG layout the project's writer produces: tables, halos, labels, offsets, forms."""
import h5py
import numpy as np
import pytest

import handmade_tng as hm
from deephalo_core.data import open_simulation, write_snapshot
from deephalo_core.data import offsets as offsets_mod


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return hm.write_handmade(tmp_path_factory.mktemp("handmade"))


@pytest.fixture(scope="module")
def arrays():
    particles, groups, subhalos, unwrapped = hm.build_arrays()
    return particles, groups, subhalos, unwrapped


def group_starts():
    return np.concatenate([[0], np.cumsum([sum(l) + f for l, f in zip(hm.SUBHALO_LENGTHS, hm.FUZZ)])])


# -- writer: names, dtypes, header ---------------------------------------------------------------
def test_writer_layout_and_dtypes(root):
    out = root / "output"
    chunks = sorted((out / "snapdir_099").glob("snap_099.*.hdf5"))
    assert [p.name for p in chunks] == [f"snap_099.{k}.hdf5" for k in range(3)]
    assert not list(root.rglob(".*tmp*")), "temporary files left behind"
    with h5py.File(chunks[1], "r") as f:
        a = f["Header"].attrs
        assert a["NumPart_ThisFile"].dtype == np.int32 and a["NumPart_ThisFile"][1] == 310
        assert a["NumPart_Total"].dtype == np.uint32 and a["NumPart_Total"][1] == 930
        assert a["NumPart_Total_HighWord"].dtype == np.uint32
        assert a["NumFilesPerSnapshot"].dtype == np.int32 and a["NumFilesPerSnapshot"] == 3
        assert a["MassTable"].dtype == np.float64 and a["MassTable"][1] == hm.PARTICLE_MASS
        assert isinstance(a["Git_commit"], np.bytes_)
        assert a["Flag_DoublePrecision"].dtype == np.int32
        ds = f["PartType1"]
        assert ds["Coordinates"].dtype == np.float64 and ds["Coordinates"].shape == (310, 3)
        assert ds["Velocities"].dtype == np.float32
        assert ds["ParticleIDs"].dtype == np.uint64
        assert ds["Potential"].dtype == np.float32
        assert "Config" in f and "Parameters" in f
    with h5py.File(out / "groups_099" / "fof_subhalo_tab_099.0.hdf5", "r") as f:
        a = f["Header"].attrs
        assert a["Ngroups_Total"] == 4 and a["Nsubgroups_Total"] == 6 and a["NumFiles"] == 2
        assert a["Nids_Total"].dtype == np.int64 and a["Ngroups_ThisFile"].dtype == np.int32
        assert f["Group/GroupLenType"].dtype == np.int32 and f["Group/GroupLenType"].shape[1] == 6
        assert f["Group/GroupPos"].dtype == np.float32
        assert f["Subhalo/SubhaloIDMostbound"].dtype == np.uint64
        assert "IDs" in f
    with h5py.File(root / "postprocessing/offsets/offsets_099.hdf5", "r") as f:
        assert f["Group/SnapByType"].dtype == np.int64
        np.testing.assert_array_equal(f["Group/SnapByType"][:, 1], group_starts()[:-1])
        np.testing.assert_array_equal(f["FileOffsets/SnapByType"][:, 1], [0, 310, 620])


def test_writer_subhalos_stay_with_their_group_in_catalog_chunks(root):
    with h5py.File(root / "output/groups_099/fof_subhalo_tab_099.0.hdf5", "r") as f0:
        assert f0["Header"].attrs["Ngroups_ThisFile"] == 2
        assert set(f0["Subhalo/SubhaloGrNr"][()]) == {0, 1}


def test_writer_empty_catalog_chunks_keep_groups(tmp_path):
    hm.write_handmade(tmp_path, n_chunks=2, n_catalog_chunks=6)
    with h5py.File(tmp_path / "output/groups_099/fof_subhalo_tab_099.5.hdf5", "r") as f:
        assert f["Header"].attrs["Ngroups_ThisFile"] == 0
        assert "Group" in f and "Subhalo" in f and len(f["Group"]) == 0
    with open_simulation(tmp_path) as sim:
        assert sim.halos["n_particles"].tolist() == [400, 250, 120, 60]
        np.testing.assert_array_equal(sim.load_halo(1).labels, hm.expected_labels(1))


def test_writer_rejects_inconsistent_input(arrays):
    particles, groups, subhalos, _ = arrays
    bad = dict(subhalos, SubhaloGrNr=subhalos["SubhaloGrNr"][::-1])
    with pytest.raises(ValueError, match="SubhaloGrNr must be sorted"):
        write_snapshot("/nonexistent-never-written", header=hm.HEADER, particles=particles,
                       groups=groups, subhalos=bad)
    bad = dict(groups, GroupFirstSub=np.array([0, 3, 4, -1]))
    with pytest.raises(ValueError, match=r"GroupFirstSub\[2\] is 4, expected 5"):
        write_snapshot("/nonexistent-never-written", header=hm.HEADER, particles=particles,
                       groups=bad, subhalos=subhalos)
    bad_len = subhalos["SubhaloLenType"].copy()
    bad_len[5, 1] = 121
    with pytest.raises(ValueError, match=r"group 2: its subhalos hold 121 particles, more than"):
        write_snapshot("/nonexistent-never-written", header=hm.HEADER, particles=particles,
                       groups=groups, subhalos=dict(subhalos, SubhaloLenType=bad_len))
    with pytest.raises(ValueError, match="unknown PartType1 dataset 'Masses'"):
        write_snapshot("/nonexistent-never-written", header=hm.HEADER,
                       particles=dict(particles, Masses=np.ones(930)), groups=groups,
                       subhalos=subhalos)


def test_rewrite_with_fewer_chunks_removes_stale_ones(tmp_path):
    hm.write_handmade(tmp_path, n_chunks=4)
    hm.write_handmade(tmp_path, n_chunks=2)
    assert sorted(p.name for p in (tmp_path / "output/snapdir_099").iterdir()) == [
        "snap_099.0.hdf5", "snap_099.1.hdf5"]
    with open_simulation(tmp_path) as sim:
        assert sim.header.n_chunks == 2 and sim.header.n_particles == 930


# -- reader ---------------------------------------------------------------------------------------
def test_header_and_halo_table(root):
    with open_simulation(root) as sim:
        h = sim.header
        assert (h.box_size, h.particle_mass, h.n_particles, h.n_groups, h.n_subhalos, h.n_chunks) \
            == (hm.BOX, hm.PARTICLE_MASS, 930, 4, 6, 3)
        t = sim.halos
        assert t["n_particles"].tolist() == [400, 250, 120, 60]
        assert t["n_subhalos"].tolist() == [3, 2, 1, 0]
        assert t["n_fuzz"].tolist() == hm.FUZZ
        np.testing.assert_allclose(t["fuzz_fraction"], np.array(hm.FUZZ) / t["n_particles"])
        assert t["offset"].tolist() == group_starts()[:-1].tolist()
        np.testing.assert_allclose(t["mass_msun_h"], t["n_particles"] * hm.PARTICLE_MASS * 1e10,
                                   rtol=1e-6)
        np.testing.assert_allclose(t[["pos_x", "pos_y", "pos_z"]], np.mod(hm.CENTERS, hm.BOX),
                                   rtol=1e-6)
        s = sim.subhalos
        assert s["group_id"].tolist() == [0, 0, 0, 1, 1, 2]
        assert s["rank"].tolist() == [0, 1, 2, 0, 1, 0]
        assert s["n_particles"].tolist() == [250, 60, 30, 150, 40, 100]


@pytest.mark.parametrize("group_id", range(4))
def test_load_halo_particles_and_labels(root, arrays, group_id):
    particles, _, _, unwrapped = arrays
    lo, hi = group_starts()[group_id], group_starts()[group_id + 1]
    with open_simulation(root) as sim:
        halo = sim.load_halo(group_id)
    assert halo.offset == lo and halo.n_particles == hi - lo
    np.testing.assert_array_equal(halo.ids, particles["ParticleIDs"][lo:hi])
    np.testing.assert_array_equal(halo.labels, hm.expected_labels(group_id))
    assert halo.labels.dtype == np.int32 and halo.pos.dtype == np.float64
    # Unwrapped: the group is in one piece around GroupPos, equal to the builder's frame.
    np.testing.assert_allclose(halo.pos, unwrapped[lo:hi], atol=1e-6)
    np.testing.assert_array_equal(halo.potential, particles["Potential"][lo:hi])
    first = [0, 3, 5, None][group_id]
    expected_ids = [] if first is None else list(range(first, first + len(hm.SUBHALO_LENGTHS[group_id])))
    assert halo.subhalo_ids.tolist() == expected_ids
    assert halo.catalog["n_particles"] == hi - lo and isinstance(halo.catalog["group_id"], int)
    assert halo.missing == ()


def test_halo_crossing_box_edge_is_in_one_piece(root):
    with open_simulation(root) as sim:
        halo = sim.load_halo(2)
        raw = sim.read_particles(*sim.group_slice(2), fields=["Coordinates"])["Coordinates"]
    # Stored coordinates wrap (both sides of the box); the loaded ones do not.
    assert np.ptp(raw[:, 0]) > hm.BOX / 2 and np.ptp(raw[:, 2]) > hm.BOX / 2
    assert np.ptp(halo.pos, axis=0).max() < 200
    assert np.all(np.abs(halo.pos - halo.center).max(axis=0) < hm.BOX / 2)
    np.testing.assert_allclose(np.mod(halo.pos, hm.BOX), raw, atol=1e-9)


def test_chunk_spanning_halo(root, arrays):
    particles = arrays[0]
    with open_simulation(root) as sim:
        start, stop = sim.group_slice(0)
        assert start < 310 < stop, "group 0 should straddle the chunk 0/1 boundary"
        halo = sim.load_halo(0)
    np.testing.assert_array_equal(halo.ids, particles["ParticleIDs"][start:stop])
    np.testing.assert_array_equal(halo.vel, particles["Velocities"][start:stop])


@pytest.mark.parametrize("form", ["root", "virtual"])
def test_velocities_peculiar_and_potentials_physical(tmp_path, arrays, form):
    particles, groups, subhalos, _ = arrays
    write_snapshot(tmp_path, header=dict(hm.HEADER, Time=0.25, Redshift=3.0), particles=particles,
                   groups=groups, subhalos=subhalos, n_chunks=2)
    with open_simulation(tmp_path if form == "root" else tmp_path / "simulation.hdf5") as sim:
        halo = sim.load_halo(1)
    np.testing.assert_allclose(halo.vel, particles["Velocities"][400:650] * 0.5, rtol=1e-6)
    np.testing.assert_allclose(halo.potential, particles["Potential"][400:650] * 4.0, rtol=1e-6)


def test_dataset_a_scaling_attribute_wins(tmp_path, arrays):
    particles, groups, subhalos, _ = arrays
    write_snapshot(tmp_path, header=dict(hm.HEADER, Time=0.25, Redshift=3.0), particles=particles,
                   groups=groups, subhalos=subhalos, n_chunks=1)
    with h5py.File(tmp_path / "output/snapdir_099/snap_099.0.hdf5", "r+") as f:
        f["PartType1/Velocities"].attrs["a_scaling"] = 1.0  # a code storing a * v
        f["PartType1/Potential"].attrs["a_scaling"] = 0.0  # and physical potentials
    with open_simulation(tmp_path) as sim:
        halo = sim.load_halo(1)
    np.testing.assert_allclose(halo.vel, particles["Velocities"][400:650] * 0.25, rtol=1e-6)
    np.testing.assert_array_equal(halo.potential, particles["Potential"][400:650])


@pytest.mark.parametrize("form", ["root", "output", "virtual"])
def test_snap_none_is_the_last_output_and_listed(root, form):
    from deephalo_core.data import OutputInfo, list_outputs

    path = {"root": root, "output": root / "output", "virtual": root / "simulation.hdf5"}[form]
    assert list_outputs(path) == [OutputInfo(99, 0.0, 1.0)]
    with open_simulation(path) as sim:
        assert sim.snap == 99 and sim.header.snap == 99


def test_list_outputs_of_several_tng_outputs(tmp_path, arrays):
    from deephalo_core.data import list_outputs

    particles, groups, subhalos, _ = arrays
    for snap, a in ((50, 0.5), (33, 0.25)):
        write_snapshot(tmp_path, header=dict(hm.HEADER, Time=a, Redshift=1 / a - 1),
                       particles=particles, groups=groups, subhalos=subhalos, n_chunks=2, snap=snap)
    (tmp_path / "output/snapdir_060").mkdir()  # particles of 60 but no catalog: not listed
    assert [(o.snap, o.redshift, o.time) for o in list_outputs(tmp_path)] == [
        (33, 3.0, 0.25), (50, 1.0, 0.5)]
    with open_simulation(tmp_path) as sim:
        assert sim.snap == 50 and sim.header.time == 0.5


def test_offsets_file_and_computed_agree(root):
    with open_simulation(root, offsets="file") as a, open_simulation(root, offsets="computed") as b:
        assert (a.offset_source, b.offset_source) == ("file", "computed")
        np.testing.assert_array_equal(a.group_offsets, b.group_offsets)
        np.testing.assert_array_equal(a.subhalo_offsets, b.subhalo_offsets)
        for g in range(4):
            ha, hb = a.load_halo(g), b.load_halo(g)
            np.testing.assert_array_equal(ha.labels, hb.labels)
            np.testing.assert_array_equal(ha.ids, hb.ids)


def test_offsets_computed_when_file_absent(tmp_path):
    hm.write_handmade(tmp_path)
    (tmp_path / "postprocessing/offsets/offsets_099.hdf5").unlink()
    with open_simulation(tmp_path) as sim:
        assert sim.offset_source == "computed"
        np.testing.assert_array_equal(sim.load_halo(0).labels, hm.expected_labels(0))


def test_subhalo_offsets_from_lengths():
    glt = np.zeros((3, 6), np.int64)
    glt[:, 1] = [10, 5, 7]
    slt = np.zeros((3, 6), np.int64)
    slt[:, 1] = [6, 2, 4]
    g = offsets_mod.group_offsets(glt)
    s = offsets_mod.subhalo_offsets(g, [0, -1, 2], slt, [0, 0, 2])
    assert g[:, 1].tolist() == [0, 10, 15] and s[:, 1].tolist() == [0, 6, 15]


@pytest.mark.parametrize("form", ["root", "output", "virtual"])
def test_all_forms_read_the_same(root, form):
    path = {"root": root, "output": root / "output", "virtual": root / "simulation.hdf5"}[form]
    with open_simulation(root) as ref, open_simulation(path) as sim:
        assert sim.kind == ("virtual" if form == "virtual" else "snapshot")
        assert sim.header.n_particles == ref.header.n_particles
        assert sim.halos.equals(ref.halos)
        assert sim.subhalos.equals(ref.subhalos)
        for g in range(4):
            a, b = ref.load_halo(g, extra_fields=["SubfindHsml"]), sim.load_halo(g, extra_fields=["SubfindHsml"])
            np.testing.assert_array_equal(a.pos, b.pos)
            np.testing.assert_array_equal(a.labels, b.labels)
            np.testing.assert_array_equal(a.extra["SubfindHsml"], b.extra["SubfindHsml"])


def test_virtual_file_opens_from_another_directory(root, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with open_simulation(root / "simulation.hdf5") as sim:
        assert sim.load_halo(0).n_particles == 400


def test_group_without_subhalos_is_all_fuzz(root):
    with open_simulation(root) as sim:
        halo = sim.load_halo(3)
        assert halo.n_subhalos == 0 and np.all(halo.labels == -1)
        assert sim.primary_subhalo(1) == 3


def test_extra_fields_and_available(root):
    with open_simulation(root) as sim:
        assert "SubfindHsml" in sim.available_fields
        halo = sim.load_halo(1, extra_fields=["SubfindHsml"])
        assert halo.extra["SubfindHsml"].shape == (250,)
        assert "SubfindHsml" not in sim.load_halo(1).extra


def test_load_reads_only_the_halo_slice(root, monkeypatch):
    """Every byte a halo load reads, through h5py or straight from the file (contiguous datasets
    are read with os.preadv), belongs to the halo's rows of the four core fields."""
    import os

    with open_simulation(root) as sim:
        sim.halos  # the table comes from the catalog only
        reads = []
        original_getitem, original_direct = h5py.Dataset.__getitem__, h5py.Dataset.read_direct
        original_preadv = os.preadv
        extents = []  # (path, first byte, end byte, dataset name, bytes per row) of each dataset
        for path in sorted((root / "output" / "snapdir_099").glob("snap_099.*.hdf5")):
            with h5py.File(path, "r") as f:
                for name, ds in f["PartType1"].items():
                    if ds.id.get_offset() is not None:
                        row = ds.dtype.itemsize * int(np.prod(ds.shape[1:]))
                        extents.append((os.path.realpath(path), ds.id.get_offset(),
                                        ds.id.get_offset() + ds.shape[0] * row, ds.name, row))

        def spy_getitem(self, args, *rest, **kw):
            reads.append((self.name, args))
            return original_getitem(self, args, *rest, **kw)

        def spy_direct(self, dest, source_sel=None, dest_sel=None):
            reads.append((self.name, source_sel))
            return original_direct(self, dest, source_sel, dest_sel)

        def spy_preadv(fd, buffers, offset, *rest):
            got = original_preadv(fd, buffers, offset, *rest)
            path = os.path.realpath(f"/proc/self/fd/{fd}")
            hits = [e for e in extents if e[0] == path and e[1] <= offset and offset + got <= e[2]]
            assert len(hits) == 1, f"read of {got} bytes at {offset} is in no single dataset"
            _, first, _, name, row = hits[0]
            assert (offset - first) % row == 0 and got % row == 0
            reads.append((name, slice((offset - first) // row, (offset - first + got) // row)))
            return got

        monkeypatch.setattr(h5py.Dataset, "__getitem__", spy_getitem)
        monkeypatch.setattr(h5py.Dataset, "read_direct", spy_direct)
        monkeypatch.setattr(os, "preadv", spy_preadv)
        sim.load_halo(1)
    rows = {}
    for name, sel in reads:
        assert isinstance(sel, slice) and sel.start is not None and sel.stop is not None, \
            f"{name} read whole ({sel!r})"
        rows[name] = rows.get(name, 0) + sel.stop - sel.start
    assert rows == {"/PartType1/Coordinates": 250, "/PartType1/Velocities": 250,
                    "/PartType1/Potential": 250, "/PartType1/ParticleIDs": 250}


def test_unwrap_numpy_and_numba_paths_agree(monkeypatch):
    """Small halos unwrap in NumPy, large ones in the numba kernel: the same positions either way."""
    from deephalo_core.data import simulation

    rng = np.random.default_rng(5)
    box, center = 1000.0, np.array([995.0, 3.0, 500.0])  # across two faces of the box
    raw = np.mod(center + rng.normal(scale=20.0, size=(5000, 3)), box)
    small = simulation._unwrap(raw.copy(), center, box)
    monkeypatch.setattr(simulation, "NUMBA_UNWRAP_MIN", 1)
    large = simulation._unwrap(raw.copy(), center, box)
    np.testing.assert_array_equal(small, large)
    assert np.abs(small - center).max() < box / 2
    assert small[:, 0].max() > box and small[:, 1].min() < 0  # moved out of [0, box) where needed


def test_unwrap_kernel_warms_up_only_where_a_halo_needs_it(monkeypatch):
    """The app loads the numba kernel in the background for a snapshot with a halo at or above
    NUMBA_UNWRAP_MIN particles, and afterwards the load path uses it; smaller snapshots never start
    it."""
    from types import SimpleNamespace

    import pandas as pd

    from deephalo_core.data import simulation

    monkeypatch.setattr(simulation, "_unwrap_in_place", None)
    small = SimpleNamespace(halos=pd.DataFrame({"n_particles": [50, simulation.NUMBA_UNWRAP_MIN - 1]}))
    assert simulation.warm_up_in_background(small) is None
    assert simulation._unwrap_in_place is None

    large = SimpleNamespace(halos=pd.DataFrame({"n_particles": [50, simulation.NUMBA_UNWRAP_MIN]}))
    thread = simulation.warm_up_in_background(large)
    assert thread is not None
    thread.join(timeout=120)
    assert not thread.is_alive() and simulation._unwrap_in_place is not None
    assert simulation.warm_up_in_background(large) is None  # already loaded: nothing to start
    box, center = 100.0, np.array([99.0, 50.0, 50.0])
    pos = np.array([[1.0, 50.0, 50.0], [98.0, 50.0, 50.0]])
    monkeypatch.setattr(simulation, "NUMBA_UNWRAP_MIN", 1)
    np.testing.assert_array_equal(simulation._unwrap(pos, center, box)[:, 0], [101.0, 98.0])
