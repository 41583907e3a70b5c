"""TNG web-API cutouts opened as one-halo simulations: the real files and hand-made ones."""
import h5py
import numpy as np
import pytest

from deephalo_core.data import OutputInfo, list_outputs, open_simulation
from deephalo_core.data.cutout import shrinking_sphere_center
from deephalo_core.errors import DataError
from deephalo_core.units import RHO_CRIT0

BOX = 35000.0
MASS = 1e-3


def write_cutout(path, coords, time=1.0, **fields):
    """A file shaped like the web API's cutouts (Header attributes + PartType1 datasets)."""
    with h5py.File(path, "w") as f:
        h = f.create_group("Header")
        h.attrs.update(BoxSize=BOX, HubbleParam=0.6774, Omega0=0.3089, OmegaLambda=0.6911,
                       OmegaBaryon=0.0486, Redshift=1 / time - 1, Time=time,
                       MassTable=np.array([0, MASS, 0, 0, 0, 0], float),
                       NumPart_ThisFile=np.array([0, len(coords), 0, 0, 0, 0], np.int32),
                       NumFilesPerSnapshot=np.int64(1), CutoutType="subhalo", CutoutID=np.int64(5),
                       SnapshotNumber=np.int64(99))
        g = f.create_group("PartType1")
        g["Coordinates"] = coords
        for name, values in fields.items():
            g[name] = values
    return path


def clump_and_background(center, seed=0):
    rng = np.random.default_rng(seed)
    clump = center + rng.normal(0, 2.0, (600, 3))
    background = center + rng.uniform(-60, 60, (400, 3))
    return np.mod(np.concatenate([background, clump]), BOX)


def test_real_cutouts_open_as_one_halo(cutout_paths):
    assert len(cutout_paths) == 3
    for path in cutout_paths:
        with h5py.File(path, "r") as f:
            raw = f["PartType1/Coordinates"][()]
        with h5py.File(path, "r") as f:
            a, z = f["Header"].attrs["Time"], f["Header"].attrs["Redshift"]
        assert list_outputs(path) == [OutputInfo(1, z, a)]
        with open_simulation(path) as sim:
            assert sim.kind == "cutout" and sim.snap == 1
            assert sim.header.n_particles == len(raw) and sim.header.n_groups == 1
            assert sim.header.particle_mass == pytest.approx(3.6475561e-05)
            assert sim.available_fields == ["Coordinates"]
            assert len(sim.halos) == 1 and sim.halos["n_particles"][0] == len(raw)
            halo = sim.load_halo(0)
            with pytest.raises(DataError, match=r"no PartType1 field\(s\) \['Potential'\]"):
                sim.load_halo(0, extra_fields=["Potential"])
        assert halo.labels is None and halo.n_subhalos == 0
        assert halo.missing == ("Velocities", "Potential", "ParticleIDs")
        assert halo.vel is None and halo.potential is None and halo.ids is None
        np.testing.assert_allclose(np.mod(halo.pos, BOX), raw, atol=1e-9)
        # Centre: the shrinking-sphere centre, inside the particle cloud.
        np.testing.assert_allclose(halo.center, shrinking_sphere_center(halo.pos), atol=1e-6)
        assert np.all(halo.center > halo.pos.min(axis=0)) and np.all(halo.center < halo.pos.max(axis=0))
        assert 0 < halo.m200 <= len(raw) * halo.particle_mass * 1e10


def test_shrinking_sphere_finds_clump_across_box_edge(tmp_path):
    center = np.array([0.5, 34999.0, 17000.0])
    path = write_cutout(tmp_path / "c.hdf5", clump_and_background(center))
    with open_simulation(path) as sim:
        halo = sim.load_halo(0)
    offset = (halo.center - center + BOX / 2) % BOX - BOX / 2
    assert np.linalg.norm(offset) < 1.0
    assert np.ptp(halo.pos, axis=0).max() < 200  # one piece, though the raw coordinates wrap


def test_center_is_minimum_potential_particle(tmp_path):
    coords = clump_and_background(np.array([100.0, 200.0, 300.0]))
    potential = np.linspace(0, -1, len(coords)).astype(np.float32)
    potential[17] = -5.0
    vel = np.ones((len(coords), 3), np.float32) * 10
    path = write_cutout(tmp_path / "c.hdf5", coords, time=0.25, Potential=potential,
                        Velocities=vel, ParticleIDs=np.arange(len(coords), dtype=np.uint64))
    with open_simulation(path) as sim:
        halo = sim.load_halo(0)
    np.testing.assert_allclose(halo.center, coords[17])
    assert halo.missing == ()
    np.testing.assert_allclose(halo.vel, 5.0)  # peculiar: v * sqrt(a)


@pytest.mark.parametrize("time", [1.0, 0.0625])
def test_m200_r200_of_isothermal_sphere(tmp_path, time):
    # rho ~ r^-2 has M(<r) = N m r / R_max, so the mean density falls as r^-2 and
    # r200 = sqrt(3 N m / (4 pi R_max 200 rho_crit(z))), rho_crit comoving = rho_c0 (Om + OL a^3).
    n, r_max = 20000, 200.0
    rng = np.random.default_rng(1)
    directions = rng.normal(size=(n, 3))
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    radii = r_max * (np.arange(n) + 0.5) / n
    center = np.array([5000.0, 5000.0, 5000.0])
    path = write_cutout(tmp_path / "sis.hdf5", center + directions * radii[:, None], time=time)
    rho = RHO_CRIT0 * (0.3089 + 0.6911 * time ** 3)
    r200 = np.sqrt(3 * n * MASS / (4 * np.pi * r_max * 200 * rho))
    with open_simulation(path) as sim:
        row = sim.halos.iloc[0]
    assert row["r200_ckpc_h"] == pytest.approx(r200, rel=0.03)
    assert row["m200_msun_h"] == pytest.approx(n * MASS * r200 / r_max * 1e10, rel=0.03)


def test_subhalo_lengths_give_labels(tmp_path):
    path = write_cutout(tmp_path / "c.hdf5", clump_and_background(np.array([10.0, 10.0, 10.0])))
    with open_simulation(path, subhalo_lengths=[700, 200, 50]) as sim:
        halo = sim.load_halo(0)
        row = sim.halos.iloc[0]
        assert sim.primary_subhalo(0) == 0
    assert np.bincount(halo.labels + 1).tolist() == [50, 700, 200, 50]
    assert halo.labels[:700].max() == 0 and halo.labels[950:].max() == -1
    assert halo.subhalo_ids.tolist() == [0, 1, 2]
    assert (row["n_subhalos"], row["n_fuzz"]) == (3, 50)


@pytest.mark.parametrize("lengths, message", [
    ([900, 200], r"add up to 1100 particles but the cutout holds 1000"),
    ([10, -1], r"must be a list of non-negative integers"),
    ([10.5], r"must be a list of non-negative integers"),
])
def test_bad_subhalo_lengths(tmp_path, lengths, message):
    path = write_cutout(tmp_path / "c.hdf5", clump_and_background(np.array([10.0, 10.0, 10.0])))
    with pytest.raises(DataError, match=message):
        open_simulation(path, subhalo_lengths=lengths)


def test_cutout_without_coordinates(tmp_path):
    path = tmp_path / "c.hdf5"
    write_cutout(path, np.zeros((3, 3)))
    with h5py.File(path, "r+") as f:
        del f["PartType1/Coordinates"]
        f["PartType1/Velocities"] = np.zeros((3, 3), np.float32)
    with pytest.raises(DataError, match=r"has no PartType1/Coordinates; request the cutout"):
        open_simulation(path)
