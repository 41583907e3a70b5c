"""Subfind-style iterative unbinding: keep the particles with negative energy in the object's own
frame (its own potential + kinetic energy relative to its bulk velocity), repeat until stable."""
import numpy as np

from deephalo_core.synth import gravity

MIN_SUBHALO_LEN = 20  # Subfind's smallest subhalo


def binding_energy(pos: np.ndarray, vel: np.ndarray, mass: float, softening: float,
                   exact: bool = False) -> np.ndarray:
    """Specific energy of each particle in the set's own frame: potential of the set itself plus
    0.5 |v - <v>|^2 ((km/s)^2). exact: direct O(N^2) sum even for large sets."""
    phi = (gravity.direct_potential if exact else gravity.potential)(pos, mass, softening)
    v = np.asarray(vel, dtype=np.float64)
    return phi + 0.5 * ((v - v.mean(axis=0)) ** 2).sum(axis=1)


def unbind(pos: np.ndarray, vel: np.ndarray, mass: float, softening: float,
           min_len: int = MIN_SUBHALO_LEN, max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the bound particles, their binding energies), most bound first.

    Each pass removes every particle with E >= 0 and recomputes the potential of the remaining
    set. Fewer than `min_len` survivors means the object dissolves: both arrays come back empty.
    For large sets the potential is updated by subtracting the removed particles' contribution
    (a small tree or direct sum over them) instead of a new tree over everything, so every pass
    uses the potential of the current set up to the tree's accuracy.
    """
    keep = np.arange(len(pos))
    phi = gravity.potential(pos, mass, softening)
    for _ in range(max_iter):
        if keep.size < min_len:
            break
        v_bulk = vel[keep].mean(axis=0)
        energy = phi + 0.5 * ((vel[keep] - v_bulk) ** 2).sum(axis=1)
        unbound = energy >= 0.0
        if not unbound.any():
            order = np.argsort(energy, kind="stable")
            return keep[order], energy[order]
        removed, keep, phi = keep[unbound], keep[~unbound], phi[~unbound]
        if keep.size == 0:
            break
        if keep.size <= gravity.DIRECT_MAX or removed.size > keep.size // 4:
            phi = gravity.potential(pos[keep], mass, softening)
        else:  # drop the removed particles' share: cheaper than a new tree over everything
            phi = phi - gravity.potential_at(pos[keep], pos[removed], mass, softening)
    return np.empty(0, dtype=np.int64), np.empty(0)
