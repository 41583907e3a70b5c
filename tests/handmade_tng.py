"""A small hand-built snapshot for the data-layer tests, written with the project's own writer.

Known layout (PartType1 order): group 0 (subhalos 250, 60, 30 + 60 fuzz, spans chunks 0-1),
group 1 (150, 40 + 60 fuzz), group 2 (100 + 20 fuzz, straddles the box corner), group 3 (60 fuzz,
no subhalos), then 100 field particles. 930 particles in 3 chunks of 310.
"""
import numpy as np

from deephalo_core.data import write_snapshot

BOX = 1000.0
PARTICLE_MASS = 0.01
SUBHALO_LENGTHS = [[250, 60, 30], [150, 40], [100], []]
FUZZ = [60, 60, 20, 60]
N_FIELD = 100
CENTERS = np.array([[300.0, 300.0, 300.0], [700.0, 200.0, 600.0], [998.0, 500.0, 1.5],
                    [100.0, 800.0, 800.0]])
HEADER = dict(BoxSize=BOX, HubbleParam=0.6774, Omega0=0.3089, OmegaBaryon=0.0486,
              OmegaLambda=0.6911, Redshift=0.0, Time=1.0,
              MassTable=[0.0, PARTICLE_MASS, 0.0, 0.0, 0.0, 0.0])


def expected_labels(group_id: int) -> np.ndarray:
    lengths = SUBHALO_LENGTHS[group_id]
    return np.concatenate([np.full(n, rank, np.int32) for rank, n in enumerate(lengths)]
                          + [np.full(FUZZ[group_id], -1, np.int32)])


def build_arrays(seed: int = 3):
    """(particles, groups, subhalos) dicts in snapshot order; positions in the unwrapped frame
    are returned too (key 'unwrapped') for checks."""
    rng = np.random.default_rng(seed)
    pos, vel, pot = [], [], []
    group_len, group_nsubs, group_first, group_pos = [], [], [], []
    sub_len, sub_grnr, sub_pos, sub_vel, sub_parent, sub_start = [], [], [], [], [], []
    for g, (lengths, fuzz, center) in enumerate(zip(SUBHALO_LENGTHS, FUZZ, CENTERS)):
        group_first.append(len(sub_len) if lengths else -1)
        group_nsubs.append(len(lengths))
        for rank, n in enumerate(lengths):
            sub_center = center + (0 if rank == 0 else rng.normal(0, 20, 3))
            p = sub_center + rng.normal(0, 3.0 if rank else 8.0, (n, 3))
            # Most bound first: potential rises with distance from the subhalo centre.
            order = np.argsort(np.linalg.norm(p - sub_center, axis=1))
            p = p[order]
            pos.append(p)
            v = rng.normal(0, 50, (n, 3)) + rng.normal(0, 100, 3)
            vel.append(v)
            pot.append(-1e4 / (1 + rank) + np.linalg.norm(p - sub_center, axis=1))
            sub_start.append(sum(map(len, pos)) - n)
            sub_len.append(n)
            sub_grnr.append(g)
            sub_pos.append(p[0])
            sub_vel.append(v.mean(axis=0))
            sub_parent.append(0)
        p = center + rng.normal(0, 30, (fuzz, 3))
        pos.append(p)
        vel.append(rng.normal(0, 80, (fuzz, 3)))
        pot.append(np.full(fuzz, -10.0))
        group_len.append(sum(lengths) + fuzz)
        group_pos.append(center)
    pos.append(rng.uniform(0, BOX, (N_FIELD, 3)))
    vel.append(rng.normal(0, 100, (N_FIELD, 3)))
    pot.append(np.zeros(N_FIELD))

    unwrapped = np.concatenate(pos)
    n = len(unwrapped)
    particles = {
        "Coordinates": np.mod(unwrapped, BOX),
        "Velocities": np.concatenate(vel).astype(np.float32),
        "ParticleIDs": rng.permutation(n).astype(np.uint64) + 1000,
        "Potential": np.concatenate(pot).astype(np.float32),
        "SubfindHsml": rng.uniform(0.5, 5.0, n).astype(np.float32),
    }
    glt = np.zeros((len(group_len), 6), np.int32)
    glt[:, 1] = group_len
    slt = np.zeros((len(sub_len), 6), np.int32)
    slt[:, 1] = sub_len
    group_mass = glt * PARTICLE_MASS
    groups = {
        "GroupLenType": glt, "GroupMassType": group_mass, "GroupMass": group_mass[:, 1],
        "GroupPos": np.mod(CENTERS, BOX), "GroupCM": np.mod(CENTERS, BOX),
        "GroupVel": np.zeros((len(group_len), 3)),
        "Group_M_Crit200": group_mass[:, 1] * 0.8, "Group_R_Crit200": np.array(group_len) ** (1 / 3) * 5,
        "GroupNsubs": np.array(group_nsubs), "GroupFirstSub": np.array(group_first),
    }
    sub_mass = slt * PARTICLE_MASS
    subhalos = {
        "SubhaloLenType": slt, "SubhaloMassType": sub_mass, "SubhaloMass": sub_mass[:, 1],
        "SubhaloPos": np.mod(np.array(sub_pos), BOX), "SubhaloVel": np.array(sub_vel),
        "SubhaloVmax": np.sqrt(np.array(sub_len, float)) * 10, "SubhaloGrNr": np.array(sub_grnr),
        "SubhaloParent": np.array(sub_parent),
        "SubhaloIDMostbound": particles["ParticleIDs"][np.array(sub_start)],
    }
    return particles, groups, subhalos, unwrapped


def write_handmade(root, n_chunks: int = 3, n_catalog_chunks: int | None = 2, seed: int = 3):
    particles, groups, subhalos, _ = build_arrays(seed)
    return write_snapshot(root, header=HEADER, particles=particles, groups=groups,
                          subhalos=subhalos, n_chunks=n_chunks, n_catalog_chunks=n_catalog_chunks)
