"""Halo profiles for the synthetic snapshot: truncated NFW sampling, the mass-concentration
relation, Jeans velocity dispersion (isotropic or radially anisotropic), power-law mass functions
and triaxial shapes.

Lengths ckpc/h, masses 1e10 Msun/h, velocities km/s (TNG code units, z = 0).
"""
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from deephalo_core.units import G, RHO_CRIT0

_GRID_POINTS = 400
_X_MIN = 1e-5  # innermost tabulated radius, in scale radii


def nfw_mu(x):
    """Dimensionless NFW enclosed mass ln(1+x) - x/(1+x)."""
    x = np.asarray(x, dtype=np.float64)
    return np.log1p(x) - x / (1.0 + x)


def r200_from_m200(m200: float, delta: float = 200.0) -> float:
    """Radius inside which the mean density is delta x critical (ckpc/h)."""
    return float((3.0 * m200 / (4.0 * np.pi * delta * RHO_CRIT0)) ** (1.0 / 3.0))


def concentration_mean(m200):
    """Median NFW c200 at z = 0: log10 c = 0.905 - 0.101 log10(M200 / 1e12 Msun/h), a power-law
    fit to Planck-cosmology N-body haloes (m200 in 1e10 Msun/h)."""
    return 10.0 ** (0.905 - 0.101 * np.log10(np.asarray(m200, dtype=np.float64) * 1e10 / 1e12))


C_SCATTER_DEX = 0.11  # log-normal scatter of c at fixed mass


def concentration(m200, rng: np.random.Generator):
    """c200 drawn around the median relation with 0.11 dex log-normal scatter."""
    c = concentration_mean(m200)
    return c * 10.0 ** (C_SCATTER_DEX * rng.standard_normal(np.shape(c)))


def power_law_sample(rng: np.random.Generator, slope: float, lo: float, hi: float, size: int,
                     stratified: bool = False) -> np.ndarray:
    """Draws from dN/dx ~ x^-slope on [lo, hi] (slope != 1) by inverting the CDF.

    stratified: one draw per equal-probability stratum, so a small sample still spans the range."""
    if stratified:
        u = (np.arange(size) + rng.random(size)) / size
    else:
        u = rng.random(size)
    a = 1.0 - slope
    return (lo ** a + u * (hi ** a - lo ** a)) ** (1.0 / a)


@dataclass(frozen=True)
class TruncatedNFW:
    """NFW profile of `mass` (everything inside the truncation) with scale radius r_s, cut at r_t."""

    mass: float
    r_s: float
    r_t: float

    @property
    def x_t(self) -> float:
        return self.r_t / self.r_s

    def enclosed_mass(self, r):
        x = np.minimum(np.asarray(r, dtype=np.float64), self.r_t) / self.r_s
        return self.mass * nfw_mu(x) / nfw_mu(self.x_t)

    def sample_radii(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Radii of n particles drawn from the truncated profile (inverse CDF on a log grid)."""
        x = np.concatenate([[0.0], np.geomspace(_X_MIN, self.x_t, _GRID_POINTS)])
        cdf = nfw_mu(x) / nfw_mu(self.x_t)
        return np.interp(rng.random(n), cdf, x) * self.r_s

    def sample_positions(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(positions (n,3) relative to the centre, radii (n,)), isotropic."""
        r = self.sample_radii(rng, n)
        return r[:, None] * random_directions(rng, n), r

    def dispersion(self, r, beta: float = 0.0, outer: float | None = None,
                   beta_radius: float = 0.0) -> np.ndarray:
        """Radial velocity dispersion sigma_r(r) [km/s] from the Jeans equation with anisotropy
        beta(r) = 1 - sigma_t^2 / sigma_r^2 = beta r / (r + beta_radius): isotropic in the
        centre, `beta` far out (beta_radius 0: constant; beta 0: isotropic, the 1-D dispersion).
        Its integrating factor is (r + beta_radius)^(2 beta), so
        rho sigma_r^2 (r + r_a)^(2 beta) = int_r^outer rho G M(<r') (r' + r_a)^(2 beta) / r'^2 dr'.

        outer None: zero pressure at the truncation radius. outer > r_t: the profile is taken
        to go on as an untruncated NFW out to `outer`, so the edge keeps the pressure of the
        surroundings a real halo sits in (its outskirts do not cool to zero)."""
        x_out = self.x_t if outer is None else max(outer / self.r_s, self.x_t)
        x_a = beta_radius / self.r_s
        y = np.geomspace(_X_MIN, x_out, _GRID_POINTS)
        integrand = nfw_mu(y) * (y + x_a) ** (2.0 * beta) / (y ** 3 * (1.0 + y) ** 2)
        # cumulative integral from y to x_out (trapezoid in log y)
        steps = 0.5 * (integrand[1:] * y[1:] + integrand[:-1] * y[:-1]) * np.diff(np.log(y))
        tail = np.concatenate([np.cumsum(steps[::-1])[::-1], [0.0]])
        x = np.clip(np.asarray(r, dtype=np.float64) / self.r_s, _X_MIN, x_out)
        sigma2 = (G * self.mass / (self.r_s * nfw_mu(self.x_t))) * x * (x + x_a) ** (-2.0 * beta) \
            * (1.0 + x) ** 2 * np.interp(x, y, tail)
        return np.sqrt(np.maximum(sigma2, 0.0))

    def sample_velocities(self, rng: np.random.Generator, r: np.ndarray, directions=None,
                          beta: float = 0.0, outer: float | None = None,
                          beta_radius: float = 0.0) -> np.ndarray:
        """Gaussian velocities (n,3) with the Jeans dispersion at each radius: isotropic, or
        with sigma_r along `directions` (unit vectors from the centre) and
        sqrt(1 - beta(r)) sigma_r across them when beta != 0 (see `dispersion`)."""
        r = np.asarray(r, dtype=np.float64)
        v = self.dispersion(r, beta, outer, beta_radius)[:, None] * rng.standard_normal((len(r), 3))
        if beta == 0.0:
            return v
        u = np.asarray(directions, dtype=np.float64)
        radial = (v * u).sum(axis=1, keepdims=True) * u
        beta_r = beta * r / np.maximum(r + beta_radius, 1e-300)
        return radial + np.sqrt(1.0 - beta_r)[:, None] * (v - radial)


def random_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)


def triaxial_stretch(rng: np.random.Generator, q_range=(0.6, 0.95),
                     s_over_q=(0.6, 0.95)) -> np.ndarray:
    """A volume-preserving 3x3 map: random orientation, axis ratios b/a = q in q_range and
    c/a = q x U(s_over_q). The defaults give, measured within R200 (where the sphere rounds
    them), the axis ratios of real N-body hosts (b/a ~ 0.85, c/a ~ 0.7)."""
    q = rng.uniform(*q_range)
    s = q * rng.uniform(*s_over_q)
    axes = np.array([1.0, q, s]) / (q * s) ** (1.0 / 3.0)
    rotation = Rotation.random(random_state=rng).as_matrix()
    return rotation @ np.diag(axes) @ rotation.T
