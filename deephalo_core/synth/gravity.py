"""Softened gravitational potential of a set of equal-mass particles: exact direct sum and a
Barnes-Hut octree (monopole, geometric opening angle), both with the cubic-spline softening kernel
of GADGET/AREPO.

Written with plain numba functions (cached on disk) rather than a tree class, so a fresh process
pays no multi-second compile per run. Units are the caller's: with G = 43007.1, lengths in ckpc/h
and masses in 1e10 Msun/h the potential comes out in (km/s)^2, as TNG's `Potential` (a = 1).
The self-interaction is left out (sum over j != i).
"""
import numba
import numpy as np

from deephalo_core.units import G

SPLINE_PER_PLUMMER = 2.8  # spline support radius h = 2.8 x Plummer-equivalent softening (GADGET)
DIRECT_MAX = 400  # up to this many particles the exact O(N^2) sum is as cheap as a tree
_MORTON_BITS = 21  # bits per axis in a 63-bit Morton key


@numba.njit(cache=True, fastmath=False, inline="always")
def _kernel(r, h):
    """-1/r softened by a cubic spline of support radius h (GADGET's potential kernel)."""
    if r >= h:
        return -1.0 / r
    u = r / h
    if u < 0.5:
        return (-2.8 + u * u * (16.0 / 3.0 + u * u * (6.4 * u - 9.6))) / h
    return (-3.2 + 1.0 / (15.0 * u) + u * u * (32.0 / 3.0 + u * (-16.0 + u * (9.6 - 32.0 / 15.0 * u)))) / h


def spline_kernel(r: np.ndarray, h: float) -> np.ndarray:
    """Vectorised softened -1/r (for tests and small numpy sums)."""
    r = np.asarray(r, dtype=np.float64)
    u = r / h
    inner = (-2.8 + u * u * (16.0 / 3.0 + u * u * (6.4 * u - 9.6))) / h
    with np.errstate(divide="ignore"):
        middle = (-3.2 + 1.0 / (15.0 * u) + u * u * (32.0 / 3.0 + u * (-16.0 + u * (9.6 - 32.0 / 15.0 * u)))) / h
        outer = -1.0 / r
    return np.where(u >= 1.0, outer, np.where(u < 0.5, inner, middle))


@numba.njit(cache=True, parallel=True)
def _direct_targets(targets, sources, h, exclude_self):
    n = targets.shape[0]
    out = np.zeros(n)
    for i in numba.prange(n):
        acc = 0.0
        for j in range(sources.shape[0]):
            if exclude_self and i == j:
                continue
            dx = targets[i, 0] - sources[j, 0]
            dy = targets[i, 1] - sources[j, 1]
            dz = targets[i, 2] - sources[j, 2]
            acc += _kernel(np.sqrt(dx * dx + dy * dy + dz * dz), h)
        out[i] = acc
    return out


def direct_potential(pos: np.ndarray, mass: float, softening: float, g: float = G) -> np.ndarray:
    """Exact potential at each particle from all others: -G m sum_j K(|x_i - x_j|)."""
    pos = np.ascontiguousarray(pos, dtype=np.float64)
    return g * mass * _direct_targets(pos, pos, SPLINE_PER_PLUMMER * softening, True)


def potential_from(targets: np.ndarray, sources: np.ndarray, mass: float, softening: float,
                   g: float = G) -> np.ndarray:
    """Exact potential at `targets` from the (distinct) particles `sources`."""
    t = np.ascontiguousarray(targets, dtype=np.float64)
    s = np.ascontiguousarray(sources, dtype=np.float64)
    return g * mass * _direct_targets(t, s, SPLINE_PER_PLUMMER * softening, False)


def _morton_keys(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    lo = pos.min(axis=0)
    size = float((pos.max(axis=0) - lo).max()) * (1.0 + 1e-9) + 1e-9
    cells = ((pos - lo) / size * (1 << _MORTON_BITS)).astype(np.uint64)
    cells = np.minimum(cells, np.uint64((1 << _MORTON_BITS) - 1))
    keys = np.zeros(len(pos), dtype=np.uint64)
    for bit in range(_MORTON_BITS):
        for axis in range(3):
            keys |= ((cells[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + (2 - axis))
    return keys, lo, size


@numba.njit(cache=True)
def _build_tree(keys, leaf_size):
    """Octree over Morton-sorted keys: per node its particle range, depth and children block."""
    cap = max(64, 2 * keys.shape[0] // leaf_size + 64)
    start = np.empty(cap, np.int64)
    end = np.empty(cap, np.int64)
    level = np.empty(cap, np.int64)
    first_child = np.full(cap, -1, np.int64)
    n_child = np.zeros(cap, np.int64)
    start[0], end[0], level[0] = 0, keys.shape[0], 0
    n_nodes = 1
    stack = np.empty(8 * 64, np.int64)  # depth-first: at most 8 pending children per level
    stack[0] = 0
    top = 1
    while top > 0:
        top -= 1
        k = stack[top]
        if end[k] - start[k] <= leaf_size or level[k] >= 21:
            continue
        if n_nodes + 8 > cap:  # grow the node arrays
            cap *= 2
            start = np.concatenate((start, np.empty(cap - start.shape[0], np.int64)))
            end = np.concatenate((end, np.empty(cap - end.shape[0], np.int64)))
            level = np.concatenate((level, np.empty(cap - level.shape[0], np.int64)))
            first_child = np.concatenate((first_child, np.full(cap - first_child.shape[0], -1, np.int64)))
            n_child = np.concatenate((n_child, np.zeros(cap - n_child.shape[0], np.int64)))
        shift = np.uint64(3 * (20 - level[k]))
        first_child[k] = n_nodes
        i = start[k]
        while i < end[k]:
            octant = (keys[i] >> shift) & np.uint64(7)
            j = i + 1
            while j < end[k] and ((keys[j] >> shift) & np.uint64(7)) == octant:
                j += 1
            start[n_nodes], end[n_nodes], level[n_nodes] = i, j, level[k] + 1
            n_child[k] += 1
            stack[top] = n_nodes
            top += 1
            n_nodes += 1
            i = j
    return start[:n_nodes], end[:n_nodes], level[:n_nodes], first_child[:n_nodes], n_child[:n_nodes]


@numba.njit(cache=True, parallel=True)
def _walk(pos, start, end, level, first_child, n_child, com, root_size, h, theta, leaves):
    """Tree walk per leaf: one interaction list serves every particle of the target leaf, with
    the opening test made against the leaf's bounding box (so it holds for each of its particles)."""
    out = np.zeros(pos.shape[0])
    for t in numba.prange(leaves.shape[0]):
        leaf = leaves[t]
        lo_i, hi_i = start[leaf], end[leaf]
        box_lo = np.empty(3)
        box_hi = np.empty(3)
        for a in range(3):
            box_lo[a] = pos[lo_i, a]
            box_hi[a] = pos[lo_i, a]
            for i in range(lo_i + 1, hi_i):
                box_lo[a] = min(box_lo[a], pos[i, a])
                box_hi[a] = max(box_hi[a], pos[i, a])
        stack = np.empty(8 * 24, np.int64)
        stack[0] = 0
        top = 1
        while top > 0:
            top -= 1
            k = stack[top]
            if first_child[k] < 0:
                for i in range(lo_i, hi_i):
                    acc = 0.0
                    for j in range(start[k], end[k]):
                        if j == i:
                            continue
                        dx = pos[i, 0] - pos[j, 0]
                        dy = pos[i, 1] - pos[j, 1]
                        dz = pos[i, 2] - pos[j, 2]
                        acc += _kernel(np.sqrt(dx * dx + dy * dy + dz * dz), h)
                    out[i] += acc
                continue
            d2 = 0.0
            for a in range(3):
                gap = max(box_lo[a] - com[k, a], 0.0, com[k, a] - box_hi[a])
                d2 += gap * gap
            d = np.sqrt(d2)
            size = root_size / (1 << level[k])
            # accept the node's monopole only if it is small and outside the softened reach as
            # seen from every particle of the target leaf
            if size < theta * d and d > h + 0.87 * size:
                count = end[k] - start[k]
                for i in range(lo_i, hi_i):
                    dx = pos[i, 0] - com[k, 0]
                    dy = pos[i, 1] - com[k, 1]
                    dz = pos[i, 2] - com[k, 2]
                    out[i] -= count / np.sqrt(dx * dx + dy * dy + dz * dz)
            else:
                for c in range(first_child[k], first_child[k] + n_child[k]):
                    stack[top] = c
                    top += 1
    return out


@numba.njit(cache=True, parallel=True)
def _walk_targets(targets, pos, start, end, level, first_child, n_child, com, root_size, h, theta):
    """Tree walk per target point over a tree of other particles (no self term)."""
    out = np.zeros(targets.shape[0])
    for i in numba.prange(targets.shape[0]):
        stack = np.empty(8 * 24, np.int64)
        stack[0] = 0
        top = 1
        acc = 0.0
        while top > 0:
            top -= 1
            k = stack[top]
            if first_child[k] < 0:
                for j in range(start[k], end[k]):
                    dx = targets[i, 0] - pos[j, 0]
                    dy = targets[i, 1] - pos[j, 1]
                    dz = targets[i, 2] - pos[j, 2]
                    acc += _kernel(np.sqrt(dx * dx + dy * dy + dz * dz), h)
                continue
            dx = targets[i, 0] - com[k, 0]
            dy = targets[i, 1] - com[k, 1]
            dz = targets[i, 2] - com[k, 2]
            d = np.sqrt(dx * dx + dy * dy + dz * dz)
            size = root_size / (1 << level[k])
            if size < theta * d and d > h + 0.87 * size:
                acc -= (end[k] - start[k]) / d
            else:
                for c in range(first_child[k], first_child[k] + n_child[k]):
                    stack[top] = c
                    top += 1
        out[i] = acc
    return out


def _tree(pos: np.ndarray, leaf_size: int):
    """(Morton order, sorted positions, node arrays..., node centres of mass, root size)."""
    keys, _, root_size = _morton_keys(pos)
    order = np.argsort(keys, kind="stable")
    sorted_pos = np.ascontiguousarray(pos[order])
    start, end, level, first_child, n_child = _build_tree(keys[order], leaf_size)
    cumulative = np.vstack([np.zeros((1, 3)), np.cumsum(sorted_pos, axis=0)])
    com = (cumulative[end] - cumulative[start]) / (end - start)[:, None]
    return order, sorted_pos, (start, end, level, first_child, n_child), com, root_size


def tree_potential_at(targets: np.ndarray, sources: np.ndarray, mass: float, softening: float,
                      theta: float = 0.7, leaf_size: int = 8, g: float = G) -> np.ndarray:
    """Barnes-Hut potential at `targets` from the (distinct) particles `sources`."""
    sources = np.asarray(sources, dtype=np.float64)
    _, sorted_pos, nodes, com, root_size = _tree(sources, leaf_size)
    targets = np.ascontiguousarray(targets, dtype=np.float64)
    return g * mass * _walk_targets(targets, sorted_pos, *nodes, com, root_size,
                                    SPLINE_PER_PLUMMER * softening, theta)


def tree_potential(pos: np.ndarray, mass: float, softening: float, theta: float = 0.7,
                   leaf_size: int = 8, g: float = G) -> np.ndarray:
    """Barnes-Hut potential at each particle from all others (relative error a few 1e-3 at theta 0.7)."""
    pos = np.asarray(pos, dtype=np.float64)
    order, sorted_pos, nodes, com, root_size = _tree(pos, leaf_size)
    leaves = np.nonzero(nodes[3] < 0)[0]
    phi_sorted = _walk(sorted_pos, *nodes, com, root_size, SPLINE_PER_PLUMMER * softening, theta,
                       leaves)
    phi = np.empty_like(phi_sorted)
    phi[order] = phi_sorted
    return g * mass * phi


def potential(pos: np.ndarray, mass: float, softening: float, g: float = G) -> np.ndarray:
    """Potential of equal-mass particles on each other: exact when small, tree otherwise."""
    if len(pos) <= DIRECT_MAX:
        return direct_potential(pos, mass, softening, g)
    return tree_potential(pos, mass, softening, g=g)


def potential_at(targets: np.ndarray, sources: np.ndarray, mass: float, softening: float,
                 g: float = G) -> np.ndarray:
    """Potential at `targets` from distinct `sources`: exact when the pair count is small."""
    if len(targets) * len(sources) <= DIRECT_MAX ** 2 or len(sources) <= 32:
        return potential_from(targets, sources, mass, softening, g)
    return tree_potential_at(targets, sources, mass, softening, g=g)


def mesh_potential(pos: np.ndarray, mass: float, box_size: float, n_mesh: int,
                   g: float = G) -> np.ndarray:
    """Periodic particle-mesh potential with the mean density subtracted (as a cosmological
    code's long-range solver): cloud-in-cell mass assignment, FFT Poisson solve, CIC read-back.

    Used for field particles, which sit in no group and are too many for a tree."""
    cell = box_size / n_mesh
    scaled = np.mod(np.asarray(pos, dtype=np.float64), box_size) / cell - 0.5
    base = np.floor(scaled).astype(np.int64)
    frac = scaled - base
    density = np.zeros(n_mesh ** 3)
    corners = [(dx, dy, dz) for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)]

    def corner(dx, dy, dz):
        i = (base + np.array([dx, dy, dz])) % n_mesh
        w = (np.where(dx, frac[:, 0], 1 - frac[:, 0]) * np.where(dy, frac[:, 1], 1 - frac[:, 1])
             * np.where(dz, frac[:, 2], 1 - frac[:, 2]))
        return (i[:, 0] * n_mesh + i[:, 1]) * n_mesh + i[:, 2], w

    for dx, dy, dz in corners:
        flat, w = corner(dx, dy, dz)
        density += np.bincount(flat, weights=w, minlength=n_mesh ** 3)
    density = density.reshape((n_mesh,) * 3) * mass / cell ** 3
    delta_k = np.fft.rfftn(density - density.mean())
    k = 2.0 * np.pi * np.fft.fftfreq(n_mesh, d=cell)
    kz = 2.0 * np.pi * np.fft.rfftfreq(n_mesh, d=cell)
    k2 = k[:, None, None] ** 2 + k[None, :, None] ** 2 + kz[None, None, :] ** 2
    k2[0, 0, 0] = 1.0
    phi_k = -4.0 * np.pi * g * delta_k / k2
    phi_k[0, 0, 0] = 0.0
    phi = np.fft.irfftn(phi_k, s=(n_mesh,) * 3, axes=(0, 1, 2)).ravel()
    out = np.zeros(len(pos))
    for dx, dy, dz in corners:
        flat, w = corner(dx, dy, dz)
        out += w * phi[flat]
    return out
