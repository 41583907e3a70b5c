"""The official illustris_python reader loads our files unchanged and returns what our reader does."""
import illustris_python as il  # a test dependency (requirements-test.txt)
import numpy as np
import pytest

import handmade_tng as hm
from deephalo_core.data import open_simulation

FIELDS = ["Coordinates", "Velocities", "ParticleIDs", "Potential"]


@pytest.fixture(scope="module", params=["3 chunks, 2 catalog chunks", "4 chunks, 6 catalog chunks",
                                        "synthetic"])
def sim_root(request, tmp_path_factory):
    if request.param == "synthetic":
        return request.getfixturevalue("small_sim_dir")
    n_chunks, n_cat = (3, 2) if request.param.startswith("3") else (4, 6)
    return hm.write_handmade(tmp_path_factory.mktemp("il"), n_chunks=n_chunks,
                             n_catalog_chunks=n_cat)


def test_group_catalog_agrees(sim_root):
    base = str(sim_root / "output")
    groups = il.groupcat.loadHalos(base, 99)
    subs = il.groupcat.loadSubhalos(base, 99)
    with open_simulation(sim_root) as sim:
        halos, subhalos = sim.halos, sim.subhalos
        assert groups["count"] == len(halos) == sim.header.n_groups
        assert subs["count"] == len(subhalos) == sim.header.n_subhalos
    np.testing.assert_array_equal(groups["GroupLenType"][:, 1], halos["n_particles"])
    np.testing.assert_array_equal(groups["GroupNsubs"], halos["n_subhalos"])
    np.testing.assert_array_equal(groups["GroupPos"], halos[["pos_x", "pos_y", "pos_z"]])
    np.testing.assert_allclose(groups["GroupMass"] * 1e10, halos["mass_msun_h"], rtol=1e-6)
    np.testing.assert_allclose(groups["Group_M_Crit200"] * 1e10, halos["m200_msun_h"], rtol=1e-6)
    np.testing.assert_array_equal(groups["Group_R_Crit200"], halos["r200_ckpc_h"])
    np.testing.assert_array_equal(subs["SubhaloGrNr"], subhalos["group_id"])
    np.testing.assert_array_equal(subs["SubhaloLenType"][:, 1], subhalos["n_particles"])
    np.testing.assert_array_equal(subs["SubhaloPos"], subhalos[["pos_x", "pos_y", "pos_z"]])
    np.testing.assert_array_equal(subs["SubhaloVmax"], subhalos["vmax"])
    first = groups["GroupFirstSub"][subs["SubhaloGrNr"]]
    np.testing.assert_array_equal(np.arange(subs["count"]) - first, subhalos["rank"])


def test_halo_particles_agree(sim_root):
    base = str(sim_root / "output")
    with open_simulation(sim_root) as sim:
        box, a = sim.header.box_size, sim.header.time
        for g in range(sim.header.n_groups):
            theirs = il.snapshot.loadHalo(base, 99, g, "dm", FIELDS)
            ours = sim.load_halo(g)
            assert theirs["count"] == ours.n_particles
            np.testing.assert_array_equal(theirs["ParticleIDs"], ours.ids)
            # ours in physical units: peculiar velocity (stored * sqrt(a)), potential (stored / a)
            np.testing.assert_allclose(theirs["Potential"] / np.float32(a), ours.potential)
            np.testing.assert_allclose(theirs["Velocities"] * np.float32(np.sqrt(a)), ours.vel)
            # Same particles; ours unwrapped around GroupPos, theirs as stored (wrapped).
            d = np.abs(np.mod(ours.pos, box) - theirs["Coordinates"])
            assert np.all(np.minimum(d, box - d) < 1e-6)


def test_subhalo_particles_agree(sim_root):
    base = str(sim_root / "output")
    with open_simulation(sim_root) as sim:
        subhalos = sim.subhalos
        for g in range(sim.header.n_groups):
            halo = sim.load_halo(g)
            for rank, sub_id in enumerate(halo.subhalo_ids):
                theirs = il.snapshot.loadSubhalo(base, 99, int(sub_id), "dm", ["ParticleIDs"])
                np.testing.assert_array_equal(theirs, halo.ids[halo.labels == rank])
                assert subhalos["rank"][sub_id] == rank


def test_time_load_halo_measures_all_three_readers(tmp_path):
    from deephalo_core.data.timing import time_load_halo

    root = hm.write_handmade(tmp_path)
    result = time_load_halo(root, 0, repeats=2)
    assert result["n_particles"] == 400
    for key in ("ours_s", "illustris_s", "raw_h5py_s"):
        assert 0 < result[key] < 5
    assert result["ratio_vs_illustris"] == pytest.approx(result["ours_s"] / result["illustris_s"])
