"""Plain containers the data layer returns: a snapshot header and one halo's particles."""
from dataclasses import dataclass, field

import numpy as np


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
    n_chunks: int  # snapshot chunks (1 for a cutout or simulation.hdf5)
    snap: int = 99


@dataclass
class Halo:
    """One FoF group's particles, unwrapped so the halo is in one piece.

    Labels follow Subfind: -1 fuzz (in the group, in no subhalo), 0 the primary subhalo, then
    1, 2, ... the subhalo's rank within the group (decreasing mass). `labels` is None where the
    source carries no subhalo information (a cutout without lengths).
    """

    group_id: int
    pos: np.ndarray  # (N,3) float64, ckpc/h, GroupPos + minimum-image offset
    vel: np.ndarray | None  # (N,3) float32, peculiar km/s; None where the source lacks it
    potential: np.ndarray | None  # (N,) float32, (km/s)^2 / a
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
