"""Synthetic TNG snapshots: physically motivated FoF groups and Subfind labels in the real layout.

The model, in TNG50-4-Dark units (particle mass 0.0186755e10 Msun/h, softening 3.12 ckpc/h):
- FoF group sizes from dN/dN_p ~ N_p^-1.9 (default 1,000-150,000 particles), placed without
  overlap in the periodic 35000 ckpc/h box; the largest straddles a box corner.
- Each group: a mildly triaxial NFW host (c from a mass-concentration relation with 0.11 dex
  scatter) out to 1.5-2 R200; satellites with dN/dm ~ m^-1.9 down to 20 particles, their number
  growing with host mass, as NFW haloes cut at their Jacobi radius, spread through the host less
  concentrated than its mass, moving with the host's Jeans dispersion at their radius; a little
  infalling material near escape speed. Velocities: isotropic Jeans dispersion of each component.
- Potential: of the group's own particles (Barnes-Hut tree or exact sum, spline softening).
- Labels by Subfind-style unbinding: each satellite keeps what is bound in its own frame, the
  rest goes to the primary if bound to it, else to fuzz; satellites under 20 particles dissolve.
- Field particles (in no group) fill the box outside groups, after the last group; their
  potential comes from a periodic particle mesh with the mean density removed.
- The catalog is measured from the particles (GroupPos at the potential minimum, SubhaloPos at
  the most-bound particle, SO masses, Vmax, ...).
"""
from deephalo_core.synth.generator import build
from deephalo_core.synth.cli import generate, main

__all__ = ["build", "generate", "main"]
