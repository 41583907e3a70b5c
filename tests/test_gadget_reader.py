"""GADGET-4 and AREPO outputs read natively: the shipped sample in its own single-file layout, the same
output in pieces and with AREPO's names; labels, units and tables checked against the raw files."""
import numpy as np
import pytest

import gadget_layouts as gl
from deephalo_core.data import OutputInfo, list_outputs, open_simulation


@pytest.fixture(scope="module")
def raw():
    return {snap: gl.sample_arrays(snap) for snap in (0, 1)}


def assert_same_halos(sim, ref):
    assert sim.halos.equals(ref.halos)
    assert sim.subhalos.equals(ref.subhalos)
    for g in range(ref.header.n_groups):
        a, b = ref.load_halo(g), sim.load_halo(g)
        for name in ("pos", "vel", "potential", "ids", "labels", "subhalo_ids"):
            np.testing.assert_array_equal(getattr(b, name), getattr(a, name), err_msg=name)


def test_sample_opens_its_last_output_by_default(sample_dir, raw):
    with open_simulation(sample_dir) as sim:
        h = sim.header
        assert (sim.snap, sim.kind, sim.offset_source) == (1, "gadget4", "catalog")
        assert h.n_particles == len(raw[1]["ParticleIDs"]) == int(raw[1]["GroupLen"].sum())
        assert (h.n_groups, h.n_subhalos) == (len(raw[1]["GroupLen"]), len(raw[1]["SubhaloLen"]))
        assert h.box_size == 8750.0 and h.particle_mass == raw[1]["header"]["MassTable"][1]
        # /Header has no cosmology in GADGET-4: it comes from /Parameters
        assert "HubbleParam" not in raw[1]["header"]
        assert (h.hubble_param, h.omega0, h.omega_lambda) == tuple(
            raw[1]["parameters"][k] for k in ("HubbleParam", "Omega0", "OmegaLambda"))
        assert h.time == raw[1]["header"]["Time"] and abs(h.redshift) < 1e-12


@pytest.mark.parametrize("form", ["run root", "output dir", "snapshot file"])
def test_list_outputs(sample_dir, raw, form):
    path = {"run root": sample_dir.parent, "output dir": sample_dir,
            "snapshot file": sample_dir / "snapshot_000.hdf5"}[form]
    expected = [OutputInfo(snap, float(raw[snap]["header"]["Redshift"]),
                           float(raw[snap]["header"]["Time"])) for snap in (0, 1)]
    assert list_outputs(path) == (expected[:1] if form == "snapshot file" else expected)
    assert expected[0].redshift == pytest.approx(0.9946, abs=1e-4)


@pytest.mark.parametrize("form", ["run root", "snapshot file"])
def test_forms_read_the_same(sample_dir, form):
    # a run root takes snap like any directory; a snapshot file names its own output
    path, snap = ((sample_dir.parent, 0) if form == "run root"
                  else (sample_dir / "snapshot_000.hdf5", None))
    with open_simulation(sample_dir, 0) as ref, open_simulation(path, snap) as sim:
        assert sim.snap == 0 and sim.kind == "gadget4"
        for g in (0, 7, ref.header.n_groups - 1):
            np.testing.assert_array_equal(sim.load_halo(g).labels, ref.load_halo(g).labels)


@pytest.mark.parametrize("snap", [0, 1])
def test_labels_are_the_catalogs(sample_dir, raw, snap):
    """Each subhalo's particles are one run from its SubhaloOffsetType, SubhaloLenType long, led by
    its most-bound particle; the rest of the group is fuzz."""
    r = raw[snap]
    with open_simulation(sample_dir, snap) as sim:
        for g in range(sim.header.n_groups):
            halo = sim.load_halo(g)
            start, n = int(r["GroupOffsetType"][g, 1]), int(r["GroupLenType"][g, 1])
            assert halo.offset == start and halo.n_particles == n
            np.testing.assert_array_equal(halo.ids, r["ParticleIDs"][start:start + n])
            subs = halo.subhalo_ids
            assert len(subs) == r["GroupNsubs"][g]
            np.testing.assert_array_equal(r["SubhaloGroupNr"][subs], g)
            np.testing.assert_array_equal(r["SubhaloRankInGr"][subs], np.arange(len(subs)))
            for rank, s in enumerate(subs):
                rows = np.nonzero(halo.labels == rank)[0]
                assert len(rows) == r["SubhaloLenType"][s, 1]
                assert rows[0] + start == r["SubhaloOffsetType"][s, 1]
                assert np.all(np.diff(rows) == 1)
                assert halo.ids[rows[0]] == r["SubhaloIDMostbound"][s]
            assert (halo.labels == -1).sum() == n - r["SubhaloLenType"][subs, 1].sum()


def test_tables_are_the_catalogs(sample_dir, raw):
    r = raw[1]
    with open_simulation(sample_dir) as sim:
        t, s = sim.halos, sim.subhalos
    np.testing.assert_array_equal(t["n_particles"], r["GroupLenType"][:, 1])
    np.testing.assert_array_equal(t["n_subhalos"], r["GroupNsubs"])
    np.testing.assert_array_equal(t["offset"], r["GroupOffsetType"][:, 1])
    np.testing.assert_allclose(t["m200_msun_h"], r["Group_M_Crit200"] * 1e10, rtol=1e-6)
    np.testing.assert_array_equal(s["group_id"], r["SubhaloGroupNr"])
    np.testing.assert_array_equal(s["rank"], r["SubhaloRankInGr"])
    np.testing.assert_array_equal(s["n_particles"], r["SubhaloLenType"][:, 1])


@pytest.mark.parametrize("snap", [0, 1])
def test_units_peculiar_velocity_and_physical_potential(sample_dir, raw, snap):
    r = raw[snap]
    a = float(r["header"]["Time"])
    assert (a < 0.51) == (snap == 0)  # output 000 is at z = 1
    with open_simulation(sample_dir, snap) as sim:
        assert sim.unit_factors["Velocities"] == pytest.approx(np.sqrt(a), rel=1e-6)
        assert sim.unit_factors["Potential"] == pytest.approx(1 / a, rel=1e-6)
        g = int(np.argmax(r["GroupLen"]))
        halo = sim.load_halo(g)
    start, n = int(r["GroupOffsetType"][g, 1]), int(r["GroupLen"][g])
    np.testing.assert_allclose(halo.vel, r["Velocities"][start:start + n] * np.sqrt(a), rtol=1e-6)
    np.testing.assert_allclose(halo.potential, r["Potential"][start:start + n] / a, rtol=1e-6)
    # float32 on disk, float64 in the halo, unwrapped around GroupPos
    assert r["Coordinates"].dtype == np.float32 and halo.pos.dtype == np.float64
    box = sim.header.box_size
    np.testing.assert_allclose(np.mod(halo.pos, box), r["Coordinates"][start:start + n], atol=1e-3)
    assert np.abs(halo.pos - halo.center).max() < box / 2


def test_multi_file_output_with_a_halo_across_two_files(sample_dir, tmp_path):
    # group 0 (34,245 particles) straddles the cut at 20,000; 3 snapshot files, 3 catalog files
    out = gl.split_output(tmp_path / "output", 1, [20000, 90000], n_catalog_files=3)
    gl.split_output(out, 0, [50000], n_catalog_files=2)
    assert list_outputs(out) == list_outputs(sample_dir)
    with open_simulation(out) as sim, open_simulation(sample_dir, 1) as ref:
        assert (sim.snap, sim.kind, sim.header.n_chunks) == (1, "gadget4", 3)
        start, stop = sim.group_slice(0)
        assert start < 20000 < stop
        assert_same_halos(sim, ref)


def test_multi_file_output_with_arepo_piece_names(sample_dir, tmp_path):
    out = gl.split_output(tmp_path / "output", 0, [30000], n_catalog_files=2, prefix="snap")
    with open_simulation(tmp_path) as sim, open_simulation(sample_dir, 0) as ref:
        assert (sim.snap, sim.kind, sim.header.n_chunks) == (0, "gadget4", 2)
        assert sim.path == tmp_path and out == tmp_path / "output"
        assert_same_halos(sim, ref)


def test_arepo_names_single_file(sample_dir, tmp_path):
    out = gl.arepo_output(tmp_path, 0)
    with open_simulation(out) as sim, open_simulation(sample_dir, 0) as ref:
        # TNG's names, no catalog offsets: offsets come from the lengths
        assert (sim.snap, sim.kind, sim.offset_source) == (0, "arepo", "computed")
        assert sim.header.hubble_param == ref.header.hubble_param
        assert_same_halos(sim, ref)
