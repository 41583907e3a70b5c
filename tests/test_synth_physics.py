"""Physics sanity of the synthetic snapshot: profiles, Jeans velocities, boundness, potential,
ordering, catalog consistency and determinism, checked on a small in-memory build."""
import numpy as np
import pytest
from scipy.optimize import curve_fit

from deephalo_core.synth import build
from deephalo_core.synth import gravity, profiles
from deephalo_core.synth.binding import binding_energy
from deephalo_core.synth.generator import group_sizes, _satellite_lengths
from deephalo_core.units import G, TNG50_4_DARK

SEED, N_GROUPS = 11, 8
EPS = TNG50_4_DARK["softening"]


@pytest.fixture(scope="module")
def snap():
    header, particles, groups, subhalos = build(seed=SEED, n_groups=N_GROUPS, progress=False)
    offsets = np.concatenate([[0], np.cumsum(groups["GroupLen"])])
    return dict(header=header, p=particles, g=groups, s=subhalos, offsets=offsets,
                m=header["MassTable"][1], box=header["BoxSize"])


def group_slice(snap, g):
    return slice(snap["offsets"][g], snap["offsets"][g + 1])


def unwrapped(snap, g, centre=None):
    """Group g's positions relative to `centre` (default GroupPos), minimum image."""
    centre = snap["g"]["GroupPos"][g] if centre is None else centre
    d = snap["p"]["Coordinates"][group_slice(snap, g)] - centre
    return d - snap["box"] * np.round(d / snap["box"])


def subhalo_slices(snap, g):
    first, n = snap["g"]["GroupFirstSub"][g], snap["g"]["GroupNsubs"][g]
    lengths = snap["s"]["SubhaloLen"][first:first + n]
    starts = snap["offsets"][g] + np.concatenate([[0], np.cumsum(lengths)])
    return [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]


# --- profiles -----------------------------------------------------------------------------------

def log_nfw(log_r, log_rs, log_rho_s):
    x = np.exp(log_r - log_rs)
    return log_rho_s - np.log(x * (1.0 + x) ** 2)


def test_host_density_follows_nfw(snap):
    """Spherically averaged density of the largest group's primary subhalo: an NFW fits within
    Poisson errors (a single power law does not), with a sensible concentration."""
    n_primary = snap["s"]["SubhaloLen"][0]
    r = np.linalg.norm(unwrapped(snap, 0)[:n_primary], axis=1)
    r200 = snap["g"]["Group_R_Crit200"][0]
    edges = np.geomspace(0.05 * r200, r200, 11)
    counts, _ = np.histogram(r, edges)
    log_r = np.log(np.sqrt(edges[1:] * edges[:-1]))
    log_rho = np.log(counts * snap["m"] / (4.0 / 3.0 * np.pi * np.diff(edges ** 3)))
    sigma = 1.0 / np.sqrt(counts)  # Poisson error of log density
    params, _ = curve_fit(log_nfw, log_r, log_rho, p0=[np.log(r200 / 5), 0.0], sigma=sigma)
    dof = len(counts) - 2
    chi2_nfw = np.sum(((log_rho - log_nfw(log_r, *params)) / sigma) ** 2) / dof
    line = np.polyfit(log_r, log_rho, 1, w=1.0 / sigma)
    chi2_power_law = np.sum(((log_rho - np.polyval(line, log_r)) / sigma) ** 2) / dof
    assert chi2_nfw < 3.0
    assert chi2_power_law > 3.0 * chi2_nfw
    assert 2.0 < r200 / np.exp(params[0]) < 30.0


def test_truncated_nfw_sampling_matches_its_mass_profile():
    prof = profiles.TruncatedNFW(mass=100.0, r_s=20.0, r_t=300.0)
    r = prof.sample_radii(np.random.default_rng(0), 200_000)
    assert r.max() <= 300.0
    for radius in (5.0, 20.0, 80.0, 200.0):
        expected = prof.enclosed_mass(radius) / prof.mass
        assert abs(np.mean(r < radius) - expected) < 0.005


def test_mass_functions_have_the_requested_slopes():
    """Maximum-likelihood power-law slope of the sampler, and group sizes spanning the range."""
    rng = np.random.default_rng(1)
    m = profiles.power_law_sample(rng, 1.9, 20.0, 1e9, 50_000)
    slope = 1.0 + len(m) / np.log(m / 20.0).sum()
    assert abs(slope - 1.9) < 0.03
    sizes = group_sizes(np.random.default_rng(2), 150, (1_000, 150_000))
    assert sizes.min() >= 1_000 and sizes.max() > 80_000
    assert np.median(sizes) < 5_000  # steep: most groups are small


def test_subhalo_counts_grow_with_host_mass():
    rng = np.random.default_rng(3)
    small = np.mean([len(_satellite_lengths(rng, 2_000)) for _ in range(50)])
    large = np.mean([len(_satellite_lengths(rng, 150_000)) for _ in range(50)])
    assert large > 30 and large > 5 * small
    assert min(_satellite_lengths(rng, 150_000).min() for _ in range(5)) >= 20


# --- velocities ---------------------------------------------------------------------------------

def test_velocity_dispersion_matches_jeans(snap):
    """Measured dispersion of the primary vs the isotropic Jeans solution computed from the
    measured tracer density and enclosed mass, inside R200/2 (outside, unbinding trims the
    high-velocity tail on purpose)."""
    g = 0
    pos, vel = unwrapped(snap, g), snap["p"]["Velocities"][group_slice(snap, g)].astype(np.float64)
    r = np.linalg.norm(pos, axis=1)
    n_primary = snap["s"]["SubhaloLen"][snap["g"]["GroupFirstSub"][g]]
    r_p, v_p = r[:n_primary], vel[:n_primary] - vel[:n_primary].mean(axis=0)
    r200 = snap["g"]["Group_R_Crit200"][g]
    grid = np.geomspace(1.0, r.max(), 300)
    enclosed = np.searchsorted(np.sort(r), grid) * snap["m"]
    shells = np.histogram(r_p, np.concatenate([[0.0], grid]))[0]
    rho = np.convolve(shells / np.diff(np.concatenate([[0.0], grid ** 3])), np.ones(9) / 9, "same")
    integrand = rho * G * enclosed / grid ** 2
    tail = np.concatenate([np.cumsum((0.5 * (integrand[1:] + integrand[:-1]) * np.diff(grid))[::-1])[::-1], [0]])
    edges = np.geomspace(0.1 * r200, 0.5 * r200, 5)
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (r_p >= lo) & (r_p < hi)
        measured = np.sqrt((v_p[sel] ** 2).sum(axis=1).mean() / 3.0)
        rc = np.sqrt(lo * hi)
        predicted = np.sqrt(np.interp(rc, grid, tail) / np.interp(rc, grid, rho))
        assert 0.8 < measured / predicted < 1.15, (lo, hi, measured, predicted)


def test_jeans_dispersion_of_profile_is_the_virial_scale():
    """sigma(r) of an NFW is a fraction of V200 peaking near r_s, and vanishes at truncation."""
    m200, c = 1000.0, 8.0
    r200 = profiles.r200_from_m200(m200)
    prof = profiles.TruncatedNFW(mass=m200 * profiles.nfw_mu(2 * c) / profiles.nfw_mu(c),
                                 r_s=r200 / c, r_t=2 * r200)
    v200 = np.sqrt(G * m200 / r200)
    sigma = prof.dispersion(np.array([0.1, 1.0, 2.0]) * prof.r_s)
    assert np.all((sigma > 0.4 * v200) & (sigma < 1.0 * v200))
    assert prof.dispersion(np.array([prof.r_t]))[0] < 1e-6 * v200


# --- potential ----------------------------------------------------------------------------------

def test_kernel_is_newtonian_outside_and_continuous():
    h = 2.8 * EPS
    r = np.array([h, 1.5 * h, 10 * h])
    assert np.allclose(gravity.spline_kernel(r, h), -1.0 / r)
    assert np.isclose(gravity.spline_kernel(np.array([0.0]), h)[0], -1.0 / EPS)
    for edge in (0.5 * h, h):
        below, above = gravity.spline_kernel(np.array([edge * (1 - 1e-7), edge * (1 + 1e-7)]), h)
        assert abs(below - above) < 1e-5 / h


def test_stored_potential_matches_exact_direct_sum(snap):
    """The largest group (> DIRECT_MAX particles, so computed by the tree) against an exact sum."""
    g = 0
    assert snap["g"]["GroupLen"][g] > gravity.DIRECT_MAX
    pos = unwrapped(snap, g)
    exact = gravity.direct_potential(pos, snap["m"], EPS)
    stored = snap["p"]["Potential"][group_slice(snap, g)]
    rel = np.abs(stored / exact - 1.0)
    assert np.median(rel) < 1e-3 and rel.max() < 1e-2


def test_tree_potential_at_targets_matches_direct_sum():
    rng = np.random.default_rng(8)
    sources = rng.normal(0, 30.0, (5000, 3))
    targets = rng.normal(0, 60.0, (400, 3))
    exact = gravity.potential_from(targets, sources, 0.0186755, EPS)
    tree = gravity.tree_potential_at(targets, sources, 0.0186755, EPS)
    assert np.abs(tree / exact - 1.0).max() < 5e-3


def test_direct_potential_pair_by_pair():
    """Two particles far apart: -G m / r each; three collinear ones sum up."""
    m = 0.5
    pos = np.array([[0.0, 0.0, 0.0], [100.0, 0.0, 0.0], [300.0, 0.0, 0.0]])
    phi = gravity.direct_potential(pos, m, EPS)
    assert np.allclose(phi, -G * m * np.array([1 / 100 + 1 / 300, 1 / 100 + 1 / 200, 1 / 300 + 1 / 200]))


# --- labels -------------------------------------------------------------------------------------

def test_subhalo_particles_are_bound_in_their_own_frame(snap):
    """Exact own-frame energies are negative and non-decreasing within every subhalo. Objects
    above DIRECT_MAX particles were unbound with the tree potential, so there the check allows
    the tree's accuracy (a few 1e-3 of the potential)."""
    checked = 0
    for g in range(N_GROUPS):
        pos = unwrapped(snap, g)
        for k, sl in enumerate(subhalo_slices(snap, g)):
            if sl.stop - sl.start > 5000:
                continue  # exact O(N^2) check too slow for a unit test
            local = slice(sl.start - snap["offsets"][g], sl.stop - snap["offsets"][g])
            energy = binding_energy(pos[local], snap["p"]["Velocities"][sl], snap["m"], EPS, exact=True)
            tolerance = 0.0 if len(energy) <= gravity.DIRECT_MAX else 5e-3 * np.abs(energy).max()
            assert energy.max() < tolerance, (g, k)
            # most bound first (stored float32 velocities round the kinetic term slightly)
            assert np.all(np.diff(energy) > -max(tolerance, 1e-4 * np.abs(energy).max())), (g, k)
            checked += 1
    assert checked > 2 * N_GROUPS


def test_every_group_has_fuzz_and_subhalos_of_at_least_20(snap):
    g, s = snap["g"], snap["s"]
    for i in range(N_GROUPS):
        lengths = s["SubhaloLen"][g["GroupFirstSub"][i]:g["GroupFirstSub"][i] + g["GroupNsubs"][i]]
        assert g["GroupLen"][i] - lengths.sum() > 0
        assert lengths.min() >= 20
        assert lengths[0] == lengths.max() and np.all(np.diff(lengths[1:]) <= 0)


# --- ordering and catalog -----------------------------------------------------------------------

def test_groups_sorted_and_field_particles_last_and_outside(snap):
    g, p = snap["g"], snap["p"]
    assert np.all(np.diff(g["GroupLen"]) <= 0)
    n_total = len(p["ParticleIDs"])
    n_field = n_total - g["GroupLen"].sum()
    assert n_field > 0
    field = p["Coordinates"][snap["offsets"][-1]:]
    for i in range(N_GROUPS):
        d = field - g["GroupPos"][i]
        d -= snap["box"] * np.round(d / snap["box"])
        assert np.linalg.norm(d, axis=1).min() > g["Group_R_Crit200"][i]


def test_some_group_crosses_the_box_edge(snap):
    crosses = []
    for i in range(N_GROUPS):
        x = snap["p"]["Coordinates"][group_slice(snap, i)]
        crosses.append(bool(np.any((x.max(axis=0) - x.min(axis=0)) > snap["box"] / 2)))
        assert np.all((x >= 0) & (x < snap["box"]))
    assert any(crosses)


def test_catalog_agrees_with_particles(snap):
    g, s, p, m = snap["g"], snap["s"], snap["p"], snap["m"]
    assert g["GroupLen"].sum() == s["SubhaloLen"].sum() + (g["GroupLen"] - np.add.reduceat(
        s["SubhaloLen"], g["GroupFirstSub"])).sum()
    for i in range(N_GROUPS):
        sl = group_slice(snap, i)
        assert np.array_equal(g["GroupPos"][i], p["Coordinates"][sl][np.argmin(p["Potential"][sl])])
        assert np.isclose(g["GroupMass"][i], g["GroupLen"][i] * m)
        assert g["GroupLenType"][i, 1] == g["GroupLen"][i]
        r = np.linalg.norm(unwrapped(snap, i), axis=1)
        inside = np.sum(r <= g["Group_R_Crit200"][i])
        # +-1 particle: the box wrap rounds positions at the 1e-12 level
        assert abs(g["Group_M_Crit200"][i] - inside * m) <= 1.01 * m
        density = g["Group_M_Crit200"][i] / (4 / 3 * np.pi * g["Group_R_Crit200"][i] ** 3)
        assert density >= 200 * 2.775e-8 * (1 - 1e-9)
        assert g["Group_R_Crit500"][i] < g["Group_R_Crit200"][i] < g["Group_R_Mean200"][i]
        for k, ssl in enumerate(subhalo_slices(snap, i)):
            j = g["GroupFirstSub"][i] + k
            assert s["SubhaloGrNr"][j] == i and s["SubhaloParent"][j] == 0
            assert np.array_equal(s["SubhaloPos"][j], p["Coordinates"][ssl.start])
            assert s["SubhaloIDMostbound"][j] == p["ParticleIDs"][ssl.start]
            assert np.allclose(s["SubhaloVel"][j], p["Velocities"][ssl].astype(np.float64).mean(axis=0), atol=1e-3)
            assert np.isclose(s["SubhaloMass"][j], s["SubhaloLen"][j] * m)
            assert 0 < s["SubhaloVmaxRad"][j] and 0 < s["SubhaloVmax"][j] < 2000


def test_particle_ids_unique_and_shuffled(snap):
    ids = snap["p"]["ParticleIDs"]
    assert ids.dtype == np.uint64
    assert len(np.unique(ids)) == len(ids)
    assert np.mean(ids == np.arange(len(ids), dtype=np.uint64)) < 0.01
    assert np.mean(ids == np.arange(1, len(ids) + 1, dtype=np.uint64)) < 0.01


# --- determinism --------------------------------------------------------------------------------

def test_same_seed_same_arrays_different_seed_differs(snap):
    again = build(seed=SEED, n_groups=N_GROUPS, progress=False)
    for original, repeat in zip((snap["header"], snap["p"], snap["g"], snap["s"]), again):
        assert original.keys() == repeat.keys()
        for key in original:
            assert np.array_equal(original[key], repeat[key]), key
    other = build(seed=SEED + 1, n_groups=N_GROUPS, progress=False)
    assert not np.array_equal(other[2]["GroupPos"], snap["g"]["GroupPos"])
    assert not np.array_equal(other[1]["Coordinates"][:1000], snap["p"]["Coordinates"][:1000])


def test_field_neighbour_grid_agrees_with_kdtree():
    """The cell-grid search used for field particles finds the same 32 neighbours as a periodic
    k-d tree, including across the box faces."""
    from deephalo_core.synth import catalog

    rng = np.random.default_rng(5)
    box = 1000.0
    pos = rng.uniform(0, box, (4000, 3))
    pos[:50] = rng.uniform(0, 5, (50, 3))  # a clump in the corner, wrapping around
    vel = rng.normal(0, 100, (4000, 3))
    tree = catalog.subfind_fields(pos, vel, 0.01, box_size=box)
    grid = catalog.subfind_fields_periodic(pos, vel, 0.01, box)
    for key in tree:
        assert np.allclose(tree[key], grid[key], rtol=1e-10), key


def test_unbind_removes_fast_particles_and_dissolves_small_objects():
    from deephalo_core.synth.binding import unbind

    rng = np.random.default_rng(6)
    pos = rng.normal(0, 5.0, (210, 3))
    vel = rng.normal(0, 1.0, (210, 3))
    vel[200:] += 5000.0 * profiles.random_directions(rng, 10)  # far above escape speed
    kept, energy = unbind(pos, vel, 0.0186755, EPS)
    assert set(kept) == set(range(200))
    assert np.all(np.diff(energy) >= 0) and energy.max() < 0
    assert np.allclose(energy, binding_energy(pos[kept], vel[kept], 0.0186755, EPS, exact=True))
    kept, energy = unbind(pos[:15], vel[:15], 0.0186755, EPS)
    assert kept.size == 0 and energy.size == 0


def test_vmax_ignores_the_unresolved_centre():
    """A particle at r = 0 would give an infinite sqrt(G M / r); min_radius keeps the peak at
    resolved radii while the centre still counts in the enclosed mass."""
    from deephalo_core.physics import circular_velocity_peak

    m = 0.0186755
    radii = np.concatenate([[0.0], np.linspace(10.0, 100.0, 99)])
    vmax, rmax = circular_velocity_peak(radii, m, min_radius=EPS)
    assert rmax >= EPS
    v = np.sqrt(G * m * np.arange(1, 101) / np.maximum(radii, 1e-12))[1:]
    assert np.isclose(vmax, v.max())
