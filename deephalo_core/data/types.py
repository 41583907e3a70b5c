"""Plain containers the data layer returns: a snapshot header, one output's identity and one halo's
particles."""
from dataclasses import dataclass, field

import numpy as np

from deephalo_core.units import TNG50_4_DARK


@dataclass(frozen=True)
class Header:
    box_size: float  # ckpc/h
    hubble_param: float
    redshift: float
    time: float  # scale factor a
    particle_mass: float  # DM particle mass, 1e10 Msun/h (MassTable[1])
    n_particles: int  # PartType1 total
    n_groups: int
    n_subhalos: int
    n_chunks: int  # snapshot files (1 for a single-file output, a cutout or simulation.hdf5)
    snap: int = 99
    omega0: float = TNG50_4_DARK["omega0"]  # TNG's value where a file does not say
    omega_lambda: float = TNG50_4_DARK["omega_lambda"]


@dataclass(frozen=True)
class OutputInfo:
    """One output of a simulation that has both particles and a group catalog."""

    snap: int
    redshift: float
    time: float  # scale factor a


@dataclass
class Halo:
    """One FoF group's particles, unwrapped so the halo is in one piece.

    Labels follow Subfind: -1 fuzz (in the group, in no subhalo), 0 the primary subhalo, then
    1, 2, ... the subhalo's rank within the group (decreasing mass). `labels` is None where the
    source carries no subhalo information (a cutout without lengths).

    Units are the same whatever code wrote the snapshot and at any redshift: positions comoving
    ckpc/h; `vel` peculiar velocities in km/s (GADGET-4, AREPO and TNG store v/sqrt(a), so the
    reader multiplies by sqrt(a)); `potential` physical (km/s)^2 (they store it times a, so the
    reader divides by a). Each dataset's own `a_scaling` attribute decides when present.
    """

    group_id: int
    pos: np.ndarray  # (N,3) float64, ckpc/h, GroupPos + minimum-image offset
    vel: np.ndarray | None  # (N,3) float32, peculiar km/s; None where the source lacks it
    potential: np.ndarray | None  # (N,) float32, physical (km/s)^2
    ids: np.ndarray | None  # (N,) uint64
    labels: np.ndarray | None  # (N,) int32
    subhalo_ids: np.ndarray  # (n_subhalos,) int64 global Subfind ids of ranks 0..
    center: np.ndarray  # (3,) GroupPos, ckpc/h
    catalog: dict  # the group's catalog row (halos table columns, incl. m200_msun_h, r200_ckpc_h)
    particle_mass: float
    box_size: float
    offset: int = 0  # index of the halo's first particle in the snapshot (PartType1)
    extra: dict = field(default_factory=dict)  # optional Subfind* fields, by dataset name
    missing: tuple = ()  # fields the source lacks (e.g. a cutout with only Coordinates)
    time: float = 1.0  # scale factor a of the snapshot (physical length = a * comoving)
    omega0: float = TNG50_4_DARK["omega0"]  # cosmology, for the Hubble rate H(a)
    omega_lambda: float = TNG50_4_DARK["omega_lambda"]

    @property
    def n_particles(self) -> int:
        return len(self.pos)

    @property
    def n_subhalos(self) -> int:
        return len(self.subhalo_ids)

    @property
    def r200(self) -> float:
        return float(self.catalog.get("r200_ckpc_h", 0.0))

    @property
    def m200(self) -> float:
        return float(self.catalog.get("m200_msun_h", 0.0))
