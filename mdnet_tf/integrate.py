"""Integrators in TensorFlow: velocity Verlet (paper Appendix A), thermostats
(CSVR, Langevin) and energy rescaling of momenta.

Velocity Verlet with momenta, one force evaluation per step (the forces at the
end of a step are the forces at the start of the next):
  p(t+½Δt) = p(t) + ½ F(t) Δt
  q(t+Δt)  = q(t) + p(t+½Δt)/m Δt
  p(t+Δt)  = p(t+½Δt) + ½ F(t+Δt) Δt
with F in kcal/mol/Å, Δt in fs and p in g/mol·Å/fs (units.FORCE_TO_ACCEL).

CSVR (Bussi, Donadio & Parrinello 2007) rescales all momenta by one factor per
step so that the kinetic energy samples the canonical distribution; it needs
only Gaussian draws, so it compiles under XLA (the χ² draw is a sum of squares).
Langevin is the exact Ornstein–Uhlenbeck update of the momenta. Energy
rescaling (FlashMD) scales momenta about the centre of mass so that kinetic +
potential energy hits a target (the NVE total of a learned roll-out).

Shapes and units:
  positions: [N, 3] Å (unwrapped).  momenta: [N, 3] g/mol·Å/fs.
  forces: [N, 3] kcal/mol/Å.  mass: scalar g/mol.  dt_fs: scalar fs.
"""

import tensorflow as tf

from mdnet_tf import units


def kinetic_energy(momenta, mass):
  """Kinetic energy in kcal/mol of momenta [N, 3] with mass in g/mol."""
  return units.kinetic_energy_from_momenta_sq(tf.reduce_sum(momenta * momenta), mass)


def degrees_of_freedom(num_atoms):
  """3N − 3: total momentum is conserved (LAMMPS `compute temp` convention)."""
  return 3 * num_atoms - 3


def temperature(momenta, mass):
  """Instantaneous temperature in K of momenta [N, 3] (3N − 3 degrees of freedom)."""
  n = tf.cast(tf.shape(momenta)[0], momenta.dtype)
  return units.temperature_from_kinetic(kinetic_energy(momenta, mass), 3.0 * n - 3.0)


def half_kick(momenta, forces, dt_fs):
  """p + ½ F Δt: [N, 3] g/mol·Å/fs."""
  return momenta + (0.5 * dt_fs * units.FORCE_TO_ACCEL) * forces


def drift(positions, momenta, dt_fs, mass):
  """q + p/m Δt: [N, 3] Å."""
  return positions + momenta * (dt_fs / mass)


def verlet_step(positions, momenta, forces, dt_fs, mass, force_fn):
  """One velocity-Verlet step (the only one in the package).

  Args:
    positions: [N, 3] Å.  momenta: [N, 3] g/mol·Å/fs.  forces: [N, 3]
      kcal/mol/Å at `positions`.  dt_fs: fs.  mass: g/mol.
    force_fn: positions [N, 3] -> (forces [N, 3], aux), aux anything the caller
      wants back from the force evaluation (energy, neighbor list, ...).
  Returns:
    (positions, momenta, forces, aux) at t + dt.
  """
  half = half_kick(momenta, forces, dt_fs)
  positions = drift(positions, half, dt_fs, mass)
  forces, aux = force_fn(positions)
  return positions, half_kick(half, forces, dt_fs), forces, aux


def csvr_rescale(momenta, mass, target_temperature, dt_fs, tau_fs, seed):
  """Canonical sampling through velocity rescaling (Bussi et al. 2007, Eq. A7).

  Args:
    momenta: [N, 3] g/mol·Å/fs (total momentum should be zero).
    mass: g/mol.  target_temperature: K.  dt_fs: interval since the last call,
    fs.  tau_fs: coupling time, fs.  seed: [2] int32 stateless seed.
  Returns:
    [N, 3] rescaled momenta.
  """
  dtype = momenta.dtype
  n_f = tf.cast(3 * tf.shape(momenta)[0] - 3, dtype)
  kinetic = kinetic_energy(momenta, mass)
  target_kinetic = 0.5 * n_f * units.BOLTZMANN * tf.cast(target_temperature, dtype)
  c = tf.exp(-tf.cast(dt_fs, dtype) / tf.cast(tau_fs, dtype))
  noise = tf.random.stateless_normal(tf.shape(momenta), seed, dtype=dtype)
  flat = tf.reshape(noise, [-1])
  r1 = flat[0]
  # Σ_{i=2}^{N_f} R_i²: N_f − 1 squared standard normals (flat has 3N ≥ N_f).
  rest = tf.reduce_sum(tf.square(flat[1:3 * tf.shape(momenta)[0] - 3]))
  ratio = target_kinetic / (n_f * tf.maximum(kinetic, 1e-30))
  alpha2 = (c + (1.0 - c) * ratio * (r1 * r1 + rest)
            + 2.0 * r1 * tf.sqrt(c * (1.0 - c) * ratio))
  alpha = tf.sign(r1 + tf.sqrt(c / ((1.0 - c) * ratio))) * tf.sqrt(alpha2)
  return momenta * alpha


def langevin(momenta, mass, temperature, dt_fs, tau_fs, seed):
  """Exact Ornstein–Uhlenbeck update of momenta over dt_fs (friction 1/tau_fs).

  p ← c p + sqrt((1 − c²) m k_B T) ξ, c = exp(−dt/τ); the variance is in
  (g/mol·Å/fs)²: m k_B T / MVV_TO_ENERGY.  seed: [2] int32 stateless seed.
  """
  dtype = momenta.dtype
  c = tf.exp(-tf.cast(dt_fs, dtype) / tf.cast(tau_fs, dtype))
  sigma = tf.sqrt((1.0 - c * c) * mass * units.BOLTZMANN * tf.cast(temperature, dtype)
                  / units.MVV_TO_ENERGY)
  noise = tf.random.stateless_normal(tf.shape(momenta), seed, dtype=dtype)
  return c * momenta + sigma * noise


def rescale_to_energy(momenta, mass, potential, target_total, bounds):
  """Momenta rescaled about the centre of mass so that K + U = target_total.

  p ← P/N + α (p − P/N), α² = (E0 − U − K_com) / K_rel, α kept in `bounds`.
  When E0 − U − K_com ≤ 0 no α reaches E0 ("infeasible"): α takes the lower
  bound (the largest feasible move towards E0).

  Args:
    momenta: [N, 3] g/mol·Å/fs (float64).  mass: g/mol (one species).
    potential: [] kcal/mol at the current positions.  target_total: [] kcal/mol.
    bounds: (α_min, α_max).
  Returns:
    (momenta [N, 3], α [], infeasible [] bool, clipped [] bool). Total momentum
    is unchanged; with α inside the bounds K + U equals target_total.
  """
  com = tf.reduce_mean(momenta, axis=0, keepdims=True)
  relative = momenta - com
  k_rel = kinetic_energy(relative, mass)
  k_com = kinetic_energy(momenta, mass) - k_rel
  wanted = target_total - potential - k_com
  infeasible = wanted <= 0.0
  exact = tf.sqrt(tf.maximum(wanted, 0.0) / tf.maximum(k_rel, 1e-300))
  lo, hi = (tf.constant(b, momenta.dtype) for b in bounds)
  alpha = tf.where(infeasible, lo, tf.clip_by_value(exact, lo, hi))
  clipped = tf.logical_and(tf.logical_not(infeasible), tf.not_equal(alpha, exact))
  return com + alpha * relative, alpha, infeasible, clipped
