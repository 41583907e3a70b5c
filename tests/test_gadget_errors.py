"""Bad GADGET-4 / AREPO input raises DataError saying what, where and what to do; a snapshot whose
particles are not in the catalog's order is refused, never labelled."""
import shutil

import h5py
import pytest

import gadget_layouts as gl
from deephalo_core.data import list_outputs, open_simulation
from deephalo_core.errors import DataError


@pytest.fixture
def out(tmp_path):
    """A private copy of the sample each test may damage."""
    return gl.copy_sample(tmp_path / "output")


def test_missing_catalog(out):
    (out / "fof_subhalo_tab_001.hdf5").unlink()
    with pytest.raises(DataError, match=r"group catalog 1 is not in .*output \(looked for "
                                        r"fof_subhalo_tab_001.hdf5 and groups_001\); outputs there "
                                        r"with both particles and a catalog: \[0\]: run FOF"):
        open_simulation(out, snap=1)
    with pytest.raises(DataError, match=r"group catalog 1 is not in"):
        open_simulation(out / "snapshot_001.hdf5")
    with open_simulation(out) as sim:  # the last complete output
        assert sim.snap == 0
    assert [o.snap for o in list_outputs(out)] == [0]


def test_fof_only_catalog_asks_for_subfind(out):
    (out / "fof_subhalo_tab_001.hdf5").rename(out / "fof_tab_001.hdf5")
    with pytest.raises(DataError, match=r"it has fof_tab_001 \(FOF only\): run SUBFIND too"):
        open_simulation(out, snap=1)


def test_no_complete_output(tmp_path):
    shutil.copyfile(gl.SAMPLE_DIR / "snapshot_000.hdf5", tmp_path / "snapshot_000.hdf5")
    with pytest.raises(DataError, match=r"no output in .* has both particles and a FOF/SUBFIND "
                                        r"catalog \(snapshots: \[0\]; catalogs: none\)"):
        open_simulation(tmp_path)
    assert list_outputs(tmp_path) == []


def test_missing_particles(out):
    (out / "snapshot_000.hdf5").unlink()
    with pytest.raises(DataError, match=r"snapshot 0 is not in .*: it has the catalog "
                                        r"fof_subhalo_tab_000.hdf5 but no particles.*snapshots "
                                        r"there: \[1\]"):
        open_simulation(out, snap=0)


def test_wrong_snapshot_number_lists_the_outputs(sample_dir):
    with pytest.raises(DataError, match=r"snapshot 7 is not in .*output \(looked for snapshot_007, "
                                        r"snap_007 and snapdir_007\); snapshots there: \[0, 1\]: "
                                        r"pass one of them as snap"):
        open_simulation(sample_dir, snap=7)
    with pytest.raises(DataError, match=r"snapshot_000.hdf5 is output 0, not 1: pass snap=None"):
        open_simulation(sample_dir / "snapshot_000.hdf5", snap=1)


@pytest.mark.parametrize("name", ["snapshot_001.hdf5", "fof_subhalo_tab_001.hdf5"])
def test_truncated_file(out, name):
    path = out / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=rf"{name} cannot be read as HDF5 .*truncated or corrupt"):
        open_simulation(out)
    with open_simulation(out, snap=0) as sim:  # the other output is untouched
        assert sim.load_halo(0).n_particles > 0


def test_missing_and_truncated_pieces(tmp_path):
    out = gl.split_output(tmp_path, 1, [20000, 90000], n_catalog_files=3)
    piece = out / "snapdir_001/snapshot_001.2.hdf5"
    piece.write_bytes(piece.read_bytes()[:1000])
    with pytest.raises(DataError, match=r"snapshot_001.2.hdf5 cannot be read as HDF5"):
        open_simulation(out)
    piece.unlink()
    with pytest.raises(DataError, match=r"snapshot_001.2.hdf5 does not exist; the snapshot is "
                                        r"incomplete"):
        open_simulation(out)
    gl.split_output(tmp_path, 1, [20000, 90000], n_catalog_files=3)  # whole again
    (out / "groups_001/fof_subhalo_tab_001.1.hdf5").unlink()
    with pytest.raises(DataError, match=r"fof_subhalo_tab_001.1.hdf5 does not exist"):
        open_simulation(out)


@pytest.mark.parametrize("kind, row", [("Group", 5), ("Subhalo", 3)])
def test_catalog_offsets_disagreeing_with_lengths(out, kind, row):
    with h5py.File(out / "fof_subhalo_tab_001.hdf5", "r+") as f:
        f[f"{kind}/{kind}OffsetType"][row, 1] += 7
    with pytest.raises(DataError, match=rf"{kind.lower()} {row} starts at particle \d+ by "
                                        rf"{kind}OffsetType, but the lengths before it .* put it at "
                                        rf"\d+; 1 of \d+ {kind.lower()}s disagree.*run FOF and SUBFIND at "
                                        r"output time.*offsets='computed'"):
        open_simulation(out)
    with open_simulation(out, offsets="computed") as sim:  # the way out the message names
        assert sim.offset_source == "computed"
        assert sim.load_halo(5).n_particles > 0


@pytest.mark.parametrize("rows", [slice(0, 34245), slice(None)], ids=["one group", "whole box"])
def test_snapshot_not_in_group_order_is_refused(out, rows):
    gl.reorder_particles(out, 1, rows)
    with pytest.raises(DataError, match=r"snapshot 1\) is not stored in group order: subhalo 0 "
                                        r"should start at particle 0 with its most-bound particle "
                                        r".*cannot label these particles: run FOF and SUBFIND at "
                                        r"output time .*or sort the snapshot's particles by the "
                                        r"catalog's IDs block"):
        open_simulation(out)
    for offsets in ("computed", "file"):  # no way round it: labels would be wrong
        with pytest.raises(DataError, match=r"not stored in group order"):
            open_simulation(out, offsets=offsets)


def test_one_subhalo_out_of_order_is_found(out):
    """Only the particles of group 1's first satellite are moved: one subhalo of 375 differs."""
    with h5py.File(out / "fof_subhalo_tab_001.hdf5", "r") as f:
        first = int(f["Group/GroupFirstSub"][1]) + 1
        lo = int(f["Subhalo/SubhaloOffsetType"][first, 1])
        hi = lo + int(f["Subhalo/SubhaloLenType"][first, 1])
    with h5py.File(out / "snapshot_001.hdf5", "r+") as f:
        ids = f["PartType1/ParticleIDs"]
        ids[lo:hi] = ids[lo:hi][::-1]
    with pytest.raises(DataError, match=rf"subhalo {first} should start at particle {lo} .*\(1 of "
                                        r"375 subhalos differ\)"):
        open_simulation(out)


def test_snapshot_without_ids_cannot_be_checked(out):
    with h5py.File(out / "snapshot_000.hdf5", "r+") as f:
        del f["PartType1/ParticleIDs"]
    with pytest.raises(DataError, match=r"lacks PartType1/ParticleIDs, so its group order cannot "
                                        r"be checked"):
        open_simulation(out, snap=0)


def test_catalog_file_given_instead_of_output(sample_dir):
    with pytest.raises(DataError, match=r"fof_subhalo_tab_001.hdf5 is a group catalog chunk, not a "
                                        r"simulation.hdf5 or a cutout; open the output directory"):
        open_simulation(sample_dir / "fof_subhalo_tab_001.hdf5")


def test_subhalo_lengths_only_for_cutouts(sample_dir):
    with pytest.raises(DataError, match=r"subhalo_lengths applies to cutout files only"):
        open_simulation(sample_dir, subhalo_lengths=[10])
