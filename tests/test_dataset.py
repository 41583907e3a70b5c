"""Features, split, caps and cache of the training dataset."""
import numpy as np
import pytest

from deephalo_core import dataset
from deephalo_core.data.types import Halo
from deephalo_core.errors import DataError
from deephalo_core.physics import virial_velocity


def _halo(n=200, seed=0, vel=True):
    rng = np.random.default_rng(seed)
    center = np.array([100.0, 200.0, 300.0])
    pos = center + rng.normal(scale=50.0, size=(n, 3))
    labels = np.zeros(n, dtype=np.int32)
    labels[:40] = 1
    labels[40:45] = 2
    labels[-10:] = -1
    return Halo(group_id=3, pos=pos, vel=(rng.normal(size=(n, 3)) * 100 + 500).astype(np.float32) if vel else None,
                potential=rng.uniform(-1e5, -1e4, n).astype(np.float32), ids=None, labels=labels,
                subhalo_ids=np.arange(3), center=center,
                catalog={"r200_ckpc_h": 100.0, "m200_msun_h": 1.0e12}, particle_mass=0.0186755,
                box_size=35000.0, missing=() if vel else ("Velocities",))


def test_split_is_deterministic_and_roughly_70_15_15():
    ids = range(3000)
    splits = [dataset.split_of(g) for g in ids]
    assert splits == [dataset.split_of(g) for g in ids]
    frac = {s: splits.count(s) / len(splits) for s in dataset.SPLITS}
    assert 0.66 < frac["train"] < 0.74 and 0.12 < frac["val"] < 0.18 and 0.12 < frac["test"] < 0.18


def test_features_are_scaled_by_virial_quantities():
    halo = _halo()
    f = dataset.halo_features(halo)
    assert f.shape == (200, 7) and f.dtype == np.float32
    v200 = virial_velocity(100.0, 100.0)  # M200 = 1e12 Msun/h = 100 code units
    np.testing.assert_allclose(f[:, :3], (halo.pos - halo.center) / 100.0, rtol=1e-5)
    np.testing.assert_allclose(f[:, 3:6].mean(axis=0), 0.0, atol=1e-5)  # bulk velocity removed
    np.testing.assert_allclose(f[:, 3], (halo.vel[:, 0] - halo.vel[:, 0].mean()) / v200, rtol=1e-4, atol=1e-6)
    assert f[:, 6].min() == pytest.approx(0.0)
    np.testing.assert_allclose(f[:, 6], (halo.potential - halo.potential.min()) / v200**2, rtol=1e-4)


def test_energy_features_keep_the_depth_of_the_well():
    halo = _halo()
    seed, f = dataset.halo_features(halo), dataset.halo_features(halo, "seed+energy")
    assert f.shape == (200, len(dataset.FEATURE_SETS["seed+energy"])) == (200, 9)
    np.testing.assert_array_equal(f[:, :7], seed)
    v200 = virial_velocity(100.0, 100.0)
    abs_phi = halo.potential.astype(np.float64) / v200**2
    np.testing.assert_allclose(f[:, 8], abs_phi, rtol=1e-5)
    np.testing.assert_allclose(f[:, 7], abs_phi + 0.5 * (seed[:, 3:6].astype(np.float64) ** 2).sum(axis=1), rtol=1e-4)
    # shifting every potential by a constant moves the energy but not the seed's column 6
    deeper = _halo()
    deeper.potential = deeper.potential - 1e5
    g = dataset.halo_features(deeper, "seed+energy")
    np.testing.assert_allclose(g[:, 6], f[:, 6], rtol=1e-4, atol=1e-6)
    assert np.all(g[:, 7] < f[:, 7])


def test_missing_velocities_and_subfind_fields_are_clear_errors():
    with pytest.raises(DataError, match="velocities"):
        dataset.halo_features(_halo(vel=False))
    with pytest.raises(DataError, match="SubfindDMDensity"):
        dataset.halo_features(_halo(), "seed+subfind")
    with pytest.raises(DataError, match="feature set"):
        dataset.halo_features(_halo(), "colour")


def test_subsample_keeps_small_subhalos():
    labels = np.array([0] * 10000 + [1] * 300 + [2] * 25 + [-1] * 500)
    idx = dataset.subsample(labels, 1000, np.random.default_rng(0))
    kept = labels[idx]
    assert len(idx) < 1200 and np.all(np.diff(idx) > 0)
    assert (kept == 2).sum() == 25  # a 25-particle subhalo survives whole
    assert (kept == 1).sum() == 32  # floor for subhalos (300 * 1000 / 10825 = 28 < 32)
    assert 900 < (kept == 0).sum() < 950


def test_crop_keeps_density():
    rng = np.random.default_rng(1)
    feats = rng.uniform(-1, 1, size=(5000, 7)).astype(np.float32)
    labels = np.zeros(5000, dtype=np.int32)
    idx = dataset.crop(feats, labels, 500, rng)
    assert len(idx) == 500
    # a ball: everything kept is nearer the centre than anything dropped
    centre = feats[idx, :3].mean(axis=0)
    r = np.linalg.norm(feats[:, :3] - centre, axis=1)
    assert np.median(r[idx]) < np.median(np.delete(r, idx))


def test_samples_are_cached(small_sim_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPHALO_HOME", str(tmp_path))
    train = dataset.load_samples(small_sim_dir, "train", progress=False)
    assert train and all(dataset.split_of(s.group_id) == "train" for s in train)
    assert dataset.cache_path(small_sim_dir, "seed").exists()

    def no_rebuild(*a, **k):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(dataset, "_build_all", no_rebuild)
    again = dataset.load_samples(small_sim_dir, "train", progress=False)
    assert [s.group_id for s in again] == [s.group_id for s in train]
    np.testing.assert_array_equal(again[0].features, train[0].features)
    every = dataset.load_samples(small_sim_dir, "all", progress=False)
    assert len(every) >= len(train) + len(dataset.load_samples(small_sim_dir, "test", progress=False))


def test_binding_features_ignore_the_potential_zero_point():
    """A real potential includes the whole box: adding any constant must change no binding feature."""
    halo = _halo()
    f = dataset.halo_features(halo, "binding")
    assert f.shape == (200, len(dataset.FEATURE_SETS["binding"])) == (200, 10)
    shifted = _halo()
    shifted.potential = shifted.potential + np.float32(-3e5)
    np.testing.assert_allclose(dataset.halo_features(shifted, "binding"), f, rtol=1e-4, atol=1e-4)
    # the legacy set does move with it, which is why the default no longer uses it
    assert not np.allclose(dataset.halo_features(shifted, "seed+energy")[:, 8],
                           dataset.halo_features(halo, "seed+energy")[:, 8])


def test_binding_potential_is_anchored_like_an_isolated_halo():
    """The outer particles' median potential becomes -G M(<r_edge) / r_edge (physical r_edge), the
    value an isolated halo's own potential takes there, and the inner profile keeps its shape."""
    from deephalo_core.units import G

    rng = np.random.default_rng(1)
    r = rng.uniform(1.0, 100.0, 4001)
    m, a = 0.01, 0.5
    phi = -G * m * len(r) / (a * r) + 12345.0  # any zero point
    own = dataset.halo_potential(phi, r, m, time=a)
    outer = np.argsort(r)[int(0.8 * len(r)):]
    r_edge = np.median(r[outer])
    assert np.median(own[outer]) == pytest.approx(-G * m * np.sum(r <= r_edge) / (a * r_edge), rel=1e-6)
    np.testing.assert_allclose(own - own[0], phi - phi[0], rtol=1e-9)


def test_binding_features_are_the_same_at_any_redshift():
    """The same physical halo seen at a = 0.5 (comoving lengths doubled, potentials physical) has the
    same positions, potentials and energies in virial units; velocities gain only the Hubble flow."""
    halo = _halo()
    z0 = dataset.halo_features(halo, "binding")
    early = _halo()
    early.time = 0.5
    early.pos = early.center + (early.pos - early.center) * 2.0  # same physical size
    early.catalog = dict(early.catalog, r200_ckpc_h=200.0)
    f = dataset.halo_features(early, "binding")
    np.testing.assert_allclose(f[:, :3], z0[:, :3], rtol=1e-5)
    np.testing.assert_allclose(f[:, 6], z0[:, 6], rtol=1e-4)  # depth below the minimum: same V200
    s0, s1 = dataset.halo_scales(halo), dataset.halo_scales(early)
    assert s1.v200 == pytest.approx(s0.v200, rel=1e-9)
    assert s1.hubble == pytest.approx(0.1 * np.sqrt(0.3089 / 0.125 + 0.6911), rel=1e-3)  # H(a = 0.5)
    # velocities differ only by the Hubble flow H(a) * (physical separation)
    phys = (halo.pos - halo.center)
    np.testing.assert_allclose((f[:, 3:6] - z0[:, 3:6]) * s0.v200, (s1.hubble - s0.hubble) * phys,
                               rtol=1e-3, atol=1e-2)


def test_kfold_split_partitions_the_groups():
    ids = range(2000)
    k = 5
    tests = [[g for g in ids if dataset.split_of(g, (k, i)) == "test"] for i in range(k)]
    assert sorted(sum(tests, [])) == list(ids)  # each group is tested in exactly one fold
    assert all(300 < len(t) < 500 for t in tests)
    val = [g for g in ids if dataset.split_of(g, (k, 0)) == "val"]
    assert set(val) < set(tests[1]) and 0.4 < len(val) / len(tests[1]) < 0.6  # half of the next fold


def test_expand_sources_takes_each_paths_own_snapshots(tmp_path):
    assert dataset.expand_sources(["a#0,2", "b"], "last") == [("a", 0), ("a", 2), ("b", None)]
    assert dataset.expand_sources("c", "1,3") == [("c", 1), ("c", 3)]
    with pytest.raises(DataError, match="snapshots"):
        dataset.expand_sources("d", "one")


def test_sphere_potential_matches_a_point_mass_outside_and_shells_inside():
    """Two particles: outside both, -G 2m / r; between them, the outer one's shell adds -G m / r_out."""
    from deephalo_core.units import G

    phi = dataset.sphere_potential(np.array([10.0, 1.0, 20.0]), 2.0)
    np.testing.assert_allclose(phi, [-G * (4.0 / 10 + 2.0 / 20), -G * (2.0 / 1 + 2.0 / 10 + 2.0 / 20),
                                     -G * 6.0 / 20], rtol=1e-12)
