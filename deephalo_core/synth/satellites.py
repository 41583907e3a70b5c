"""Satellite subhaloes of a synthetic host: how many, how massive, where and how they move.

Calibrated on real N-body FoF groups with SUBFIND (GADGET-4, TNG50-4-Dark particle mass, z = 0-1;
see `python -m deephalo_core realism`):
- counts: one universal cumulative mass function per host, N(> m / M_host) = A (m / 0.01 M_host)^-0.9
  with A ~ 1.4 and host-to-host scatter, so the number above 20 particles grows about linearly
  with host mass (a 2,000-particle host has about one satellite, a 20,000-particle host about ten);
  about one host in seven has a satellite above a tenth of its primary and none
  one above half of it (real: one in five, none);
- distances: half of the satellites lie beyond R200, in the FoF group's outskirts, many of them
  falling in along filaments (quartiles of d / R200 about 0.65, 1.0, 1.4);
- each is an NFW halo cut at its Jacobi radius; inside R200 it moves with the host's dispersion,
  outside it falls in.

Lengths ckpc/h, masses 1e10 Msun/h, velocities km/s, in the group's frame.
"""
from dataclasses import dataclass

import numpy as np

from deephalo_core.synth import binding, infall, profiles

ABUNDANCE = 1.4  # satellites per host above 1% of the group's particles
ABUNDANCE_SCATTER_DEX = 0.25  # host-to-host scatter of that number (log-normal)
SLOPE = 1.9  # dN/dm ~ m^-1.9, so N(>m) ~ m^-0.9
MAX_FRACTION = 0.3  # a satellite holds at most 30% of the group (about half the primary:
# real groups have such mergers of comparable clumps, but none above half the primary)
MASS_BUDGET = 0.4  # all satellites together hold at most this share of the group
DISTANCE_MEDIAN = 1.0  # d / R200 of satellites: log-normal around this median
DISTANCE_SIGMA_LN = 0.5
DISTANCE_RANGE = (0.12, 2.2)  # R200
ALONG_FILAMENT = 0.7  # share of satellites beyond R200 that come in along a filament
FILAMENT_SCATTER = 0.12  # radians about the filament's axis
INFALL_SPEED = (0.3, 1.0)  # inward speed of satellites beyond R200, in V200
INFALL_DISPERSION = 0.3  # per-component scatter about it, in V200


@dataclass(frozen=True)
class Satellite:
    n_particles: int
    offset: np.ndarray  # (3,) centre relative to the host centre
    profile: profiles.TruncatedNFW
    infalling: bool  # beyond R200: moves inwards rather than with the host's dispersion


def satellite_lengths(rng: np.random.Generator, n_particles: int) -> np.ndarray:
    """Particle counts from the universal N(> m / M) on [20 particles, MAX_FRACTION of the group], largest
    first; the smallest are kept first when they would exceed the mass budget."""
    x_min = binding.MIN_SUBHALO_LEN / n_particles
    if x_min >= MAX_FRACTION:
        return np.zeros(0, np.int64)
    a = SLOPE - 1.0
    amplitude = ABUNDANCE * 10.0 ** (ABUNDANCE_SCATTER_DEX * rng.standard_normal())
    expected = amplitude * ((x_min / 0.01) ** -a - (MAX_FRACTION / 0.01) ** -a)
    x = profiles.power_law_sample(rng, SLOPE, x_min, MAX_FRACTION, rng.poisson(expected))
    lengths = np.sort(np.maximum(np.round(x * n_particles), binding.MIN_SUBHALO_LEN).astype(np.int64))
    return lengths[np.cumsum(lengths) <= MASS_BUDGET * n_particles][::-1]


def satellite_distances(rng: np.random.Generator, n: int, r200: float) -> np.ndarray:
    """Distances from the host centre (ckpc/h): log-normal in d / R200, within DISTANCE_RANGE."""
    x = DISTANCE_MEDIAN * np.exp(DISTANCE_SIGMA_LN * rng.standard_normal(n))
    return np.clip(x, *DISTANCE_RANGE) * r200


def tidal_profile(rng: np.random.Generator, n_particles: int, distance: float,
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


def plan_satellites(rng: np.random.Generator, n_particles: int, host: profiles.TruncatedNFW,
                    r200: float, stretch: np.ndarray, filaments: list, particle_mass: float,
                    softening: float) -> list[Satellite]:
    """The satellites of one group: sizes, places (inside R200 following the host's shape,
    beyond it mostly along the filaments) and tidal profiles."""
    lengths = satellite_lengths(rng, n_particles)
    distances = satellite_distances(rng, len(lengths), r200)
    directions = profiles.random_directions(rng, len(lengths)) @ stretch.T
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    out = []
    for n_j, d_j, u in zip(lengths, distances, directions):
        infalling = d_j > r200
        if infalling and filaments and rng.random() < ALONG_FILAMENT:
            u = infall.scatter_direction(rng, filaments[rng.integers(len(filaments))].direction,
                                         FILAMENT_SCATTER)
        profile = tidal_profile(rng, int(n_j), float(d_j), host, particle_mass, softening)
        out.append(Satellite(int(n_j), d_j * u, profile, bool(infalling)))
    return out


def bulk_velocity(rng: np.random.Generator, satellite: Satellite, host: profiles.TruncatedNFW,
                  v200: float, host_beta: float, host_outer: float) -> np.ndarray:
    """Inside R200: a draw from the host's dispersion at its radius. Beyond: falling in."""
    d = float(np.linalg.norm(satellite.offset))
    if satellite.infalling:
        inward = -satellite.offset / max(d, 1e-9) * rng.uniform(*INFALL_SPEED) * v200
        return inward + INFALL_DISPERSION * v200 * rng.standard_normal(3)
    return host.sample_velocities(rng, np.array([d]), satellite.offset[None] / max(d, 1e-9),
                                  beta=host_beta, outer=host_outer, beta_radius=host.r_s)[0]
