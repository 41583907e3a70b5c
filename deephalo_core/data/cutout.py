"""TNG web-API cutouts (`/Header` + `/PartType1/...` of one object) as a one-halo Simulation.

A cutout has no catalog, so the one group (id 0) gets one from its particles: its centre is the
minimum-potential particle when `Potential` is there, else a shrinking-sphere centre; M200/R200
come from `physics.spherical_overdensity` against the critical density at the cutout's redshift
(comoving units, as TNG's Group_M_Crit200). With `subhalo_lengths` (particle counts of its
subhalos in file order, primary first) the particles get Subfind labels; without, labels are None.
Units are TNG's (Velocities v/sqrt(a), Potential times a); the Simulation scales them.
"""
import re
from pathlib import Path

import h5py
import numpy as np

from deephalo_core.data.groupcat import CatalogCounts
from deephalo_core.data.snapshot import DM
from deephalo_core.data.types import Header
from deephalo_core.errors import DataError
from deephalo_core.physics import spherical_overdensity
from deephalo_core.units import RHO_CRIT0


def is_cutout(f: h5py.File) -> bool:
    """A one-file particle set: Header + PartType1 (or CutoutType), not a snapshot chunk."""
    if "Header" not in f:
        return False
    attrs = f["Header"].attrs
    if "CutoutType" in attrs or "CutoutID" in attrs:
        return True
    named_like_chunk = re.fullmatch(r"snap(shot)?_\d+\.\d+\.hdf5", Path(f.filename).name)
    return DM in f and int(attrs.get("NumFilesPerSnapshot", 1)) == 1 and not named_like_chunk


class CutoutParticles:
    """The cutout's PartType1 datasets, read by index range."""

    def __init__(self, f: h5py.File):
        self.file, self.path = f, f.filename
        self.group = f[DM] if DM in f else {}
        self.fields = {name: (ds.dtype, ds.shape[1:]) for name, ds in self.group.items()}
        if "Coordinates" not in self.fields:
            raise DataError(f"cutout {self.path} has no PartType1/Coordinates; request the cutout "
                            "with at least PartType1=Coordinates")
        self.n_particles = len(self.group["Coordinates"])

    def field_attrs(self, field: str) -> dict:
        return dict(self.group[field].attrs) if field in self.fields else {}

    def read(self, field: str, start: int, stop: int) -> np.ndarray:
        if field not in self.fields:
            raise DataError(f"cutout {self.path} has no PartType1/{field}; it has "
                            f"{sorted(self.fields)}: request the cutout with that field")
        try:
            return self.group[field][start:stop]
        except OSError as exc:
            raise DataError(f"reading PartType1/{field} from cutout {self.path} failed ({exc}); "
                            "the file is probably truncated: download it again") from exc

    def close(self):
        pass


class CutoutCatalog(CatalogCounts):
    """A one-group catalog built in memory, shaped like the /Group and /Subhalo columns."""

    def __init__(self, columns: dict):
        self._columns = columns
        self.totals = {kind: len(next(iter(cols.values()))) for kind, cols in columns.items()}

    def names(self, kind: str) -> set:
        return set(self._columns[kind])

    def field(self, kind: str, name: str) -> np.ndarray:
        if name not in self._columns[kind]:
            raise DataError(f"a cutout has no catalog field {kind}/{name}")
        return self._columns[kind][name]

    def close(self):
        pass


def minimum_image(coords: np.ndarray, reference: np.ndarray, box: float) -> np.ndarray:
    """Offsets coords - reference wrapped into [-box/2, box/2), float64."""
    d = np.asarray(coords, dtype=np.float64) - reference
    d -= box * np.round(d / box)
    return d


def shrinking_sphere_center(pos: np.ndarray, shrink: float = 0.9,
                            min_particles: int = 20) -> np.ndarray:
    """Centre of the densest region: recentre on the mean of the particles inside a sphere that
    shrinks by `shrink` each step, until fewer than `min_particles` remain."""
    center = pos.mean(axis=0)
    radius = np.sqrt(((pos - center) ** 2).sum(axis=1).max()) if len(pos) else 0.0
    inside = pos
    while len(inside) >= max(min_particles, 1) and radius > 0:
        center = inside.mean(axis=0)
        radius *= shrink
        inside = pos[((pos - center) ** 2).sum(axis=1) < radius * radius]
    return center


def _labels_lengths(subhalo_lengths, n: int, path) -> np.ndarray:
    lengths = np.asarray(subhalo_lengths)
    if lengths.ndim != 1 or (lengths.size and (not np.issubdtype(lengths.dtype, np.integer)
                                               or lengths.min() < 0)):
        raise DataError(f"subhalo_lengths for cutout {path} must be a list of non-negative "
                        f"integers (particles per subhalo, primary first); got {subhalo_lengths!r}")
    if lengths.sum() > n:
        raise DataError(f"subhalo_lengths for cutout {path} add up to {int(lengths.sum())} "
                        f"particles but the cutout holds {n}")
    return lengths.astype(np.int32)


def open_cutout(path: Path, f: h5py.File, subhalo_lengths=None):
    """A Simulation (kind 'cutout') with one group, id 0, over an open cutout file."""
    from deephalo_core.data.simulation import Simulation

    try:
        attrs = f["Header"].attrs
        for name in ("BoxSize", "MassTable"):
            if name not in attrs:
                raise DataError(f"cutout {path} lacks Header attribute {name}; it is not a TNG "
                                "cutout")
        particles = CutoutParticles(f)
        n = particles.n_particles
        box = float(attrs["BoxSize"])
        mass = float(np.asarray(attrs["MassTable"])[1])
        a = float(attrs.get("Time", 1.0))
        coords = particles.read("Coordinates", 0, n)
        if n == 0:
            raise DataError(f"cutout {path} holds no PartType1 particles")
        offsets = minimum_image(coords, coords[0], box)
        if "Potential" in particles.fields:
            center = offsets[int(np.argmin(particles.read("Potential", 0, n)))]
        else:
            center = shrinking_sphere_center(offsets)
        center = np.mod(coords[0] + center, box)
        radii = np.sqrt((minimum_image(coords, center, box) ** 2).sum(axis=1))
        omega_m = float(attrs.get("Omega0", 0.3089))
        omega_l = float(attrs.get("OmegaLambda", 0.6911))
        # Critical density at the cutout's redshift, in comoving (1e10 Msun/h)/(ckpc/h)^3.
        rho_crit = RHO_CRIT0 * (omega_m + omega_l * a ** 3)
        m200, r200 = spherical_overdensity(radii, mass, 200.0, rho_crit)

        has_labels = subhalo_lengths is not None
        lengths = _labels_lengths(subhalo_lengths, n, path) if has_labels else np.zeros(0, np.int32)
        len_type = np.zeros((len(lengths), 6), np.int32)
        len_type[:, 1] = lengths
        group_len_type = np.zeros((1, 6), np.int32)
        group_len_type[0, 1] = n
        catalog = CutoutCatalog({
            "Group": {"GroupLenType": group_len_type,
                      "GroupNsubs": np.array([len(lengths)], np.int32),
                      "GroupFirstSub": np.array([0 if len(lengths) else -1], np.int32),
                      "GroupPos": center[None, :].astype(np.float64),
                      "GroupMass": np.array([n * mass]),
                      "Group_M_Crit200": np.array([m200]), "Group_R_Crit200": np.array([r200])},
            "Subhalo": {"SubhaloLenType": len_type,
                        "SubhaloGrNr": np.zeros(len(lengths), np.int32),
                        "SubhaloMass": lengths * mass},
        })
        header = Header(
            box_size=box, hubble_param=float(attrs.get("HubbleParam", 0.6774)),
            redshift=float(attrs.get("Redshift", 0.0)), time=a, particle_mass=mass,
            n_particles=n, n_groups=1, n_subhalos=len(lengths), n_chunks=1,
            snap=int(attrs.get("SnapshotNumber", -1)), omega0=omega_m, omega_lambda=omega_l)
        return Simulation(path, header.snap, "cutout", header, particles, catalog, None,
                          has_labels=has_labels, owned_file=f)
    except Exception:
        f.close()
        raise
