"""Bad input raises DataError with a message that says what, where and what to do."""
import shutil

import h5py
import numpy as np
import pytest

import handmade_tng as hm
from deephalo_core.data import open_simulation, write_snapshot
from deephalo_core.errors import DataError


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return hm.write_handmade(tmp_path_factory.mktemp("pristine"))


@pytest.fixture
def root(pristine, tmp_path):
    """A private copy each test may damage."""
    return shutil.copytree(pristine, tmp_path / "sim")


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match=r"does-not-exist does not exist: give a simulation root or output directory"):
        open_simulation(tmp_path / "does-not-exist")


def test_directory_that_is_not_tng(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"is not a TNG, GADGET-4 or AREPO output: expected snapshot_NNN.hdf5 or snapdir_NNN"):
        open_simulation(tmp_path)


def test_plain_file_that_is_not_hdf5(tmp_path):
    path = tmp_path / "halo.hdf5"
    path.write_bytes(b"not hdf5 at all" * 100)
    with pytest.raises(DataError, match=r"halo.hdf5 cannot be read as HDF5 .*truncated or corrupt"):
        open_simulation(path)


def test_snapshot_number_not_there(root):
    with pytest.raises(DataError, match=r"snapshot 50 is not in .*output.*snapshots there: \[99\]"):
        open_simulation(root, snap=50)
    with pytest.raises(DataError, match=r"snapshot 50 is not in .*simulation.hdf5; it holds snapshots \[99\]"):
        open_simulation(root / "simulation.hdf5", snap=50)


def test_truncated_chunk(root):
    chunk = root / "output/snapdir_099/snap_099.1.hdf5"
    data = chunk.read_bytes()
    chunk.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"snap_099.1.hdf5 cannot be read as HDF5 .*truncated or corrupt"):
        open_simulation(root)


def test_corrupt_chunk_header(root):
    chunk = root / "output/groups_099/fof_subhalo_tab_099.1.hdf5"
    data = bytearray(chunk.read_bytes())
    data[:64] = b"\x00" * 64  # destroys the HDF5 superblock signature
    chunk.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"fof_subhalo_tab_099.1.hdf5 cannot be read as HDF5"):
        open_simulation(root)


def test_missing_chunk(root):
    (root / "output/snapdir_099/snap_099.2.hdf5").unlink()
    with pytest.raises(DataError, match=r"snap_099.2.hdf5 does not exist; the snapshot is incomplete"):
        open_simulation(root)


def test_chunk_with_wrong_particle_count(root):
    chunk = root / "output/snapdir_099/snap_099.2.hdf5"
    with h5py.File(chunk, "r+") as f:
        f["Header"].attrs["NumPart_ThisFile"] = np.array([0, 300, 0, 0, 0, 0], np.int32)
    with pytest.raises(DataError, match=r"chunks hold 920 PartType1 particles but the header says 930"):
        open_simulation(root)


def test_missing_particle_field(root):
    with open_simulation(root) as sim:
        with pytest.raises(DataError, match=r"no PartType1 field\(s\) \['SubfindVelDisp'\]; available"):
            sim.load_halo(0, extra_fields=["SubfindVelDisp"])
        with pytest.raises(DataError, match=r"has no PartType1/Masses"):
            sim.read_particles(0, 10, fields=["Masses"])


def test_missing_optional_fields_are_listed(tmp_path):
    particles, groups, subhalos, _ = hm.build_arrays()
    write_snapshot(tmp_path, header=hm.HEADER, particles={"Coordinates": particles["Coordinates"]},
                   groups=groups, subhalos=subhalos, n_chunks=2)
    with open_simulation(tmp_path) as sim:
        halo = sim.load_halo(0)
    assert halo.missing == ("Velocities", "Potential", "ParticleIDs")
    assert halo.vel is None and halo.potential is None and halo.ids is None
    np.testing.assert_array_equal(halo.labels, hm.expected_labels(0))


def test_missing_catalog_field(tmp_path):
    particles, groups, subhalos, _ = hm.build_arrays()
    groups = {k: v for k, v in groups.items() if k != "GroupPos"}
    write_snapshot(tmp_path, header=hm.HEADER, particles=particles, groups=groups,
                   subhalos=subhalos, n_chunks=2)
    with pytest.raises(DataError, match=r"lacks required field\(s\) Group/GroupPos"):
        open_simulation(tmp_path)


@pytest.mark.parametrize("bad", [-1, 4, 2.0, "1"])
def test_group_id_out_of_range(pristine, bad):
    with open_simulation(pristine) as sim:
        with pytest.raises(DataError, match=r"group id .* is out of range .*4 FoF groups, ids 0..3"):
            sim.load_halo(bad)


def test_primary_of_group_without_subhalos(pristine):
    with open_simulation(pristine) as sim:
        with pytest.raises(DataError, match=r"FoF group 3 .* has no subhalos .*every label -1"):
            sim.primary_subhalo(3)
        assert (sim.load_halo(3).labels == -1).all()


def test_offsets_file_from_another_snapshot(root, tmp_path):
    other = hm.write_handmade(tmp_path / "other", n_chunks=4)
    shutil.copy(other / "postprocessing/offsets/offsets_099.hdf5",
                root / "postprocessing/offsets/offsets_099.hdf5")
    with pytest.raises(DataError, match=r"offsets_099.hdf5 does not match the snapshot chunks"):
        open_simulation(root)
    with open_simulation(root, offsets="computed") as sim:  # the way out the message names
        assert sim.load_halo(0).n_particles == 400


def test_corrupt_offsets_file(root):
    path = root / "postprocessing/offsets/offsets_099.hdf5"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=r"offsets file .* cannot be read as HDF5"):
        open_simulation(root)


def test_offsets_inconsistent_with_catalog(root):
    with h5py.File(root / "postprocessing/offsets/offsets_099.hdf5", "r+") as f:
        f["Subhalo/SnapByType"][1, 1] = 900
    with open_simulation(root) as sim:
        with pytest.raises(DataError, match=r"subhalo 1 \(rank 1 of group 0\).*outside its group"):
            sim.load_halo(0)


def test_chunk_file_given_instead_of_root(pristine):
    with pytest.raises(DataError, match=r"is a snapshot chunk, not a simulation.hdf5 or a cutout"):
        open_simulation(pristine / "output/snapdir_099/snap_099.0.hdf5")
    with pytest.raises(DataError, match=r"is a group catalog chunk"):
        open_simulation(pristine / "output/groups_099/fof_subhalo_tab_099.0.hdf5")


def test_virtual_file_with_missing_source(root):
    (root / "output/snapdir_099/snap_099.1.hdf5").unlink()
    # HDF5 fills unreadable virtual sources with zeros; the reader must refuse, not return them.
    with pytest.raises(DataError, match=r"points to .*snap_099.1.hdf5, which does not exist"):
        open_simulation(root / "simulation.hdf5")


def test_virtual_file_with_truncated_source(root):
    chunk = root / "output/groups_099/fof_subhalo_tab_099.0.hdf5"
    chunk.write_bytes(chunk.read_bytes()[:500])
    with pytest.raises(DataError, match=r"fof_subhalo_tab_099.0.hdf5 .*cannot be read as HDF5"):
        open_simulation(root / "simulation.hdf5")


def test_subhalo_lengths_only_for_cutouts(pristine):
    with pytest.raises(DataError, match=r"subhalo_lengths applies to cutout files only"):
        open_simulation(pristine, subhalo_lengths=[10])


@pytest.mark.parametrize("form", ["root", "virtual"])
def test_tng_snapshot_not_in_group_order_is_refused(root, form):
    with h5py.File(root / "output/snapdir_099/snap_099.0.hdf5", "r+") as f:
        ids = f["PartType1/ParticleIDs"]
        ids[250:310] = ids[250:310][::-1]  # group 0's first satellite (rows 250..309), reversed
    with pytest.raises(DataError, match=r"is not stored in group order: subhalo 1 should start at "
                                        r"particle 250 .*\(1 of 6 subhalos differ\)"):
        open_simulation(root if form == "root" else root / "simulation.hdf5")
