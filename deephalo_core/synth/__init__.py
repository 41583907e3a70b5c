"""Synthetic TNG snapshots: physically motivated FoF groups and Subfind labels in the real layout.

The model, in TNG50-4-Dark units (particle mass 0.0186755e10 Msun/h, softening 3.12 ckpc/h), with
its statistics calibrated on real N-body FoF groups with SUBFIND (`python -m deephalo_core realism`):
- FoF group sizes from dN/dN_p ~ N_p^-1.9 (default 1,000-150,000 particles), placed without
  overlap in the periodic 35000 ckpc/h box; the largest straddles a box corner.
- Each group: a triaxial NFW host (c from a mass-concentration relation with 0.11 dex scatter;
  b/a ~ 0.85, c/a ~ 0.7 within R200) out to 1.1-1.4 R200, its edge pushed off-centre along its
  main filament (lopsided); radially anisotropic Jeans velocities (beta 0 in the centre to 0.4 far
  out) with the pressure of its surroundings at the edge, capped below the escape speed.
- Satellites from one cumulative mass function per host, N(>m/M) = 1.4 (m / 0.01 M)^-0.9 with
  scatter, up to 30% of the group (mergers of comparable clumps): about one satellite in a
  2,000-particle host, ten in a 20,000-particle one; at d/R200 ~ 0.7-1.4 (half beyond R200, most
  of those along filaments, falling in); NFW haloes cut at their Jacobi radius.
- Tidal streams: half of the satellites inside R200 trail particles along their orbit.
- One to three filaments per host (2-5% of the group) reach out to 1.4-2.4 R200, flowing in;
  a little diffuse infall near escape speed (most groups almost none, a few several per cent).
- Potential: of the group's own particles (Barnes-Hut tree or exact sum, spline softening).
- Labels by Subfind-style unbinding: each satellite keeps what is bound in its own frame, the
  rest (streams, filaments, infall included) goes to the primary if bound to it, else to fuzz;
  satellites under 20 particles dissolve.
- Field particles (in no group) fill the box outside groups, after the last group; their
  potential comes from a periodic particle mesh with the mean density removed.
- The catalog is measured from the particles (GroupPos at the potential minimum, SubhaloPos at
  the most-bound particle, SO masses, Vmax, ...).
"""
from deephalo_core.synth.generator import build
from deephalo_core.synth.cli import generate, main

__all__ = ["build", "generate", "main"]
