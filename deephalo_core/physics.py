"""Halo quantities measured from particles: spherical overdensity mass and radius, Vmax."""
import numpy as np

from deephalo_core.units import G, RHO_CRIT0


def spherical_overdensity(radii: np.ndarray, particle_mass: float, delta: float = 200.0,
                          rho_ref: float = RHO_CRIT0) -> tuple[float, float]:
    """(M_delta, R_delta): the largest radius inside which the mean density is delta * rho_ref.

    radii are particle distances from the centre (ckpc/h); masses in 1e10 Msun/h. Returns (0, 0)
    when even the innermost particles fall short of the threshold.
    """
    r = np.sort(np.asarray(radii, dtype=np.float64))
    if r.size == 0:
        return 0.0, 0.0
    enclosed = particle_mass * np.arange(1, r.size + 1)
    volume = 4.0 / 3.0 * np.pi * np.maximum(r, 1e-12) ** 3
    above = np.nonzero(enclosed / volume >= delta * rho_ref)[0]
    if above.size == 0:
        return 0.0, 0.0
    i = above[-1]
    return float(enclosed[i]), float(r[i])


def circular_velocity_peak(radii: np.ndarray, particle_mass: float,
                           min_radius: float = 0.0) -> tuple[float, float]:
    """(Vmax [km/s], radius of Vmax [ckpc/h]) from the enclosed-mass curve sqrt(G M(<r) / r).

    Particles inside `min_radius` (e.g. the softening length, where the curve is not resolved, and
    the centre particle itself at r = 0) count in M(<r) but cannot be the peak."""
    r = np.sort(np.asarray(radii, dtype=np.float64))
    if r.size == 0:
        return 0.0, 0.0
    v = np.sqrt(G * particle_mass * np.arange(1, r.size + 1) / np.maximum(r, 1e-12))
    v[r < max(min_radius, 1e-12)] = 0.0
    i = int(np.argmax(v))
    return float(v[i]), float(r[i])


def virial_velocity(m200: float, r200: float) -> float:
    """V200 = sqrt(G M200 / R200) in km/s (M in 1e10 Msun/h, R in ckpc/h)."""
    return float(np.sqrt(G * m200 / r200)) if r200 > 0 else 0.0
