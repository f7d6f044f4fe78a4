"""A symplectic, time-reversible learned step through a generating function (issue 13).

With midpoints q̄ = (q + q′)/2, p̄ = (p + p′)/2 a scalar S(q̄, p̄) defines the step
(q, p) → (q′, p′) implicitly:

    q′ − q = ∂S/∂p̄,      p′ − p = −∂S/∂q̄.

Any smooth S gives a symplectic map (its Jacobian is the Cayley transform
(I − ½JH)⁻¹(I + ½JH) of the Hessian H of S, which preserves J); S even in p̄
gives a time-reversible one; S depending on positions only through differences
q̄_i − q̄_j gives Σ Δp = 0 exactly. Here

    S = Δt·[Σ_i |p̄_i|²/2m + U_LJ(q̄)] + δS(q̄, p̄)

(energies in g/mol·Å²/fs², i.e. U·FORCE_TO_ACCEL), so δS = 0 is the implicit
midpoint rule with the exact LJ potential, and the network only learns the
correction that a large Δt needs. δS is a sum over the periodic pairs within
r_c and over atoms:

    δS = s_q s_p · [Σ_{i<j} f_c(r_ij) φ(x_ij) + Σ_i ψ(y_i)]

with features that are invariant under rotations and translations and even in
the momenta:
    x_ij = ((1/r − ⟨1/r⟩)/σ_{1/r},  (u·r̂)²/s_u² − 1,  |u|²/(3 s_u²) − 1),
           u = p̄_i − p̄_j (relative momentum; its projection on the bond and
           its norm carry the pair's collision kinematics, squared so that S is
           even in p̄),
    y_i  = |p̄_i|²/(3 s_p̄²) − 1  (each atom's own kinetic term),
f_c(r) = ½(cos(π r/r_c) + 1) takes a pair's term smoothly to zero at the cutoff
(a pair crossing r_c would otherwise make S jump, and the map would not be
smooth), φ, ψ are swish MLPs (smooth, so S has the second derivatives that
training and the implicit solve use) whose last layers start at zero, and the
scales are the training data's statistics (normalization.NormStats), fixed as
MDNet's are.

Training needs no solve: on a true pair the midpoints are known, and the loss
is MDNet's normalized MSE of (∂S/∂p̄, −∂S/∂q̄) against (Δq, Δp), with weight
gradients through the inner derivatives (nested GradientTape). A prediction
solves the implicit equations by damped fixed-point iteration from a velocity
Verlet predictor, until the update is below tolerance; not converging within
max_iter is reported, never hidden.

Shapes and units: positions [N, 3] Å, momenta [N, 3] g/mol·Å/fs, box [3] Å;
S in g/mol·Å²/fs (action); pairs (i, j) [E] int32 with i < j.
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import space
from mdnet_tf import units
from mdnet_tf.models import mlp

FAMILY = "mdnet_symplectic"

# Measured on a small-preset validation pair at 64 fs (864 atoms): δS = 0 converges
# to 1e-6 in 33 plain iterations (28 with β = 0.5); after 100 training steps plain
# iteration oscillates (no convergence in 60) while β = 0.5 converges in 28.
DAMPING = 0.5
MAX_ITER = 100


class SolveResult(NamedTuple):
  """The solved step: positions, momenta, iterations used, converged (bool)
  and the last update's size (positions Å, momenta in units of s_p)."""
  positions: tf.Tensor
  momenta: tf.Tensor
  iterations: tf.Tensor
  converged: tf.Tensor
  last_change: tf.Tensor


class GeneratingFunction(tf.Module):
  """S(q̄, p̄) of one Δt (see the module doc); config: an MDNetConfig (Δt, mass,
  cutoff, LJ parameters, statistics)."""

  def __init__(self, config, hidden=(64, 64), seed=0, name=None):
    super().__init__(name=name or "mdnet_symplectic")
    self.config = config
    sizes = list(hidden) + [1]
    self.pair_net = mlp.MLP(3, sizes, activation="swish", seed=seed, name="phi_pair")
    self.atom_net = mlp.MLP(1, sizes, activation="swish", seed=seed + 1, name="psi_atom")
    for net in (self.pair_net, self.atom_net):   # δS = 0 at the start: implicit midpoint
      net.weights[-1].assign(tf.zeros_like(net.weights[-1]))

  @property
  def scales(self):
    s = self.config.stats
    return s.dq_scale, s.dp_scale

  def correction(self, qbar, pbar, box, i, j):
    """δS(q̄, p̄) [] (same dtype as q̄) over the pairs (i, j)."""
    c, s = self.config, self.config.stats
    dtype = qbar.dtype
    d = space.minimum_image(tf.gather(qbar, i) - tf.gather(qbar, j), box)
    r = tf.sqrt(tf.reduce_sum(d * d, axis=-1))
    u = tf.gather(pbar, i) - tf.gather(pbar, j)
    su2 = tf.constant(s.rel_mom_scale ** 2, dtype)
    along = tf.reduce_sum(u * d, axis=-1) / r
    x = tf.stack([(1.0 / r - s.inv_r_mean) / s.inv_r_std, along * along / su2 - 1.0,
                  tf.reduce_sum(u * u, axis=-1) / (3.0 * su2) - 1.0], axis=-1)
    envelope = 0.5 * (tf.cos(math.pi * r / c.cutoff_angstrom) + 1.0)
    envelope = tf.where(r < c.cutoff_angstrom, envelope, tf.zeros_like(envelope))
    with mlp.precision(tf.float64 if dtype == tf.float64 else tf.float32):
      pair = tf.cast(self.pair_net(x)[:, 0], dtype)
      y = tf.reduce_sum(pbar * pbar, axis=-1, keepdims=True) / (3.0 * s.momentum_scale ** 2)
      atom = tf.cast(self.atom_net(y - 1.0)[:, 0], dtype)
    return s.dq_scale * s.dp_scale * (tf.reduce_sum(envelope * pair) + tf.reduce_sum(atom))

  def baseline(self, qbar, pbar, box, i, j):
    """Δt·H(q̄, p̄) [], the implicit-midpoint part of S (exact LJ over the pairs)."""
    c = self.config
    potential = lj_energy(qbar, box, i, j, c.lj())
    kinetic = tf.reduce_sum(pbar * pbar) / (2.0 * c.mass_amu)
    return c.dt_fs * (kinetic + potential * units.FORCE_TO_ACCEL)

  def action(self, qbar, pbar, box, i, j):
    return self.baseline(qbar, pbar, box, i, j) + self.correction(qbar, pbar, box, i, j)

  def flow(self, qbar, pbar, box, i, j):
    """(Δq, Δp) = (∂S/∂p̄, −∂S/∂q̄) at the midpoints, [N, 3] each."""
    with tf.GradientTape() as tape:
      tape.watch([qbar, pbar])
      s = self.action(qbar, pbar, box, i, j)
    grad_q, grad_p = (tf.convert_to_tensor(g) for g in tape.gradient(
        s, [qbar, pbar], unconnected_gradients=tf.UnconnectedGradients.ZERO))
    return grad_p, -grad_q


def lj_energy(positions, box, i, j, lj):
  """Exact LJ energy [] kcal/mol over the pairs (i, j) (those beyond r_c count 0)."""
  d = space.minimum_image(tf.gather(positions, i) - tf.gather(positions, j), box)
  r2 = tf.reduce_sum(d * d, axis=-1)
  return tf.reduce_sum(potentials.pair_energy(r2, r2 < lj.cutoff ** 2, lj))


def midpoint_pairs(qbar, box, cutoff):
  """Pairs (i, j), i < j, within the cutoff at the midpoint positions."""
  return partition.pairs(tf.stop_gradient(qbar), box, cutoff)


def teacher_forced(model, q, p, dq, dp, box):
  """(∂S/∂p̄, −∂S/∂q̄) at the true midpoints q + Δq/2, p + Δp/2 of a pair whose
  displacements (Δq, Δp) are known (no solve)."""
  qbar, pbar = q + 0.5 * dq, p + 0.5 * dp
  i, j = midpoint_pairs(qbar, box, model.config.cutoff_angstrom)
  return model.flow(qbar, pbar, box, i, j)


def loss_terms(model, q, p, dq, dp, box):
  """(loss, position term, momentum term) of one true pair (no solve).

  MDNet's normalized MSE: the predicted (∂S/∂p̄, −∂S/∂q̄) at the true midpoints
  against the true (Δq, Δp) (given as displacements, exact before any cast),
  each over its training-set scale (s_q, s_p).
  """
  dq_pred, dp_pred = teacher_forced(model, q, p, dq, dp, box)
  s_q, s_p = model.scales
  lq = tf.reduce_mean(tf.square((dq_pred - dq) / s_q))
  lp = tf.reduce_mean(tf.square((dp_pred - dp) / s_p))
  return lq + lp, lq, lp


def predict(model, q, p, box, tolerance=1e-6, max_iter=MAX_ITER):
  """(Δq, Δp) float32 of one solved step, the state in float64 (a float32
  position of ~20 Å would round Δq by 2e-6 Å); raises InvalidArgument if the
  solve does not converge."""
  f64 = lambda x: tf.cast(x, tf.float64)
  out = solve(model, f64(q), f64(p), f64(box), tolerance, max_iter)
  tf.debugging.assert_equal(out.converged, True, message=(
      "the implicit step did not converge within max_iter iterations"))
  return (tf.cast(out.positions - f64(q), tf.float32),
          tf.cast(out.momenta - f64(p), tf.float32))


def solve(model, q, p, box, tolerance=1e-6, max_iter=MAX_ITER, damping=DAMPING):
  """One step: the (q′, p′) solving the implicit equations, as SolveResult.

  Starts from one velocity Verlet step of Δt with the LJ force, then iterates
  (q′, p′) ← (1 − β)(q′, p′) + β[(q, p) + flow(q̄, p̄)] until the update is
  below `tolerance` (Å for positions; s_p units for momenta) or max_iter
  iterations have run (converged False: the caller must report it).
  """
  c = model.config
  dtype = q.dtype
  s_p = tf.constant(c.stats.dp_scale, dtype)
  dt = tf.constant(c.dt_fs, dtype)
  i0, j0 = midpoint_pairs(q, box, c.cutoff_angstrom)

  def lj_force(x, i, j):
    with tf.GradientTape() as tape:
      tape.watch(x)
      u = lj_energy(x, box, i, j, c.lj())
    return -tf.convert_to_tensor(tape.gradient(u, x)) * units.FORCE_TO_ACCEL

  p_half = p + 0.5 * dt * lj_force(q, i0, j0)          # velocity Verlet predictor
  q1 = q + dt * p_half / c.mass_amu
  i1, j1 = midpoint_pairs(q1, box, c.cutoff_angstrom)
  p1 = p_half + 0.5 * dt * lj_force(q1, i1, j1)

  def body(k, q1, p1, change):
    qbar, pbar = 0.5 * (q + q1), 0.5 * (p + p1)
    i, j = midpoint_pairs(qbar, box, c.cutoff_angstrom)
    dq, dp = model.flow(qbar, pbar, box, i, j)
    q_new, p_new = q + dq, p + dp
    change = tf.maximum(tf.reduce_max(tf.abs(q_new - q1)),
                        tf.reduce_max(tf.abs(p_new - p1)) / s_p)
    return (k + 1, q1 + damping * (q_new - q1), p1 + damping * (p_new - p1), change)

  inf = tf.constant(np.inf, dtype)
  k, q1, p1, change = tf.while_loop(
      lambda k, q1, p1, change: (k < max_iter) & (change >= tolerance), body,
      (tf.constant(0), q1, p1, inf))
  return SolveResult(q1, p1, k, change < tolerance, change)
