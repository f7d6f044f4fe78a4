"""TF velocity Verlet vs LAMMPS, energy drift, CSVR thermostat, reallocation."""

import numpy as np
import pytest
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import integrate
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import studies
from mdnet_tf import units
from mdnet_tf import verlet
from mdnet_tf.data import lammps_driver

MASS = units.ARGON_MASS
LJ = potentials.LennardJones()   # the paper's argon, as the smoke data


@pytest.fixture(scope="module")
def lammps_200(liquid_frame):
  f = liquid_frame
  return lammps_driver.run_from_state(f.positions, f.velocities, f.box, 1.0, 200, 50, lj=LJ,
                                      mass=MASS)


def test_float64_matches_lammps_to_roundoff(liquid_frame, lammps_200):
  f = liquid_frame
  out = verlet.VerletSimulator(1.0, mass=MASS, lj=LJ, dtype=tf.float64).run(
      f.positions, f.velocities * MASS, f.box, 200, 50)
  np.testing.assert_allclose(out.positions, lammps_200["positions"], atol=1e-9)
  np.testing.assert_allclose(out.momenta / MASS, lammps_200["velocities"], atol=1e-12)
  np.testing.assert_allclose(out.total, lammps_200["etotal"], rtol=1e-10)
  np.testing.assert_allclose(out.temperature, lammps_200["temp"], rtol=1e-10)


def test_float32_matches_lammps(liquid_frame, lammps_200):
  """200 steps of 1 fs in float32 (XLA): positions to 1e-3 Å, energy to 1e-5."""
  f = liquid_frame
  out = verlet.VerletSimulator(1.0, mass=MASS, lj=LJ, dtype=tf.float32, jit_compile=True).run(
      f.positions, f.velocities * MASS, f.box, 200, 50)
  assert np.abs(out.positions - lammps_200["positions"]).max() < 1e-3
  # float32 sums of ~1e3 terms of ~1 kcal/mol: relative error ~1e-6.
  np.testing.assert_allclose(out.total, lammps_200["etotal"], rtol=1e-5)


def test_energy_drift_is_bounded(liquid_frame):
  """NVE, shifted LJ (no energy jumps at r_c), 2000 fs at 1 fs in float32.

  Verlet's total energy fluctuates at O(Δt²) without drifting; the bound is 1e-4
  of |E| (≈ 0.03 kcal/mol for 256 atoms, ≈ 1e-4 kcal/mol/atom).
  """
  f = liquid_frame
  sim = verlet.VerletSimulator(1.0, mass=MASS, lj=potentials.LennardJones(shift=True))
  out = sim.run(f.positions, f.velocities * MASS, f.box, 2000, 100)
  drift = np.abs(out.total - out.total[0]).max()
  assert drift < 1e-4 * abs(out.total[0]), drift
  # Total momentum stays zero (LAMMPS removed it at the start).
  assert np.abs(out.momenta[-1].sum(0)).max() < 1e-3 * np.abs(out.momenta[-1]).max()


def test_csvr_kinetic_energy_is_canonical():
  """With τ ≪ Δt, CSVR draws K from Gamma(N_f/2, k_B T): check mean and variance."""
  rng = np.random.default_rng(0)
  n, temperature = 64, 80.0
  p = tf.constant(rng.normal(0, 1, (n, 3)), tf.float64)
  n_f = 3 * n - 3
  kt = units.BOLTZMANN * temperature
  draw = tf.function(lambda seed: integrate.kinetic_energy(
      integrate.csvr_rescale(p, MASS, temperature, 100.0, 1e-3, seed), MASS))
  kinetic = np.array([float(draw(tf.constant([s, 7]))) for s in range(3000)])
  assert kinetic.mean() == pytest.approx(n_f / 2 * kt, rel=0.02)
  assert kinetic.var() == pytest.approx(n_f / 2 * kt ** 2, rel=0.1)


def test_csvr_thermostat_reaches_target(liquid_frame):
  f = liquid_frame
  sim = verlet.VerletSimulator(2.0, mass=MASS, lj=LJ, thermostat=verlet.CSVR(120.0, tau_fs=100.0))
  out = sim.run(f.positions, f.velocities * MASS, f.box, 3000, 100, seed=3)
  late = out.temperature[len(out.temperature) // 2:]
  # 256 atoms: canonical T fluctuations are T·sqrt(2/N_f) ≈ 7 K per sample.
  assert late.mean() == pytest.approx(120.0, abs=5.0)
  assert out.temperature[0] < 100.0


def test_overflow_reallocates_without_changing_the_result(liquid_frame):
  f = liquid_frame
  reference = verlet.VerletSimulator(1.0, mass=MASS, lj=LJ, dtype=tf.float64, skin=0.0).run(
      f.positions, f.velocities * MASS, f.box, 20)
  sim = verlet.VerletSimulator(1.0, mass=MASS, lj=LJ, dtype=tf.float64, skin=0.0)
  spec, _ = partition.allocate(f.positions, f.box, 7.0, 0.0)
  sim.spec = spec._replace(max_neighbors=5, cell_capacity=3)  # far too small
  out = sim.run(f.positions, f.velocities * MASS, f.box, 20)
  assert sim.spec.max_neighbors > 5 and sim.spec.cell_capacity > 3
  np.testing.assert_array_equal(out.positions, reference.positions)


def test_blow_up_and_bad_input_are_clear_errors(liquid_frame):
  f = liquid_frame
  with pytest.raises(errors.MDNetError, match="blew up"):
    verlet.VerletSimulator(400.0, mass=MASS, lj=LJ).run(f.positions, f.velocities * MASS, f.box, 50)
  q = f.positions.copy()
  q[3, 0] = np.nan
  with pytest.raises(errors.InputError, match="non-finite"):
    verlet.VerletSimulator(1.0, mass=MASS, lj=LJ).run(q, f.velocities * MASS, f.box, 5)
  with pytest.raises(errors.InputError, match="box edge"):
    verlet.VerletSimulator(1.0, mass=MASS, lj=LJ).run(f.positions, f.velocities * MASS, [15.0, 30, 30], 5)


def test_error_cost_one_step_errors_against_lammps(liquid_frame):
  """The error-against-cost study's one-step errors (positions Å, velocities
  Å/fs): float64 Verlet at 1 fs is LAMMPS to round-off, and at 16 fs its
  velocity error is what a second-order step leaves (~1e-6 Å/fs here, far above
  round-off), so a unit slip in either path (p vs v) would show."""
  f = liquid_frame
  p = f.velocities * MASS
  truth = [studies.lammps_truth(f.positions, p, f.box, [1, 16], MASS, LJ)]
  exact = studies.one_step_errors([studies.verlet_state(f.positions, p, f.box, 1, 1, MASS, LJ)],
                                  truth, 1)
  assert exact["one_step_rmse_A"] < 1e-10 and exact["one_step_velocity_rmse_A_fs"] < 1e-12
  coarse = studies.one_step_errors(
      [studies.verlet_state(f.positions, p, f.box, 16, 1, MASS, LJ)], truth, 16)
  assert 1e-5 < coarse["one_step_rmse_A"] < 1e-3
  assert 1e-8 < coarse["one_step_velocity_rmse_A_fs"] < 1e-5
  with pytest.raises(errors.MDNetError, match="failed"):
    studies.one_step_errors([None], truth, 16)
