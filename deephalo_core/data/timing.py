"""Halo load time side by side: our `load_halo` (labels and unwrap included), illustris_python's
`snapshot.loadHalo` for the same fields, and a raw h5py slice of the same bytes.

    python -c "from deephalo_core.data.timing import time_load_halo as t; print(t('SIM', 0))"
"""
import time

import h5py
import numpy as np

from deephalo_core.data.simulation import CORE_FIELDS, open_simulation
from deephalo_core.data.snapshot import DM, chunk_path
from deephalo_core.errors import DataError


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm: first touch of files and page cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_load_halo(sim_path, group_id: int, repeats: int = 7, snap: int = 99) -> dict:
    """Median seconds per load of one halo's Coordinates, Velocities, ParticleIDs, Potential by
    each reader, and our time as a ratio of theirs. Needs a chunked snapshot (not a cutout)."""
    import illustris_python as il

    sim = open_simulation(sim_path, snap)
    try:
        if sim.kind != "snapshot":
            raise DataError(f"time_load_halo needs a chunked snapshot; {sim_path} is a {sim.kind}")
        output = sim.path / "output"
        start, stop = sim.group_slice(group_id)
        fields = list(CORE_FIELDS)
        particles = sim._particles
        files = [h5py.File(chunk_path(output, snap, k), "r") for k in range(particles.n_chunks)]
        # The raw reader's best case: files open, datasets looked up and slices worked out once.
        raw_reads = []
        for k, f in enumerate(files):
            lo = max(start, particles.chunk_starts[k]) - particles.chunk_starts[k]
            hi = min(stop, particles.chunk_ends[k]) - particles.chunk_starts[k]
            if hi > lo:
                raw_reads += [(f[DM][name], slice(int(lo), int(hi))) for name in fields]

        def raw():  # keeps what it read, as any reader returning the fields must
            return [dataset[rows] for dataset, rows in raw_reads]

        result = {
            "group_id": int(group_id), "n_particles": stop - start,
            "ours_s": _median_seconds(lambda: sim.load_halo(group_id), repeats),
            "illustris_s": _median_seconds(
                lambda: il.snapshot.loadHalo(str(output), snap, int(group_id), "dm", fields),
                repeats),
            "raw_h5py_s": _median_seconds(raw, repeats),
        }
        for f in files:
            f.close()
    finally:
        sim.close()
    result["ratio_vs_illustris"] = result["ours_s"] / result["illustris_s"]
    result["ratio_vs_raw"] = result["ours_s"] / result["raw_h5py_s"]
    return result
