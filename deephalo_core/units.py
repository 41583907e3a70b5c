"""Physical constants in TNG code units (lengths ckpc/h, masses 1e10 Msun/h, velocities km/s)."""

G = 43007.1  # (ckpc/h) (km/s)^2 / (1e10 Msun/h)
RHO_CRIT0 = 2.775e-8  # critical density at z=0, (1e10 Msun/h) / (ckpc/h)^3
H0 = 0.1  # km/s per ckpc/h (100 h km/s/Mpc)

# TNG50-4-Dark, the run the synthetic default imitates.
TNG50_4_DARK = dict(
    box_size=35000.0,
    particle_mass=0.0186755,
    softening=3.12,
    hubble_param=0.6774,
    omega0=0.3089,
    omega_baryon=0.0486,
    omega_lambda=0.6911,
)

UNIT_LENGTH_CM = 3.085678e21
UNIT_MASS_G = 1.989e43
UNIT_VELOCITY_CM_S = 1e5
