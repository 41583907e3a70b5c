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

from deephalo_core.synth import binding, catalog, gravity, infall, profiles, satellites, streams
from deephalo_core.units import G, TNG50_4_DARK

# Group population (particle counts) and what a group is made of; calibrated on real N-body FoF
# groups with SUBFIND (`python -m deephalo_core realism`), see satellites.py and infall.py.
DEFAULT_HOST_RANGE = (1_000, 150_000)
HOST_SLOPE = 1.9  # dN/dN_p ~ N_p^-1.9 for FoF group sizes
HOST_TRUNCATION = (1.1, 1.4)  # the host's NFW ends this many R200 out; filaments reach further
HOST_BETA = 0.4  # radial velocity anisotropy of hosts far out, 1 - sigma_t^2 / sigma_r^2; it
# grows as r / (r + r_s) from isotropic in the centre (0.3 on average over 0.3-1 R200, as measured)
HOST_OUTER = 10.0  # R200: hosts' Jeans pressure as if the NFW went on this far (hot outskirts)
HOST_ESCAPE_CAP = 0.9  # host particles move at most this fraction of the local escape speed
HOST_LOPSIDED = (0.0, 0.25)  # R200: the host's edge shifts by up to this along its main
# filament (in proportion to radius, the centre stays), as after accretion from one side
FILAMENT_FRACTION = (0.015, 0.05)  # of the group's particles, in infall filaments
STREAM_PROBABILITY = 0.5  # a satellite inside R200 trails a tidal stream this often
STREAM_SIZE = (0.3, 1.0)  # stream particles per particle the satellite kept
STREAM_MAX_FRACTION = 0.08  # all streams together, of the group's particles
DIFFUSE_MAX = 0.06  # loosely bound infalling material, a share of the group drawn as
# DIFFUSE_MAX x U^4 (mean 1.2%, median 0.4%): most groups have almost none, a few several per
# cent, as real ones at z = 0
MIN_HOST_FRACTION = 0.5  # the primary's own particles never fall below this share
GROUP_VELOCITY_SIGMA = 200.0  # km/s per component, bulk peculiar velocities of groups
FIELD_VELOCITY_SIGMA = 150.0
FIELD_FRACTION = 0.1  # field particles per group particle in the default snapshot

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
    """How a group's particles split into host, satellites (with their streams), filaments and
    diffuse material; the host's truncated NFW profile and triaxial shape; how far it reaches."""

    n_particles: int
    n_host: int
    n_diffuse: int
    satellites: list  # satellites.Satellite, largest first
    stream_lengths: np.ndarray  # particles each satellite has lost to a stream (0: none)
    filaments: list  # infall.Filament
    filament_lengths: np.ndarray
    profile: profiles.TruncatedNFW
    r200: float
    v200: float
    stretch: np.ndarray
    lopsided: np.ndarray  # (3,) how far the host's edge is pushed off its centre (ckpc/h)
    extent: float  # no particle lies further than this from the centre (for placement)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def _wrap(x: np.ndarray, box: float) -> np.ndarray:
    """Into [0, box): np.mod can round a tiny negative up to box itself."""
    x = np.mod(x, box)
    x[x >= box] = 0.0
    return x


def plan_host(rng: np.random.Generator, n_particles: int, particle_mass: float,
              softening: float) -> HostPlan:
    """Split a group of n_particles into host, satellites, streams, filaments and diffuse
    material; size the host from most of the group's mass (what R200 measures), then place the
    satellites and filaments in units of that R200."""
    n_diffuse = int(round(DIFFUSE_MAX * rng.random() ** 4 * n_particles))
    n_filaments_total = int(round(rng.uniform(*FILAMENT_FRACTION) * n_particles))
    f_trunc = rng.uniform(*HOST_TRUNCATION)
    scatter = rng.standard_normal()
    stretch = profiles.triaxial_stretch(rng)
    mass = 0.8 * n_particles * particle_mass  # the host plus what lies inside its R200
    m200, c = mass, 10.0
    for _ in range(4):  # M200 and c depend on each other through the truncated mass
        c = float(profiles.concentration_mean(m200) * 10 ** (profiles.C_SCATTER_DEX * scatter))
        m200 = mass * profiles.nfw_mu(c) / profiles.nfw_mu(f_trunc * c)
    r200 = profiles.r200_from_m200(m200)
    v200 = float(np.sqrt(G * m200 / r200))
    profile = profiles.TruncatedNFW(mass=mass, r_s=r200 / c, r_t=f_trunc * r200)
    fils = infall.plan_filaments(rng, stretch, r200, v200)
    sats = satellites.plan_satellites(rng, n_particles, profile, r200, stretch, fils,
                                      particle_mass, softening)
    stream_lengths = np.array([int(round(rng.uniform(*STREAM_SIZE) * s.n_particles))
                               if not s.infalling and rng.random() < STREAM_PROBABILITY else 0
                               for s in sats], dtype=np.int64)
    stream_lengths[np.cumsum(stream_lengths) > STREAM_MAX_FRACTION * n_particles] = 0
    n_host = n_particles - n_diffuse - n_filaments_total - int(stream_lengths.sum()) \
        - sum(s.n_particles for s in sats)
    if n_host < MIN_HOST_FRACTION * n_particles:  # rare: trim the extras, never the satellites
        extras = n_diffuse + n_filaments_total + int(stream_lengths.sum())
        keep = max(0.0, 1.0 - (MIN_HOST_FRACTION * n_particles - n_host) / max(extras, 1))
        n_diffuse, n_filaments_total = int(n_diffuse * keep), int(n_filaments_total * keep)
        stream_lengths = (stream_lengths * keep).astype(np.int64)
        n_host = n_particles - n_diffuse - n_filaments_total - int(stream_lengths.sum()) \
            - sum(s.n_particles for s in sats)
    # the profile holds the host's own particles; its shape and R200 stay those of the group
    profile = profiles.TruncatedNFW(mass=n_host * particle_mass, r_s=profile.r_s, r_t=profile.r_t)
    reach = [profile.r_t * np.linalg.norm(stretch, 2)]
    reach += [f.length + 3.0 * r200 * (infall.WIDTH[0] + infall.WIDTH[1] * f.length / r200) for f in fils]
    reach += [np.linalg.norm(s.offset) + s.profile.r_t for s in sats]
    lopsided = rng.uniform(*HOST_LOPSIDED) * r200 * fils[0].direction
    reach[0] += float(np.linalg.norm(lopsided))
    return HostPlan(n_particles, n_host, n_diffuse, sats, stream_lengths, fils,
                    infall.split(rng, n_filaments_total, len(fils)), profile, r200, v200, stretch,
                    lopsided, float(max(reach)))


def make_group(rng: np.random.Generator, plan: HostPlan, particle_mass: float,
               softening: float) -> Group:
    """Particles of one group, labelled by unbinding and ordered as Subfind orders them."""
    host, stretch = plan.profile, plan.stretch
    pos_host, r_host = host.sample_positions(rng, plan.n_host)
    pos_host = pos_host @ stretch.T
    # radial anisotropy about the stretched (true) radial direction, with the spherical
    # profile's dispersion at the unstretched radius
    radial = pos_host / np.maximum(np.linalg.norm(pos_host, axis=1), 1e-12)[:, None]
    pos_host += (r_host / host.r_t)[:, None] * plan.lopsided
    vel_host = host.sample_velocities(rng, r_host, radial, beta=HOST_BETA,
                                      outer=HOST_OUTER * plan.r200, beta_radius=host.r_s)
    pieces_pos, pieces_vel = [pos_host], [vel_host]

    sat_bulk = []
    for sat in plan.satellites:
        p, r = sat.profile.sample_positions(rng, sat.n_particles)
        bulk = satellites.bulk_velocity(rng, sat, host, plan.v200, HOST_BETA, HOST_OUTER * plan.r200)
        pieces_pos.append(sat.offset + p)
        pieces_vel.append(bulk + sat.profile.sample_velocities(rng, r))
        sat_bulk.append(bulk)
    # what the satellites lost, along their orbits, and what falls in along the filaments: both
    # are the host's (or fuzz) for Subfind
    for sat, bulk, n_s in zip(plan.satellites, sat_bulk, plan.stream_lengths):
        if n_s:
            sigma = float(sat.profile.dispersion(np.array([sat.profile.r_s]))[0])
            p, v = streams.stream_particles(rng, int(n_s), sat.offset, bulk, sat.profile.r_t, sigma)
            pieces_pos.append(p)
            pieces_vel.append(v)
    for fil, n_f in zip(plan.filaments, plan.filament_lengths):
        p, v = infall.filament_particles(rng, fil, int(n_f), plan.r200, plan.v200)
        pieces_pos.append(p)
        pieces_vel.append(v)

    # diffuse infalling material near the host's edge, at 0.8-1.6 times the local escape speed:
    # most of it is unbound and becomes the group's fuzz
    r_diff = host.r_t * rng.uniform(0.75, 1.0, plan.n_diffuse)
    dirs = profiles.random_directions(rng, plan.n_diffuse)
    pieces_pos.append((r_diff[:, None] * dirs) @ stretch.T)
    pos = np.concatenate(pieces_pos)
    potential = gravity.potential(pos, particle_mass, softening)
    heading = -0.3 * dirs + profiles.random_directions(rng, plan.n_diffuse)  # in and out
    heading /= np.maximum(np.linalg.norm(heading, axis=1, keepdims=True), 1e-12)
    escape = np.sqrt(2.0 * np.abs(potential[len(pos) - plan.n_diffuse:]))
    pieces_vel.append(heading * (escape * rng.uniform(0.8, 1.6, plan.n_diffuse))[:, None])
    vel = np.concatenate(pieces_vel)
    # an equilibrium halo has no particle above its escape speed (a Gaussian does): cap the host's
    # speeds, so its fuzz comes from infall, as in real groups, not from a velocity tail
    escape_host = np.sqrt(2.0 * np.abs(potential[:plan.n_host]))
    speed = np.linalg.norm(vel[:plan.n_host], axis=1)
    vel[:plan.n_host] *= np.minimum(1.0, HOST_ESCAPE_CAP * escape_host / np.maximum(speed, 1e-12))[:, None]
    vel += GROUP_VELOCITY_SIGMA * rng.standard_normal(3)

    # Subfind-style labels: satellites keep what is bound to them in their own frame
    bounds = np.cumsum([plan.n_host, *(s.n_particles for s in plan.satellites)])
    satellites_kept, leftovers = [], [np.arange(plan.n_host), np.arange(bounds[-1], len(pos))]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        members = np.arange(lo, hi)
        kept, _ = binding.unbind(pos[members], vel[members], particle_mass, softening)
        satellites_kept.append(members[kept])
        leftovers.append(np.setdiff1d(members, members[kept], assume_unique=True))
    candidates = np.sort(np.concatenate(leftovers))
    kept, _ = binding.unbind(pos[candidates], vel[candidates], particle_mass, softening)
    primary = candidates[kept]
    fuzz = np.setdiff1d(candidates, primary, assume_unique=True)
    fuzz = fuzz[np.argsort(potential[fuzz], kind="stable")]
    satellites_kept = [s for s in satellites_kept if len(s)]
    satellites_kept.sort(key=len, reverse=True)  # stable: equal lengths keep generation order
    order = np.concatenate([primary, *satellites_kept, fuzz]).astype(np.int64)
    # a primary that dissolved leaves the largest satellite as subhalo 0, as in Subfind
    lengths = ([len(primary)] if len(primary) else []) + [len(s) for s in satellites_kept]
    return Group(pos[order], vel[order], potential[order], lengths)


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
    plans = [plan_host(_rng(seed, 1, g), int(n), m, eps) for g, n in enumerate(sizes)]
    extents = np.array([p.extent for p in plans])
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
