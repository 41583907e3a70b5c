"""Matter falling into a host along filaments: the edge of a real FoF group is not a sphere but
a few streams of particles (and small haloes) reaching out to ~2 R200 along the cosmic web,
mostly along the host's major axis, moving inwards.

Lengths ckpc/h, velocities km/s, in the group's frame (host centre at the origin).
"""
from dataclasses import dataclass

import numpy as np

from deephalo_core.synth.profiles import random_directions

FILAMENTS_PER_HOST = (1, 3)  # inclusive range
LENGTH = (1.4, 2.4)  # filaments end this many R200 from the centre
START = 1.0  # and start at the host's edge (R200), where they merge into it
WIDTH = (0.06, 0.10)  # Gaussian thickness at the start and growth per R200 outwards, in R200
INFALL_SPEED = (0.3, 0.8)  # mean inward speed along the filament, in V200
DISPERSION = 0.25  # per-component velocity dispersion about that flow, in V200
AXIS_SCATTER = 0.35  # radians: how far the first filament strays from the major axis


@dataclass(frozen=True)
class Filament:
    direction: np.ndarray  # unit vector from the host centre outwards
    length: float  # ckpc/h, where it ends
    speed: float  # km/s inwards


def major_axis(stretch: np.ndarray) -> np.ndarray:
    """The long axis of a (symmetric) triaxial stretch map."""
    values, vectors = np.linalg.eigh(stretch)
    return vectors[:, int(np.argmax(values))]


def scatter_direction(rng: np.random.Generator, axis: np.ndarray, angle: float) -> np.ndarray:
    """`axis` tilted by a random amount of order `angle` radians."""
    v = axis + angle * rng.standard_normal(3)
    return v / np.linalg.norm(v)


def plan_filaments(rng: np.random.Generator, stretch: np.ndarray, r200: float,
                   v200: float) -> list[Filament]:
    """One to three filaments: the first near the major axis (either end), the others anywhere."""
    n = int(rng.integers(FILAMENTS_PER_HOST[0], FILAMENTS_PER_HOST[1] + 1))
    axis = major_axis(stretch) * rng.choice([-1.0, 1.0])
    directions = [scatter_direction(rng, axis, AXIS_SCATTER)]
    directions += list(random_directions(rng, n - 1))
    return [Filament(d, float(rng.uniform(*LENGTH) * r200), float(rng.uniform(*INFALL_SPEED) * v200))
            for d in directions]


def filament_particles(rng: np.random.Generator, filament: Filament, n: int, r200: float,
                       v200: float) -> tuple[np.ndarray, np.ndarray]:
    """(positions, velocities) of n particles along one filament, denser towards the host
    (dN/ds ~ 1/s along it, thickening outwards: the density falls as ~s^-3, like the host's
    edge it joins) and flowing in."""
    lo, hi = START * r200, filament.length
    s = lo * (hi / lo) ** rng.random(n)  # uniform in log s
    width = r200 * (WIDTH[0] + WIDTH[1] * s / r200)
    across = rng.standard_normal((n, 3))
    across -= (across @ filament.direction)[:, None] * filament.direction  # perpendicular only
    pos = s[:, None] * filament.direction + width[:, None] * across
    vel = -filament.speed * filament.direction + DISPERSION * v200 * rng.standard_normal((n, 3))
    return pos, vel


def split(rng: np.random.Generator, n: int, parts: int) -> np.ndarray:
    """n particles shared among `parts` at random proportions (a Dirichlet draw)."""
    shares = rng.dirichlet(np.ones(parts))
    counts = np.floor(shares * n).astype(np.int64)
    counts[: n - counts.sum()] += 1
    return counts
