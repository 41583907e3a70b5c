"""Tidal streams: the particles a satellite has lost to its host, spread ahead of it and behind
it along its orbit. Subfind gives them to the primary (bound to the host, not to the satellite),
so a model must learn that a thin arc of particles moving together is not a subhalo.

Lengths ckpc/h, velocities km/s, in the group's frame (host centre at the origin).
"""
import numpy as np
from scipy.spatial.transform import Rotation

from deephalo_core.synth.profiles import random_directions

ARC = (0.3, 1.2)  # radians of orbit the stream covers on each side of the satellite
RADIAL_SCATTER = 0.05  # relative spread of the stream's distance from the host centre


def orbit_axis(rng: np.random.Generator, position: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Unit normal of the orbital plane (any perpendicular to `position` for a radial orbit)."""
    axis = np.cross(position, velocity)
    norm = np.linalg.norm(axis)
    if norm < 1e-9 * max(np.linalg.norm(position) * np.linalg.norm(velocity), 1e-30):
        axis = np.cross(position, random_directions(rng, 1)[0])
        norm = np.linalg.norm(axis)
    return axis / norm


def stream_particles(rng: np.random.Generator, n: int, position: np.ndarray, velocity: np.ndarray,
                     tidal_radius: float, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(positions, velocities) of n stripped particles: the satellite's position and velocity
    rotated along its orbit by angles from just outside its tidal radius to the end of the arc,
    half leading and half trailing, with the satellite's internal dispersion `sigma` and a
    thickness of its tidal radius."""
    d = float(np.linalg.norm(position))
    axis = orbit_axis(rng, position, velocity)
    start = min(tidal_radius / max(d, 1e-9), 0.5)
    arc = rng.uniform(*ARC)
    angle = rng.uniform(start, start + arc, n) * rng.choice([-1.0, 1.0], n)
    turn = Rotation.from_rotvec(angle[:, None] * axis)
    pos = turn.apply(position) * (1.0 + RADIAL_SCATTER * rng.standard_normal(n))[:, None]
    pos += tidal_radius * rng.standard_normal((n, 3))
    vel = turn.apply(velocity) + sigma * rng.standard_normal((n, 3))
    return pos, vel
