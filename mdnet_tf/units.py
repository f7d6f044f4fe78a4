"""LAMMPS `real` units: the single table of units and conversion constants.

| quantity      | unit              | name in code          |
|---------------|-------------------|-----------------------|
| length        | Å                 | positions, box, *_angstrom |
| time          | fs                | dt_fs, time_fs        |
| mass          | g/mol             | mass, mass_amu        |
| energy        | kcal/mol          | energy, epsilon       |
| force         | kcal/mol/Å        | forces                |
| velocity      | Å/fs              | velocities            |
| momentum      | g/mol·Å/fs        | momenta (p = m v)     |
| temperature   | K                 | temperature           |
| pressure      | atm               | (LAMMPS `real`)       |

Conversions (all exact up to the constants LAMMPS itself uses):
  acceleration [Å/fs²]   = force [kcal/mol/Å] / mass [g/mol] * FORCE_TO_ACCEL
  dp [g/mol·Å/fs]        = force [kcal/mol/Å] * dt [fs] * FORCE_TO_ACCEL
  kinetic energy [kcal/mol] = ½ m v² [g/mol·Å²/fs²] * MVV_TO_ENERGY
"""

UNIT_STYLE = "real"

UNITS = {
    "length": "angstrom",
    "time": "fs",
    "mass": "g/mol",
    "energy": "kcal/mol",
    "force": "kcal/mol/angstrom",
    "velocity": "angstrom/fs",
    "momentum": "g/mol*angstrom/fs",
    "temperature": "K",
    "pressure": "atm",
}

# 1 kcal/mol/Å divided by 1 g/mol, expressed in Å/fs² (LAMMPS force->ftm2v).
FORCE_TO_ACCEL = 1.0 / 48.88821291 / 48.88821291
# ½ m v² in g/mol·Å²/fs² -> kcal/mol (LAMMPS mvv2e).
MVV_TO_ENERGY = 48.88821291 * 48.88821291
# Boltzmann constant in kcal/mol/K (LAMMPS boltz for `real`).
BOLTZMANN = 0.0019872067
# 1 atm in kcal/mol/Å³ is not needed by the model; pressure stays in LAMMPS.
BAR_TO_ATM = 1.0 / 1.01325

# Lennard-Jones argon, the paper's system.
ARGON_MASS = 39.948        # g/mol
ARGON_EPSILON = 0.2374     # kcal/mol
ARGON_SIGMA = 3.432        # Å
ARGON_CUTOFF = 7.0         # Å
ARGON_DENSITY = 0.0211     # atoms/Å³, liquid argon near 80 K


def kinetic_energy_from_momenta_sq(momenta_sq_sum, mass):
  """Kinetic energy [kcal/mol] from Σ|p|² [(g/mol·Å/fs)²] and mass [g/mol]."""
  return 0.5 * momenta_sq_sum / mass * MVV_TO_ENERGY


def temperature_from_kinetic(kinetic_energy, degrees_of_freedom):
  """Temperature [K] from kinetic energy [kcal/mol]: T = 2K / (N_f k_B)."""
  return 2.0 * kinetic_energy / (degrees_of_freedom * BOLTZMANN)
