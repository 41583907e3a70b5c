"""Reading and writing dark-matter snapshots and their FOF/SUBFIND catalogs: IllustrisTNG, GADGET-4
and AREPO outputs, TNG's simulation.hdf5 and web-API cutouts.

`open_simulation(path, snap=None)` opens any of them (snap None: the last output with particles and
a catalog); `list_outputs(path)` lists the outputs a path holds, reading only headers;
`write_snapshot(root, ...)` writes the TNG file layout.
"""
from deephalo_core.data.types import Halo, Header, OutputInfo
from deephalo_core.data.write import write_snapshot
from deephalo_core.data.simulation import Simulation, list_outputs, open_simulation

__all__ = ["Halo", "Header", "OutputInfo", "Simulation", "list_outputs", "open_simulation",
           "write_snapshot"]
