"""Halo load time side by side: our `load_halo` (labels and unwrap included), illustris_python's
`snapshot.loadHalo` for the same fields, and a raw h5py slice of the same bytes.

    python -c "from deephalo_core.data.timing import time_load_halo as t; print(t('SIM', 0))"

The readers take turns within each repeat (in a rotating order) so that they share the machine's
state of the moment: on a busy machine, timing one reader's repeats after another's measures the
load on the machine as much as the reader. Each repeat times a batch of loads long enough
(`min_batch_s`) for the clock and the scheduler not to dominate a small halo's ~20 us.
"""
import time

import h5py
import numpy as np

from deephalo_core.data.simulation import CORE_FIELDS, open_simulation
from deephalo_core.data.snapshot import DM
from deephalo_core.errors import DataError


def _batch_size(fn, min_batch_s: float) -> int:
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    return max(1, min(1000, int(np.ceil(min_batch_s / once))))


def compare_timings(readers: dict, repeats: int = 7, min_batch_s: float = 0.002) -> dict:
    """Median seconds per call of each zero-argument function in `readers`, measured in turns.

    Each function runs once first (warm: files, page cache, allocator), then `repeats` rounds in
    which every function times a batch of calls; the order rotates from round to round.
    """
    names = list(readers)
    for fn in readers.values():
        fn()
    batch = {name: _batch_size(readers[name], min_batch_s) for name in names}
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, n = readers[name], batch[name]
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            times[name].append((time.perf_counter() - t0) / n)
    return {name: float(np.median(values)) for name, values in times.items()}


def time_load_halo(sim_path, group_id: int, repeats: int = 7, snap: int | None = None,
                   min_batch_s: float = 0.002) -> dict:
    """Median seconds per load of one halo's Coordinates, Velocities, ParticleIDs, Potential by
    each reader, and our time as a ratio of theirs. Needs TNG's layout (illustris_python reads only
    that); snap None: the last output."""
    import illustris_python as il

    sim = open_simulation(sim_path, snap)
    files = []
    try:
        if sim.kind != "snapshot":
            raise DataError(f"time_load_halo needs a TNG-layout snapshot; {sim_path} is a "
                            f"{sim.kind}")
        snap, output = sim.snap, sim._particles.where.parent
        start, stop = sim.group_slice(group_id)
        fields = list(CORE_FIELDS)
        particles = sim._particles
        files = [h5py.File(path, "r") for path in particles.paths]
        # The raw reader's best case: files open, datasets looked up and slices worked out once.
        raw_reads = []
        for k, f in enumerate(files):
            lo = max(start, particles.chunk_starts[k]) - particles.chunk_starts[k]
            hi = min(stop, particles.chunk_ends[k]) - particles.chunk_starts[k]
            if hi > lo:
                raw_reads += [(f[DM][name], slice(int(lo), int(hi))) for name in fields]

        def raw():  # keeps what it read, as any reader returning the fields must
            return [dataset[rows] for dataset, rows in raw_reads]

        medians = compare_timings({
            "ours_s": lambda: sim.load_halo(group_id),
            "illustris_s": lambda: il.snapshot.loadHalo(str(output), snap, int(group_id), "dm",
                                                        fields),
            "raw_h5py_s": raw,
        }, repeats=repeats, min_batch_s=min_batch_s)
    finally:
        for f in files:
            f.close()
        sim.close()
    result = {"group_id": int(group_id), "n_particles": stop - start, **medians}
    result["ratio_vs_illustris"] = result["ours_s"] / result["illustris_s"]
    result["ratio_vs_raw"] = result["ours_s"] / result["raw_h5py_s"]
    return result
