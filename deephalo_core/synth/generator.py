"""Build a synthetic TNG50-4-Dark-like snapshot in memory: FoF groups of NFW hosts with subhalos,
labelled by Subfind-style unbinding, plus field particles, with a catalog measured from the
particles. `build()` returns dicts in the format of `deephalo_core.data.write.write_snapshot`.

Every random draw comes from a generator seeded by (seed, purpose, group), so the same seed gives
the same arrays whatever the order of work.
"""
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree
from tqdm.auto import tqdm

from deephalo_core.synth import binding, catalog, gravity, profiles
from deephalo_core.units import G, TNG50_4_DARK

# Group and subhalo population (particle counts).
DEFAULT_HOST_RANGE = (1_000, 150_000)
HOST_SLOPE = 1.9  # dN/dN_p ~ N_p^-1.9 for FoF group sizes
SUBHALO_SLOPE = 1.9  # dN/dm ~ m^-1.9
SUBHALO_MIN = binding.MIN_SUBHALO_LEN
SUBHALO_MAX_FRACTION = 0.1  # satellites hold at most 10% of the group's particles each
SUBHALO_MASS_FRACTION = (0.05, 0.12)  # mass fraction in satellites before unbinding
DIFFUSE_FRACTION = (0.01, 0.04)  # loosely bound infalling material: most of it ends up as fuzz
FIELD_FRACTION = 0.1  # field particles per group particle in the default snapshot
GROUP_VELOCITY_SIGMA = 200.0  # km/s per component, bulk peculiar velocities of groups
FIELD_VELOCITY_SIGMA = 150.0

PRESETS = {
    # TNG50-4-Dark's particle count: a realistic population of groups from 100 particles up,
    # field particles fill the rest.
    "tng50-4": dict(n_particles=270 ** 3, n_groups=4000, host_range=(100, 1_000_000)),
}


@dataclass
class Group:
    """One generated FoF group, particles in snapshot order (primary, satellites, fuzz)."""

    pos: np.ndarray  # (n,3) offsets from where the group is placed, in one piece
    vel: np.ndarray  # (n,3) km/s
    potential: np.ndarray  # (n,) (km/s)^2
    subhalo_lengths: list  # primary first, then satellites by decreasing length; may be empty


@dataclass
class HostPlan:
    """How a group's particles split into host, satellites and diffuse material, and the host's
    truncated NFW profile and triaxial shape."""

    n_particles: int
    n_diffuse: int
    satellite_lengths: np.ndarray
    profile: profiles.TruncatedNFW
    r200: float
    v200: float
    stretch: np.ndarray


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _wrap(x: np.ndarray, box: float) -> np.ndarray:
    """Into [0, box): np.mod can round a tiny negative up to box itself."""
    x = np.mod(x, box)
    x[x >= box] = 0.0
    return x


def plan_host(rng: np.random.Generator, n_particles: int, particle_mass: float) -> HostPlan:
    """Split a group of n_particles into host, satellites and diffuse material; size the host."""
    n_diffuse = max(8, int(round(rng.uniform(*DIFFUSE_FRACTION) * n_particles)))
    satellites = _satellite_lengths(rng, n_particles)
    n_host = n_particles - n_diffuse - int(satellites.sum())
    mass = n_host * particle_mass
    f_trunc = rng.uniform(1.5, 2.0)  # host extends to 1.5-2 R200
    scatter = rng.standard_normal()
    m200 = mass / 1.2
    for _ in range(4):  # M200 and c depend on each other through the truncated mass
        c = float(profiles.concentration_mean(m200) * 10 ** (profiles.C_SCATTER_DEX * scatter))
        m200 = mass * profiles.nfw_mu(c) / profiles.nfw_mu(f_trunc * c)
    r200 = profiles.r200_from_m200(m200)
    profile = profiles.TruncatedNFW(mass=mass, r_s=r200 / c, r_t=f_trunc * r200)
    return HostPlan(n_particles, n_diffuse, satellites, profile, r200,
                    float(np.sqrt(G * m200 / r200)), profiles.triaxial_stretch(rng))


def _satellite_lengths(rng: np.random.Generator, n_particles: int) -> np.ndarray:
    """Satellite particle counts from dN/dm ~ m^-1.9 on [20, 10% of the group]; the expected
    number follows from the mass fraction in satellites, so it grows with the host."""
    hi = max(SUBHALO_MIN + 1, SUBHALO_MAX_FRACTION * n_particles)
    a = 1.0 - SUBHALO_SLOPE
    per_count = ((hi ** a - SUBHALO_MIN ** a) / a) / ((hi ** (a + 1) - SUBHALO_MIN ** (a + 1)) / (a + 1))
    expected = rng.uniform(*SUBHALO_MASS_FRACTION) * n_particles * per_count
    n_sub = rng.poisson(expected)
    lengths = np.round(profiles.power_law_sample(rng, SUBHALO_SLOPE, SUBHALO_MIN, hi, n_sub)).astype(np.int64)
    # keep the host dominant: at most a quarter of the group in satellites
    budget = np.cumsum(np.sort(lengths)) <= 0.25 * n_particles
    return np.sort(lengths)[budget][::-1]


def make_group(rng: np.random.Generator, plan: HostPlan, particle_mass: float,
               softening: float) -> Group:
    """Particles of one group, labelled by unbinding and ordered as Subfind orders them."""
    host = plan.profile
    host_n = plan.n_particles - plan.n_diffuse - int(plan.satellite_lengths.sum())
    pos_host, r_host = host.sample_positions(rng, host_n)
    vel_host = host.sample_velocities(rng, r_host)
    pieces_pos, pieces_vel = [pos_host @ plan.stretch.T], [vel_host]

    # satellites: spread through the host, less concentrated than its mass
    n_sat = len(plan.satellite_lengths)
    c_host = plan.r200 / host.r_s
    spread = profiles.TruncatedNFW(1.0, plan.r200 / max(c_host / 3.0, 1.0), 1.2 * plan.r200)
    distances = spread.sample_radii(rng, 4 * n_sat + 4)
    distances = distances[distances > 0.08 * plan.r200][:n_sat]
    while len(distances) < n_sat:  # rare: too few draws beyond the inner cut
        more = spread.sample_radii(rng, 4 * n_sat)
        distances = np.concatenate([distances, more[more > 0.08 * plan.r200]])[:n_sat]
    sat_offsets = distances[:, None] * profiles.random_directions(rng, n_sat) @ plan.stretch.T
    sat_bulk = host.dispersion(distances)[:, None] * rng.standard_normal((n_sat, 3))
    for n_j, d_j, offset, bulk in zip(plan.satellite_lengths, distances, sat_offsets, sat_bulk):
        sat = satellite_profile(rng, int(n_j), float(d_j), host, particle_mass, softening)
        p, r = sat.sample_positions(rng, int(n_j))
        pieces_pos.append(offset + p)
        pieces_vel.append(bulk + sat.sample_velocities(rng, r))

    # diffuse infalling material near the edge, at 0.8-1.6 times the local escape speed: most
    # of it is unbound and becomes the group's fuzz
    r_diff = host.r_t * rng.uniform(0.75, 1.0, plan.n_diffuse)
    dirs = profiles.random_directions(rng, plan.n_diffuse)
    pieces_pos.append((r_diff[:, None] * dirs) @ plan.stretch.T)
    pos = np.concatenate(pieces_pos)
    potential = gravity.potential(pos, particle_mass, softening)
    heading = -dirs + 0.7 * profiles.random_directions(rng, plan.n_diffuse)
    heading /= np.linalg.norm(heading, axis=1, keepdims=True)
    escape = np.sqrt(2.0 * np.abs(potential[-plan.n_diffuse:]))
    pieces_vel.append(heading * (escape * rng.uniform(0.8, 1.6, plan.n_diffuse))[:, None])
    vel = np.concatenate(pieces_vel)
    vel += GROUP_VELOCITY_SIGMA * rng.standard_normal(3)

    # Subfind-style labels: satellites keep what is bound to them in their own frame
    bounds = np.cumsum([0, host_n, *plan.satellite_lengths])
    satellites, leftovers = [], [np.arange(host_n), np.arange(bounds[-1], len(pos))]
    for lo, hi in zip(bounds[1:-1], bounds[2:]):
        members = np.arange(lo, hi)
        kept, _ = binding.unbind(pos[members], vel[members], particle_mass, softening)
        satellites.append(members[kept])
        leftovers.append(np.setdiff1d(members, members[kept], assume_unique=True))
    candidates = np.sort(np.concatenate(leftovers))
    kept, _ = binding.unbind(pos[candidates], vel[candidates], particle_mass, softening)
    primary = candidates[kept]
    fuzz = np.setdiff1d(candidates, primary, assume_unique=True)
    fuzz = fuzz[np.argsort(potential[fuzz], kind="stable")]
    satellites = [s for s in satellites if len(s)]
    satellites.sort(key=len, reverse=True)  # stable: equal lengths keep generation order
    order = np.concatenate([primary, *satellites, fuzz]).astype(np.int64)
    # a primary that dissolved leaves the largest satellite as subhalo 0, as in Subfind
    lengths = ([len(primary)] if len(primary) else []) + [len(s) for s in satellites]
    return Group(pos[order], vel[order], potential[order], lengths)


def satellite_profile(rng: np.random.Generator, n_particles: int, distance: float,
                      host: profiles.TruncatedNFW, particle_mass: float,
                      softening: float) -> profiles.TruncatedNFW:
    """A tidally truncated NFW: structure of its (more massive) infall halo, cut at the Jacobi
    radius d (m / 3 M_host(<d))^(1/3)."""
    mass = n_particles * particle_mass
    m_infall = mass * rng.uniform(1.5, 4.0)
    r200 = profiles.r200_from_m200(m_infall)
    r_s = r200 / float(profiles.concentration(m_infall, rng))
    jacobi = distance * (mass / (3.0 * max(float(host.enclosed_mass(distance)), mass))) ** (1.0 / 3.0)
    r_t = float(np.clip(jacobi, max(0.5 * r_s, 2.0 * softening), r200))
    return profiles.TruncatedNFW(mass=mass, r_s=r_s, r_t=r_t)


def group_sizes(rng: np.random.Generator, n_groups: int, host_range) -> np.ndarray:
    """FoF group particle counts from a steep power law, largest first (stratified, so even a
    small sample spans the range)."""
    sizes = np.round(profiles.power_law_sample(rng, HOST_SLOPE, *host_range, n_groups,
                                               stratified=True)).astype(np.int64)
    return np.sort(sizes)[::-1]


def place_groups(rng: np.random.Generator, extents: np.ndarray, box: float) -> np.ndarray:
    """Non-overlapping centres in the periodic box, largest first; the largest straddles a corner
    so at least one group crosses the box edge."""
    centres = np.empty((len(extents), 3))
    for i, extent in enumerate(extents):
        for attempt in range(1000):
            if i == 0:
                c = np.array([box - 0.3 * extent, 0.3 * extent, rng.uniform(0, box)])
            else:
                c = rng.uniform(0, box, 3)
            d = c - centres[:i]
            d -= box * np.round(d / box)
            if i == 0 or np.all(np.linalg.norm(d, axis=1) > extent + extents[:i]):
                break
        centres[i] = np.mod(c, box)
    return centres


def field_particles(rng: np.random.Generator, n: int, centres: np.ndarray, extents: np.ndarray,
                    box: float) -> np.ndarray:
    """n uniform positions in the box outside every group's extent."""
    out = np.empty((0, 3))
    group_tree = cKDTree(centres, boxsize=box) if len(centres) else None
    max_extent = float(extents.max()) if len(extents) else 0.0
    while len(out) < n:
        trial = rng.uniform(0, box, (int((n - len(out)) * 1.05) + 16, 3))
        if group_tree is not None:
            # the few nearest centres suffice: groups do not overlap
            k = min(8, len(centres))
            d, j = group_tree.query(trial, k=k, distance_upper_bound=max_extent)
            d, j = d.reshape(len(trial), k), j.reshape(len(trial), k)
            found = np.isfinite(d)
            inside = np.zeros(d.shape, dtype=bool)
            inside[found] = d[found] < extents[j[found]]
            trial = trial[~inside.any(axis=1)]
        out = np.concatenate([out, trial])[:n]
    return out


def build(seed: int = 0, n_groups: int = 150, preset: str | None = None, progress: bool = True):
    """(header, particles, groups, subhalos) of a synthetic snapshot, in the writer's format."""
    sim = TNG50_4_DARK
    box, m, eps = sim["box_size"], sim["particle_mass"], sim["softening"]
    host_range, n_total = DEFAULT_HOST_RANGE, None
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        p = PRESETS[preset]
        n_groups, host_range, n_total = p["n_groups"], p["host_range"], p["n_particles"]
    if n_groups < 1:
        raise ValueError(f"n_groups must be at least 1, got {n_groups}")

    sizes = group_sizes(_rng(seed, 0), n_groups, host_range)
    plans = [plan_host(_rng(seed, 1, g), int(n), m) for g, n in enumerate(sizes)]
    extents = np.array([p.profile.r_t * np.linalg.norm(p.stretch, 2) for p in plans])
    centres = place_groups(_rng(seed, 2), extents, box)

    groups, subs, parts = [], [], []
    for g, plan in enumerate(tqdm(plans, desc="groups", unit="group", disable=not progress)):
        grp = make_group(_rng(seed, 3, g), plan, m, eps)
        row = catalog.group_properties(grp.pos, grp.vel, grp.potential, m, sim["omega0"])
        row["GroupPos"] = _wrap(row["GroupPos"] + centres[g], box)
        row["GroupCM"] = _wrap(row["GroupCM"] + centres[g], box)
        row["GroupNsubs"] = len(grp.subhalo_lengths)
        row["GroupFirstSub"] = len(subs) if grp.subhalo_lengths else -1
        groups.append(row)
        starts = np.concatenate([[0], np.cumsum(grp.subhalo_lengths)])
        for lo, hi in zip(starts[:-1], starts[1:]):
            srow = catalog.subhalo_properties(grp.pos[lo:hi], grp.vel[lo:hi], m, eps)
            srow["SubhaloPos"] = _wrap(srow["SubhaloPos"] + centres[g], box)
            srow["SubhaloCM"] = _wrap(srow["SubhaloCM"] + centres[g], box)
            srow["SubhaloGrNr"] = g
            srow["SubhaloParent"] = 0
            srow["_first"] = int(lo)
            subs.append(srow)
        fields = catalog.subfind_fields(grp.pos, grp.vel, m)
        parts.append(dict(Coordinates=_wrap(grp.pos + centres[g], box),
                          Velocities=grp.vel.astype(np.float32),
                          Potential=grp.potential.astype(np.float32),
                          **{k: v.astype(np.float32) for k, v in fields.items()}))

    n_in_groups = int(sum(len(p["Potential"]) for p in parts))
    n_field = int(round(FIELD_FRACTION * n_in_groups)) if n_total is None else n_total - n_in_groups
    if n_field < 0:
        raise ValueError(f"preset {preset!r}: groups hold {n_in_groups} particles, more than {n_total}")
    parts.append(_field(_rng(seed, 4), n_field, centres, extents, box, m, progress))

    # one field at a time, dropping the pieces as they are joined: peak memory ~ one extra field
    particles = {k: np.concatenate([p.pop(k) for p in parts]) for k in list(parts[0])}
    n = len(particles["Potential"])
    particles["ParticleIDs"] = (_rng(seed, 5).permutation(n) + 1).astype(np.uint64)
    group_offsets = np.concatenate([[0], np.cumsum([r["GroupLen"] for r in groups])])
    for s in subs:
        s["SubhaloIDMostbound"] = particles["ParticleIDs"][group_offsets[s["SubhaloGrNr"]] + s.pop("_first")]
    header = dict(BoxSize=box, HubbleParam=sim["hubble_param"], Omega0=sim["omega0"],
                  OmegaBaryon=sim["omega_baryon"], OmegaLambda=sim["omega_lambda"], Redshift=0.0,
                  Time=1.0, MassTable=np.array([0.0, m, 0.0, 0.0, 0.0, 0.0]))
    return header, particles, _table(groups, "Group"), _table(subs, "Subhalo")


def _field(rng, n, centres, extents, box, m, progress) -> dict:
    """Field particles: uniform outside groups, potential from a periodic mesh (mean removed)."""
    pos = field_particles(rng, n, centres, extents, box)
    vel = (FIELD_VELOCITY_SIGMA * rng.standard_normal((n, 3))).astype(np.float32)
    if n == 0:
        empty = np.zeros(0, np.float32)
        return dict(Coordinates=pos, Velocities=vel, Potential=empty, SubfindHsml=empty,
                    SubfindDensity=empty, SubfindDMDensity=empty, SubfindVelDisp=empty)
    if progress:
        tqdm.write(f"field: {n} particles (mesh potential, Subfind neighbour fields)")
    n_mesh = int(np.clip(2 ** np.round(np.log2(max(n, 1) ** (1 / 3))), 16, 256))
    potential = gravity.mesh_potential(pos, m, box, n_mesh).astype(np.float32)
    fields = catalog.subfind_fields_periodic(pos, vel, m, box)
    return dict(Coordinates=pos, Velocities=vel, Potential=potential,
                **{k: v.astype(np.float32) for k, v in fields.items()})


def _table(rows: list[dict], kind: str) -> dict:
    """Column arrays from per-object rows, with the TNG per-type (N,6) columns added."""
    if not rows:
        return {}
    table = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    for name in (f"{kind}Len", f"{kind}Mass"):
        per_type = np.zeros((len(rows), 6), dtype=table[name].dtype)
        per_type[:, 1] = table[name]
        table[f"{name}Type"] = per_type
    return table
