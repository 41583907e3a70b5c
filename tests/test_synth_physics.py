"""Physics sanity of the synthetic snapshot: profiles, Jeans velocities, boundness, potential,
ordering, catalog consistency and determinism, checked on a small in-memory build."""
import numpy as np
import pytest
from scipy.optimize import curve_fit

from deephalo_core.synth import build
from deephalo_core.synth import gravity, infall, profiles, satellites, streams
from deephalo_core.synth.binding import binding_energy
from deephalo_core.synth.generator import group_sizes
from deephalo_core.synth.satellites import satellite_lengths
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
    """Like real FoF groups (see realism): satellites above 20 particles grow about linearly with
    the host, about one in a 2,000-particle host and ten in a 20,000-particle one; about one host
    in ten has a satellite above a tenth of the group (a merger in progress)."""
    rng = np.random.default_rng(3)
    small = [satellite_lengths(rng, 2_000) for _ in range(400)]
    medium = [satellite_lengths(rng, 20_000) for _ in range(200)]
    large = np.mean([len(satellite_lengths(rng, 150_000)) for _ in range(50)])
    n_small, n_medium = np.mean([len(x) for x in small]), np.mean([len(x) for x in medium])
    assert 0.7 < n_small < 2.0 and 7.0 < n_medium < 20.0
    assert 6.0 < n_medium / n_small < 15.0 and large > 5 * n_medium
    with_major = np.mean([len(x) > 0 and x[0] >= 0.1 * 2_000 for x in small])
    assert 0.08 < with_major < 0.3
    assert min(x.min() for x in medium if len(x)) >= 20
    assert all(x.sum() <= satellites.MASS_BUDGET * 20_000 for x in medium)


def test_satellites_sit_around_r200_and_beyond_along_filaments():
    """Half of the satellites lie beyond R200 (quartiles of d/R200 ~ 0.7, 1.0, 1.4, as in real
    groups), and most of those far out sit along the host's filaments."""
    rng = np.random.default_rng(4)
    d = satellites.satellite_distances(rng, 20_000, 100.0) / 100.0
    assert np.quantile(d, [0.25, 0.5, 0.75]) == pytest.approx([0.71, 1.0, 1.40], abs=0.05)
    host = profiles.TruncatedNFW(mass=40.0, r_s=20.0, r_t=250.0)
    along = []
    for _ in range(10):
        fils = infall.plan_filaments(rng, profiles.triaxial_stretch(rng), 200.0, 150.0)
        sats = satellites.plan_satellites(rng, 50_000, host, 200.0, np.eye(3), fils, 0.0186755, EPS)
        far = [s for s in sats if s.infalling]
        assert all(np.linalg.norm(s.offset) > 200.0 for s in far)
        along += [max(float(s.offset @ f.direction) / np.linalg.norm(s.offset) for f in fils) > 0.9
                  for s in far]
    assert len(along) > 50 and 0.6 < np.mean(along) < 0.9


def test_filaments_reach_out_and_flow_in():
    rng = np.random.default_rng(9)
    r200, v200 = 150.0, 120.0
    fil = infall.Filament(np.array([0.0, 0.6, 0.8]), 2.0 * r200, 0.5 * v200)
    pos, vel = infall.filament_particles(rng, fil, 5_000, r200, v200)
    along = pos @ fil.direction
    across = np.linalg.norm(pos - along[:, None] * fil.direction, axis=1)
    assert along.min() >= infall.START * r200 - 1e-9 and along.max() <= 2.0 * r200
    assert np.median(across) < 0.3 * r200  # thin
    assert np.mean(along < 1.2 * r200) > 1.4 * np.mean(along > 1.8 * r200)  # denser inwards
    assert (vel @ fil.direction).mean() == pytest.approx(-0.5 * v200, rel=0.05)


def test_stream_follows_the_satellite_orbit():
    """A stream lies in the satellite's orbital plane at its distance, ahead and behind, beyond
    its tidal radius, moving like it."""
    rng = np.random.default_rng(10)
    position, velocity = np.array([100.0, 0.0, 0.0]), np.array([0.0, 150.0, 0.0])
    pos, vel = streams.stream_particles(rng, 4_000, position, velocity, tidal_radius=5.0, sigma=10.0)
    assert np.abs(pos[:, 2]).mean() < 10.0  # orbital plane z = 0
    assert np.median(np.linalg.norm(pos, axis=1)) == pytest.approx(100.0, rel=0.05)
    angle = np.arctan2(pos[:, 1], pos[:, 0])
    assert (angle > 0.3).any() and (angle < -0.3).any()
    assert np.mean(np.abs(angle) < 0.03) < 0.02  # not on top of the satellite
    speed = np.linalg.norm(vel, axis=1)
    assert np.median(speed) == pytest.approx(150.0, rel=0.1)


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


def jeans_numerical(prof: profiles.TruncatedNFW, r: float, beta: float, r_a: float, outer: float):
    """sigma_r from the Jeans equation with beta(r) = beta r / (r + r_a), integrated with quad
    (independently of the tabulated solution): rho sigma_r^2 f(r) = int_r^outer rho G M f dr',
    f = exp(int 2 beta(r) / r dr), the density continuing as an untruncated NFW past r_t."""
    from scipy.integrate import quad

    rho = lambda x: 1.0 / (x * (1 + x) ** 2)
    mass = lambda x: prof.mass * profiles.nfw_mu(x) / profiles.nfw_mu(prof.x_t)
    f = lambda x: np.exp(quad(lambda y: 2 * beta * y / (y + r_a / prof.r_s) / y, 1.0, x)[0])
    x0 = r / prof.r_s
    integral = quad(lambda x: rho(x) * G * mass(x) / (x * prof.r_s) ** 2 * f(x) * prof.r_s,
                    x0, outer / prof.r_s, limit=200)[0]
    return np.sqrt(integral / (rho(x0) * f(x0)))


def test_anisotropic_jeans_with_hot_edge_matches_a_direct_integration():
    """Hosts move radially biased (beta -> 0.4 far out, isotropic in the centre, as measured in
    real halos) and keep the pressure of their surroundings at the edge: the tabulated sigma_r
    agrees with a direct integration, and sampled velocities have sigma_t / sigma_r =
    sqrt(1 - beta(r))."""
    m200, c = 1000.0, 8.0
    r200 = profiles.r200_from_m200(m200)
    prof = profiles.TruncatedNFW(mass=m200 * profiles.nfw_mu(1.2 * c) / profiles.nfw_mu(c),
                                 r_s=r200 / c, r_t=1.2 * r200)
    outer = 10.0 * r200
    for r in (0.3 * prof.r_s, prof.r_s, 0.5 * r200, r200):
        table = prof.dispersion(np.array([r]), beta=0.4, outer=outer, beta_radius=prof.r_s)[0]
        assert table == pytest.approx(jeans_numerical(prof, r, 0.4, prof.r_s, outer), rel=0.01)
    v200 = np.sqrt(G * m200 / r200)
    edge = prof.dispersion(np.array([prof.r_t]), beta=0.4, outer=outer, beta_radius=prof.r_s)[0]
    assert edge > 0.3 * v200  # hot outskirts; without `outer` the edge is cold (see above)
    rng = np.random.default_rng(12)
    r = np.full(50_000, r200 / 2)
    u = profiles.random_directions(rng, len(r))
    v = prof.sample_velocities(rng, r, u, beta=0.4, outer=outer, beta_radius=prof.r_s)
    v_r = (v * u).sum(axis=1)
    sigma_t = np.sqrt(((v ** 2).sum(axis=1) - v_r ** 2).mean() / 2)
    beta_here = 0.4 * (r200 / 2) / (r200 / 2 + prof.r_s)
    assert sigma_t / v_r.std() == pytest.approx(np.sqrt(1 - beta_here), rel=0.02)


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


def test_subhalos_of_at_least_20_and_fuzz_as_in_real_groups(snap):
    """Subfind's order and minimum length. Fuzz as in real z = 0 groups: most groups have some, a
    few per cent at most, and some have none (a sixth of real groups above 1,000 particles)."""
    g, s = snap["g"], snap["s"]
    fuzz = []
    for i in range(N_GROUPS):
        lengths = s["SubhaloLen"][g["GroupFirstSub"][i]:g["GroupFirstSub"][i] + g["GroupNsubs"][i]]
        assert lengths.min() >= 20
        assert lengths[0] == lengths.max() and np.all(np.diff(lengths[1:]) <= 0)
        fuzz.append((g["GroupLen"][i] - lengths.sum()) / g["GroupLen"][i])
    assert min(fuzz) >= 0 and np.mean(np.array(fuzz) > 0) >= 0.5 and np.mean(fuzz) < 0.05


def test_groups_reach_beyond_r200_with_satellites_there(snap):
    """Real FoF groups hold ~15% of their particles beyond R200 (filaments, infall) and half of
    their satellites out there; the host inside R200 is triaxial."""
    g, s = snap["g"], snap["s"]
    outside, far, b_a = [], [], []
    for i in range(N_GROUPS):
        r200 = g["Group_R_Crit200"][i]
        d = unwrapped(snap, i)
        r = np.linalg.norm(d, axis=1)
        outside.append(np.mean(r > r200))
        inside = d[r <= r200]
        axes = np.sqrt(np.linalg.eigvalsh(inside.T @ inside / len(inside)))[::-1]
        b_a.append(axes[1] / axes[0])
        for j in range(g["GroupFirstSub"][i] + 1, g["GroupFirstSub"][i] + g["GroupNsubs"][i]):
            offset = s["SubhaloPos"][j] - g["GroupPos"][i]
            offset -= snap["box"] * np.round(offset / snap["box"])
            far.append(np.linalg.norm(offset) > r200)
    assert 0.05 < np.mean(outside) < 0.3
    assert len(far) >= 10 and 0.2 < np.mean(far) < 0.8
    assert np.median(b_a) < 0.95


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
