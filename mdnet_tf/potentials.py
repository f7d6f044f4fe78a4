"""Lennard-Jones energy and analytic forces on a dense neighbor list (or, with
`pair_forces`, on compact pairs (i, j) with i < j).

V(r) = 4 ε [(σ/r)^12 − (σ/r)^6] for r < r_c, 0 beyond (LAMMPS `pair_style lj/cut`).
By default the energy is not shifted (the LAMMPS default); with `shift=True`
V(r_c) is subtracted (`pair_modify shift yes`), which leaves forces and dynamics
unchanged but removes the energy jumps when pairs cross r_c, so total-energy
drift measures the integrator. Defaults are the paper's argon.

Shapes and units:
  positions: [N, 3] float, Å.  box: [3] float, Å.
  neighbors.indices: [N, K] int32, sentinel N (see partition.py).
  energy: [] kcal/mol.  per-atom energy: [N] kcal/mol.  forces: [N, 3] kcal/mol/Å.
"""

from typing import NamedTuple

import tensorflow as tf

from mdnet_tf import space
from mdnet_tf import units


class LennardJones(NamedTuple):
  """Parameters of a single-species LJ potential."""
  epsilon: float = units.ARGON_EPSILON   # kcal/mol
  sigma: float = units.ARGON_SIGMA       # Å
  cutoff: float = units.ARGON_CUTOFF     # Å
  shift: bool = False                    # subtract V(cutoff) from the energy

  def lammps_commands(self):
    """The LAMMPS pair commands that define the same potential."""
    return [f"pair_style lj/cut {float(self.cutoff)!r}",
            f"pair_coeff 1 1 {float(self.epsilon)!r} {float(self.sigma)!r}",
            f"pair_modify shift {'yes' if self.shift else 'no'}"]

  def energy_at_cutoff(self):
    """V(r_c) in kcal/mol (what `shift=True` subtracts per pair)."""
    s6 = (self.sigma / self.cutoff) ** 6
    return 4.0 * self.epsilon * (s6 * s6 - s6)


def _pair_terms(positions, box, indices, lj):
  """Pair displacements [N, K, 3], r² [N, K] (1 where masked) and the mask of
  real pairs within r_c, for a dense neighbor list."""
  num_atoms = tf.shape(positions)[0]
  valid = indices < num_atoms
  neighbor_pos = tf.gather(positions, tf.minimum(indices, num_atoms - 1))
  d = space.displacement(positions[:, None, :], neighbor_pos, box)   # [N, K, 3]
  r2 = tf.reduce_sum(d * d, axis=-1)
  within = valid & (r2 < lj.cutoff ** 2)
  return d, tf.where(within, r2, tf.ones_like(r2)), within


def pair_energy(r2, within, lj):
  """V(r) of pairs with squared distances r2 [...] Å² where `within` (else 0), kcal/mol.

  `within` must exclude r2 = 0 (padded slots) and r ≥ r_c; with lj.shift the
  energy at the cutoff is subtracted.
  """
  safe_r2 = tf.where(within, r2, tf.ones_like(r2))
  s6 = (lj.sigma ** 2 / safe_r2) ** 3
  offset = lj.energy_at_cutoff() if lj.shift else 0.0
  return tf.where(within, 4.0 * lj.epsilon * (s6 * s6 - s6) - offset, tf.zeros_like(r2))


def pair_force_over_r(r2, within, lj):
  """F(r)/r = 24ε(2(σ/r)¹² − (σ/r)⁶)/r² of pairs with squared distances r2 [...]
  Å² where `within` (else 0), kcal/mol/Å²: the force on i is this times r_i − r_j."""
  safe_r2 = tf.where(within, r2, tf.ones_like(r2))
  s6 = (lj.sigma ** 2 / safe_r2) ** 3
  return tf.where(within, 24.0 * lj.epsilon * (2.0 * s6 * s6 - s6) / safe_r2, tf.zeros_like(r2))


def energy_and_forces(positions, box, neighbors, lj):
  """Total energy [], per-atom energy [N] and forces [N, 3] (analytic).

  Per-atom energy splits each pair half-half, as LAMMPS `compute pe/atom` does.
  The neighbor list must be a full list (both i→j and j→i present).
  """
  positions = tf.convert_to_tensor(positions)
  box = tf.cast(box, positions.dtype)
  d, r2, within = _pair_terms(positions, box, neighbors.indices, lj)
  per_atom = 0.5 * tf.reduce_sum(pair_energy(r2, within, lj), axis=1)
  forces = tf.reduce_sum(pair_force_over_r(r2, within, lj)[..., None] * d, axis=1)
  return tf.reduce_sum(per_atom), per_atom, forces


def energy(positions, box, neighbors, lj):
  """Total LJ energy in kcal/mol (differentiable in positions)."""
  return energy_and_forces(positions, box, neighbors, lj)[0]


def pair_forces(positions, box, i, j, lj, switch=0.0):
  """LJ forces [N, 3] kcal/mol/Å over the compact pairs (i [E], j [E]) (i < j,
  partition.pairs), with the pair force
  F(r) = 24ε(2(σ/r)¹² − (σ/r)⁶)/r taken to zero at r_c by the switch
  s(t) = 1 − 10t³ + 15t⁴ − 6t⁵, t = (r − r_c + w)/w on [r_c − w, r_c]
  (w = `switch` Å; 0: truncated at r_c as LAMMPS lj/cut).

  Why a switch (models/symplectic.py): with the truncated force its implicit equations have a
  discontinuous right-hand side, and a step whose midpoint pair sits within
  a few µm of r_c has no solution (measured at 64 fs: a 1 ns roll-out stopped
  after 1493 steps, and moving one atom of that pair by 5e-6 Å across the gap
  turned converged solves into failed ones). The switched force is C² in r,
  central and pairwise, so it has a potential and S stays a smooth
  generating function. Its impulse differs from lj/cut's only for pairs
  within w of r_c, by at most |F(r_c)|·w/2 of energy per crossing."""
  d = space.minimum_image(tf.gather(positions, i) - tf.gather(positions, j), box)
  r2 = tf.reduce_sum(d * d, axis=-1)
  magnitude = pair_force_over_r(r2, r2 < lj.cutoff ** 2, lj)     # 0 beyond r_c
  if switch > 0.0:
    t = tf.clip_by_value((tf.sqrt(r2) - (lj.cutoff - switch)) / switch, 0.0, 1.0)
    magnitude *= 1.0 - t * t * t * (10.0 - 15.0 * t + 6.0 * t * t)
  pair = magnitude[:, None] * d                                               # on i
  n = tf.shape(positions)[0]
  return (tf.math.unsorted_segment_sum(pair, i, n)
          - tf.math.unsorted_segment_sum(pair, j, n))
