"""Training samples from a snapshot: per-particle features, Subfind labels, split and cache.

Features (feature set "seed", the seed paper's 7 inputs), each scaled per halo by its virial scales
so halos of every mass look alike to a model:
  0-2  (pos - GroupPos) / R200           GroupPos is the potential minimum; pos is unwrapped
  3-5  (vel - bulk velocity) / V200      bulk velocity = mean velocity of the group's particles
  6    (Potential - min Potential) / V200^2
with V200 = sqrt(G M200 / R200). A group whose particles never reach 200 x rho_crit (R200 = 0 in
the catalog) falls back to the radius holding all its particles and the mass inside it.
Feature set "seed+subfind" adds Subfind's own per-particle intermediates (they make the task
easier, so results are reported with and without them):
  7    log10(SubfindDMDensity / (200 rho_crit))
  8    log10(SubfindHsml / R200)
  9    SubfindVelDisp / V200
Feature set "seed+energy" (the default segmenter's) adds what the shift in column 6 loses: the
well's depth, which decides whether Subfind's unbinding keeps a particle (bound: E < 0):
  7    (Potential + 0.5 |vel - bulk velocity|^2) / V200^2   specific energy, zero at infinity
  8    Potential / V200^2                                  the unshifted potential

Feature set "binding" (the default segmenter's) is "seed" in the halo's physical frame with binding
energies that do not depend on the potential's zero point (a real snapshot's potential includes the
whole box and the mean-density term; a synthetic one is the group's own, zero at infinity):
  3-5  (vel - bulk + H(a) a (pos - GroupPos)) / V200   physical velocity relative to the halo,
                                                       Hubble flow included, as SUBFIND unbinds
  7    (phi_halo + 0.5 |v|^2) / V200^2                 specific energy in the halo's own well
  8    phi_halo / V200^2
  9    (phi_sphere + 0.5 |v|^2) / V200^2               energy in the halo's own spherical well
where phi_halo = phi - phi_edge - G M(<r_edge) / r_edge: the potential re-anchored on the halo's
outer particles (the outermost fifth: median potential phi_edge at median radius r_edge), as if the
halo were alone and its potential zero at infinity; phi_sphere is the potential of the halo's own
particles averaged over spheres (it ignores the snapshot's potential altogether, so the tidal field
of the surroundings, which a constant shift cannot remove, does not enter it). SUBFIND unbinds
with a subhalo's own potential, and these two energies bracket it. Lengths are comoving ratios,
V200 uses the physical R200 (a R200), so halos at any redshift look alike.

Split: by group id, fixed for ever and independent of the snapshot size: a multiplicative hash of
the id maps each group to [0, 1); below 0.70 train, below 0.85 val, else test.
"""
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deephalo_core import paths
from deephalo_core.atomic import save_npz
from deephalo_core.errors import DataError
from deephalo_core.physics import virial_velocity
from deephalo_core.units import G, H0, RHO_CRIT0

FEATURE_SETS = {
    "seed": ("x", "y", "z", "vx", "vy", "vz", "potential"),
    "seed+subfind": ("x", "y", "z", "vx", "vy", "vz", "potential", "log_dm_density", "log_hsml", "vel_disp"),
    "seed+energy": ("x", "y", "z", "vx", "vy", "vz", "potential", "energy", "abs_potential"),
    "binding": ("x", "y", "z", "vx", "vy", "vz", "potential", "energy", "halo_potential", "sphere_energy"),
}
SUBFIND_FIELDS = ("SubfindDMDensity", "SubfindHsml", "SubfindVelDisp")
SPLITS = ("train", "val", "test")
CACHE_VERSION = 3
MASS_CODE_UNIT = 1e10  # catalog masses are in Msun/h; code units are 1e10 Msun/h


def split_of(group_id: int, folds: tuple[int, int] | None = None) -> str:
    """"train", "val" or "test" for a FoF group id (deterministic, see the module docstring).

    folds=(k, i): k-fold cross-validation by group id on the same hash: fold i is the test split,
    the first half of fold i+1 (mod k) the val split, the rest train (k = 5: 20/10/70)."""
    u = ((int(group_id) * 2654435761 + 12345) % 2**32) / 2**32
    if folds is not None:
        k, i = folds
        fold = min(int(u * k), k - 1)
        if fold == i:
            return "test"
        return "val" if fold == (i + 1) % k and u * k - fold < 0.5 else "train"
    return "train" if u < 0.70 else ("val" if u < 0.85 else "test")


def groups_in_split(halos, split: str, folds: tuple[int, int] | None = None) -> list[int]:
    """Group ids of the halos table in `split` ("all" for every one) that have subhalos to learn."""
    if split not in SPLITS + ("all",):
        raise DataError(f"unknown split {split!r}: use one of train, val, test, all")
    rows = halos[halos["n_subhalos"] > 0]
    ids = [int(g) for g in rows["group_id"]]
    return ids if split == "all" else [g for g in ids if split_of(g, folds) == split]


@dataclass
class HaloScales:
    center: np.ndarray
    bulk_vel: np.ndarray
    r200: float  # ckpc/h (comoving)
    v200: float  # km/s (physical)
    time: float = 1.0  # scale factor a
    hubble: float = H0  # H(a) in km/s per physical kpc/h


def hubble_rate(time: float, omega0: float, omega_lambda: float) -> float:
    """H(a) in km/s per (physical) kpc/h for a flat-ish FLRW model (curvature from 1 - Om - OL)."""
    a = float(time)
    ok = 1.0 - omega0 - omega_lambda
    return H0 * float(np.sqrt(omega0 / a**3 + ok / a**2 + omega_lambda))


def halo_scales(halo) -> HaloScales:
    """Centre, bulk velocity and virial scales used to normalise one halo's features.

    R200 stays comoving (ratios of comoving lengths are physical ratios); V200 = sqrt(G M200 /
    (a R200)) is physical, so a halo at z = 1 and its twin at z = 0 get the same features."""
    d = np.asarray(halo.pos, dtype=np.float64) - np.asarray(halo.center, dtype=np.float64)
    r200 = halo.r200
    m200 = halo.m200 / MASS_CODE_UNIT
    if not (r200 > 0 and m200 > 0):
        r = np.sqrt((d * d).sum(axis=1))
        r200 = float(max(r.max(), 1e-3))
        m200 = halo.particle_mass * len(r)
    time = float(halo.time)
    v200 = virial_velocity(m200, r200 * time)
    bulk = np.asarray(halo.vel, dtype=np.float64).mean(axis=0) if halo.vel is not None else np.zeros(3)
    return HaloScales(np.asarray(halo.center, dtype=np.float64), bulk, float(r200), float(v200), time,
                      hubble_rate(time, halo.omega0, halo.omega_lambda))


def sphere_potential(radius: np.ndarray, particle_mass: float) -> np.ndarray:
    """Potential of equal-mass particles averaged over spheres around the centre, zero at infinity:
    phi(r_i) = -G [M(<= r_i) / r_i + sum over r_j > r_i of m / r_j] (physical radii, (km/s)^2)."""
    n = len(radius)
    order = np.argsort(radius, kind="stable")
    r = np.maximum(np.asarray(radius, dtype=np.float64)[order], 1e-6)
    inside = particle_mass * np.arange(1, n + 1)
    beyond = np.zeros(n)
    if n > 1:
        beyond[:-1] = np.cumsum((particle_mass / r)[::-1])[::-1][1:]
    out = np.empty(n)
    out[order] = -G * (inside / r + beyond)
    return out


def halo_potential(phi: np.ndarray, radius: np.ndarray, particle_mass: float, time: float) -> np.ndarray:
    """phi re-anchored as if the halo were alone (zero at infinity), independent of phi's zero point.

    The outermost fifth of the particles (by radius) gives the anchor: their median potential is set
    to -G M(<r_edge) / r_edge (physical r_edge = a * comoving median radius), the point-mass value a
    halo's own potential takes outside most of its mass."""
    n = len(phi)
    if n == 0:
        return phi.astype(np.float64)
    order = np.argsort(radius)
    outer = order[int(0.8 * n):] if n >= 5 else order
    r_edge = float(np.median(radius[outer]))
    m_inside = particle_mass * float(np.searchsorted(radius[order], r_edge, side="right"))
    anchor = G * m_inside / max(r_edge * time, 1e-6)
    return np.asarray(phi, dtype=np.float64) - float(np.median(phi[outer])) - anchor


def _require(halo, what: str, value):
    if value is None:
        raise DataError(
            f"halo {halo.group_id} has no {what} (the source lacks {', '.join(halo.missing) or what}); "
            "models need positions, velocities and potentials: use a full snapshot, not a positions-only cutout")
    return value


def halo_features(halo, feature_set: str = "seed") -> np.ndarray:
    """(N, F) float32 features of one halo (see the module docstring)."""
    if feature_set not in FEATURE_SETS:
        raise DataError(f"unknown feature set {feature_set!r}: use one of {', '.join(FEATURE_SETS)}")
    vel = _require(halo, "velocities", halo.vel)
    pot = _require(halo, "potentials", halo.potential)
    s = halo_scales(halo)
    d = np.asarray(halo.pos, dtype=np.float64) - s.center  # comoving ckpc/h
    pos = d / s.r200
    v_rel = np.asarray(vel, dtype=np.float64) - s.bulk_vel
    if feature_set == "binding":  # physical velocity relative to the halo: add the Hubble flow
        v_rel = v_rel + s.hubble * s.time * d
    v = v_rel / s.v200
    p = np.asarray(pot, dtype=np.float64)
    phi = (p - p.min()) / s.v200**2
    cols = [pos, v, phi[:, None]]
    if feature_set == "binding":
        radius = np.sqrt((d * d).sum(axis=1))
        kinetic = 0.5 * (v * v).sum(axis=1)
        own = halo_potential(p, radius, halo.particle_mass, s.time) / s.v200**2
        sphere = sphere_potential(radius * s.time, halo.particle_mass) / s.v200**2
        cols += [(own + kinetic)[:, None], own[:, None], (sphere + kinetic)[:, None]]
    if feature_set == "seed+energy":  # legacy (shipped synthetic model): takes phi's zero point as given
        abs_phi = p / s.v200**2
        cols += [(abs_phi + 0.5 * (v * v).sum(axis=1))[:, None], abs_phi[:, None]]
    if feature_set == "seed+subfind":
        missing = [f for f in SUBFIND_FIELDS if f not in halo.extra]
        if missing:
            raise DataError(f"halo {halo.group_id} lacks {', '.join(missing)} needed by feature set "
                            "'seed+subfind': load it with extra_fields or use feature set 'seed'")
        dens = np.asarray(halo.extra["SubfindDMDensity"], dtype=np.float64)
        hsml = np.asarray(halo.extra["SubfindHsml"], dtype=np.float64)
        disp = np.asarray(halo.extra["SubfindVelDisp"], dtype=np.float64)
        cols += [np.log10(np.maximum(dens, 1e-30) / (200 * RHO_CRIT0))[:, None],
                 np.log10(np.maximum(hsml, 1e-6) / s.r200)[:, None], (disp / s.v200)[:, None]]
    return np.concatenate(cols, axis=1).astype(np.float32)


def subsample(labels: np.ndarray, max_points: int | None, rng: np.random.Generator,
              min_per_subhalo: int = 32) -> np.ndarray:
    """Sorted indices of at most ~max_points particles, the same fraction of every label, but
    never fewer than min(size, min_per_subhalo) of a subhalo so small ones stay represented."""
    n = len(labels)
    if not max_points or n <= max_points:
        return np.arange(n)
    frac = max_points / n
    keep = []
    for lab in np.unique(labels):
        members = np.nonzero(labels == lab)[0]
        want = int(np.ceil(frac * len(members)))
        if lab >= 1:
            want = max(want, min(len(members), min_per_subhalo))
        keep.append(rng.choice(members, size=min(want, len(members)), replace=False))
    return np.sort(np.concatenate(keep))


def crop(features: np.ndarray, labels: np.ndarray, max_points: int | None, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of the max_points particles nearest in position to a random centre (a random
    subhalo member half the time, else any particle). Unlike `subsample` it keeps the particle
    density, which graph models read off their neighbours, as it is at full resolution."""
    n = len(labels)
    if not max_points or n <= max_points:
        return np.arange(n)
    members = np.nonzero(labels >= 1)[0]
    pick = rng.choice(members) if members.size and rng.random() < 0.5 else rng.integers(n)
    d2 = ((features[:, :3] - features[pick, :3]) ** 2).sum(axis=1)
    return np.sort(np.argpartition(d2, max_points - 1)[:max_points])


@dataclass
class Sample:
    group_id: int
    features: np.ndarray  # (N, F) float32
    labels: np.ndarray  # (N,) int32
    source: str = ""  # "PATH#SNAP" it came from (several snapshots can train one model)

    def take(self, idx: np.ndarray) -> "Sample":
        return Sample(self.group_id, self.features[idx], self.labels[idx], self.source)


def expand_sources(paths, snaps: str = "last") -> list[tuple[str, int | None]]:
    """(path, snapshot) pairs for one or more data paths: `snaps` is "last" (each path's last output
    with particles and a catalog), "all" (every such output) or comma-separated numbers. A path
    written PATH#SNAPS (as `source_label` prints it) takes its own choice."""
    from deephalo_core import data

    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out = []
    for path in paths:
        path, choice = _own_snaps(str(path), snaps)
        if choice == "last":
            out.append((path, None))
        elif choice == "all":
            found = [o.snap for o in data.list_outputs(path)]
            if not found:
                raise DataError(f"{path}: no output holds both particles and a group catalog")
            out += [(path, n) for n in found]
        else:
            try:
                out += [(path, int(n)) for n in choice.split(",") if n.strip()]
            except ValueError as exc:
                raise DataError(f"snapshots {choice!r} for {path}: use 'last', 'all' or numbers like "
                                "0,1,4") from exc
    return out


def _own_snaps(path: str, default: str) -> tuple[str, str]:
    """PATH#SNAPS -> (PATH, SNAPS) when the suffix is last, all or numbers; else (path, default)."""
    head, sep, tail = path.rpartition("#")
    if sep and (tail in ("last", "all") or tail.replace(",", "").isdigit()):
        return head, tail
    return path, default


def source_label(path, snap: int | None) -> str:
    return f"{path}#{'last' if snap is None else snap}"


def _data_stamp(data_path: Path) -> str:
    """Path plus the newest modification time of its files: changes when the data does."""
    data_path = data_path.resolve()
    if data_path.is_file():
        files = [data_path]
    else:
        files = [p for p in data_path.rglob("*.hdf5") if p.is_file()]
    newest = max((p.stat().st_mtime_ns for p in files), default=0)
    return f"{data_path}|{newest}|{len(files)}"


def cache_path(data_path, feature_set: str, snap: int | None = None) -> Path:
    key = hashlib.sha1(f"{_data_stamp(Path(data_path))}|{snap}|{feature_set}|v{CACHE_VERSION}".encode()).hexdigest()[:16]
    return paths.cache_dir() / f"samples-{key}.npz"


def load_samples(data_path, split: str = "train", feature_set: str = "seed", progress: bool = True,
                 use_cache: bool = True, snap: int | None = None,
                 folds: tuple[int, int] | None = None) -> list[Sample]:
    """Full-resolution samples of every halo with subhalos in `split` of one snapshot, cached on disk.

    The cache (under deephalo_core.paths.cache_dir()) holds every split of a snapshot for one
    feature set, keyed by the data path, its files' newest mtime, the snapshot and the feature set.
    """
    cpath = cache_path(data_path, feature_set, snap)
    if use_cache and cpath.exists():
        with np.load(cpath) as z:
            ids, offsets = z["group_ids"], z["offsets"]
            feats, labels = z["features"], z["labels"]
    else:
        ids, offsets, feats, labels = _build_all(data_path, feature_set, progress, snap)
        if use_cache:
            save_npz(cpath, group_ids=ids, offsets=offsets, features=feats, labels=labels,
                     meta=np.array(json.dumps({"data": str(data_path), "snap": snap, "feature_set": feature_set})))
    out, label = [], source_label(data_path, snap)
    for i, gid in enumerate(ids):
        if split == "all" or split_of(int(gid), folds) == split:
            s, e = offsets[i], offsets[i + 1]
            out.append(Sample(int(gid), feats[s:e], labels[s:e], label))
    return out


def load_many(sources, split: str, feature_set: str, progress: bool = True,
              folds: tuple[int, int] | None = None) -> list[Sample]:
    """`load_samples` over several (path, snapshot) pairs (see `expand_sources`), concatenated."""
    return [s for path, snap in sources
            for s in load_samples(path, split, feature_set, progress=progress, snap=snap, folds=folds)]


def _build_all(data_path, feature_set: str, progress: bool, snap: int | None = None):
    from tqdm import tqdm

    from deephalo_core.data import open_simulation

    sim = open_simulation(data_path, snap=snap)
    group_ids = groups_in_split(sim.halos, "all")
    extra = SUBFIND_FIELDS if feature_set == "seed+subfind" else ()
    feats, labels, ids, offsets = [], [], [], [0]
    for gid in tqdm(group_ids, desc="features", disable=not progress, unit="halo"):
        halo = sim.load_halo(gid, extra_fields=extra) if extra else sim.load_halo(gid)
        if halo.labels is None:
            raise DataError(f"{data_path}: halo {gid} has no Subfind labels, so it cannot be a training sample")
        feats.append(halo_features(halo, feature_set))
        labels.append(np.asarray(halo.labels, dtype=np.int32))
        ids.append(gid)
        offsets.append(offsets[-1] + len(halo.labels))
    if not ids:
        raise DataError(f"{data_path}: no FoF group with subhalos to learn from")
    return (np.array(ids, dtype=np.int64), np.array(offsets, dtype=np.int64),
            np.concatenate(feats), np.concatenate(labels))
