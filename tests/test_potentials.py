"""LJ forces vs finite differences of the LJ energy and vs LAMMPS."""

import numpy as np
import pytest
import tensorflow as tf

from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf.data import lammps_driver


def _energy_forces(q, box, lj=potentials.LennardJones()):
  _, nl = partition.allocate(q, box, lj.cutoff)
  e, per_atom, f = potentials.energy_and_forces(tf.constant(q), tf.constant(box), nl, lj)
  return float(e), per_atom.numpy(), f.numpy(), nl


def test_forces_match_finite_differences(liquid_frame):
  q, box = liquid_frame.positions, liquid_frame.box
  lj = potentials.LennardJones()
  energy, per_atom, forces, nl = _energy_forces(q, box, lj)
  assert energy == pytest.approx(per_atom.sum(), rel=1e-12)
  h = 1e-5   # Å; central differences in float64 have O(h²) ≈ 1e-10 relative error
  rng = np.random.default_rng(0)
  for atom in rng.choice(len(q), 5, replace=False):
    for axis in range(3):
      plus, minus = q.copy(), q.copy()
      plus[atom, axis] += h
      minus[atom, axis] -= h
      e_plus = float(potentials.energy(tf.constant(plus), tf.constant(box), nl, lj))
      e_minus = float(potentials.energy(tf.constant(minus), tf.constant(box), nl, lj))
      numeric = -(e_plus - e_minus) / (2 * h)
      assert forces[atom, axis] == pytest.approx(numeric, abs=1e-6, rel=1e-6)


@pytest.mark.parametrize("shift", [False, True])
def test_energy_and_forces_match_lammps(liquid_frame, shift):
  lj = potentials.LennardJones(shift=shift)
  q, box = liquid_frame.positions, liquid_frame.box
  energy, _, forces, _ = _energy_forces(q, box, lj)
  ref_energy, ref_forces = lammps_driver.energy_and_forces(q, box, lj)
  assert energy == pytest.approx(ref_energy, rel=1e-12)
  np.testing.assert_allclose(forces, ref_forces, atol=1e-10)
  # float32: relative error of order 1e-6 of the largest force.
  e32, _, f32, _ = _energy_forces(q.astype(np.float32), box.astype(np.float32), lj)
  assert e32 == pytest.approx(ref_energy, rel=1e-5)
  np.testing.assert_allclose(f32, ref_forces, atol=2e-5 * np.abs(ref_forces).max())


def test_pair_energy_formula():
  """Two atoms at r: energy 4ε[(σ/r)^12 − (σ/r)^6], force magnitude −dV/dr."""
  lj = potentials.LennardJones()
  box = np.full(3, 30.0)
  for r in (3.2, 3.852, 5.0, 6.99):
    q = np.array([[1.0, 1.0, 1.0], [1.0 + r, 1.0, 1.0]])
    energy, _, forces, _ = _energy_forces(q, box, lj)
    s6 = (lj.sigma / r) ** 6
    assert energy == pytest.approx(4 * lj.epsilon * (s6 * s6 - s6), rel=1e-12)
    assert forces[1, 0] == pytest.approx(24 * lj.epsilon * (2 * s6 * s6 - s6) / r, rel=1e-12)
    np.testing.assert_allclose(forces[0], -forces[1], atol=1e-15)
