"""Reading and writing IllustrisTNG dark-matter snapshots, group catalogs and web-API cutouts.

`open_simulation(path)` opens a simulation root, its `output` directory, a `simulation.hdf5`
virtual file or a cutout; `write_snapshot(root, ...)` writes the TNG file layout.
"""
from deephalo_core.data.types import Halo, Header
from deephalo_core.data.write import write_snapshot
from deephalo_core.data.simulation import Simulation, open_simulation

__all__ = ["Halo", "Header", "Simulation", "open_simulation", "write_snapshot"]
