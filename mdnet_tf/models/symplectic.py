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
midpoint rule with the LJ potential, and the network only learns the
correction that a large Δt needs. U_LJ's pair force is switched smoothly to
zero over the last config.lj_switch_angstrom before r_c (`potentials.pair_forces`): with
the truncated force of LAMMPS lj/cut, S jumps where a pair crosses r_c and the
implicit equations can have no solution there. δS is a sum over the periodic pairs within
r_c and over atoms:

    δS = s_q s_p · [Σ_{i<j} f_c(r_ij) φ(x_ij) + Σ_i ψ(y_i)]

with features that are invariant under rotations and translations and even in
the momenta:
    x_ij = ((1/r − ⟨1/r⟩)/σ_{1/r},  (u·r̂)²/s_u² − 1,  |u|²/(3 s_u²) − 1),
           u = p̄_i − p̄_j (relative momentum; its projection on the bond and
           its norm carry the pair's collision kinematics, squared so that S is
           even in p̄),
    y_i  = |p̄_i|²/(3 s_p̄²) − 1  (each atom's own kinetic term),
and, with config.density_channels = K > 0, a many-body (embedded-atom) term
Σ_i χ(z_i) of each atom's environment (`GeneratingFunction.environment`):
    z_i = (ρ_i¹ … ρ_iᴷ, κ_i, ζ_i, y_i),  ρ_iᵏ = Σ_j f_c(r_ij) g_k(r_ij)
(Gaussian radial channels: the local density at K distances), κ_i, ζ_i the
f_c-weighted neighbour means of the two momentum invariants above, so that a
pair's collision term can depend on its surroundings (measured at 128 fs, where
the pair-only loss stalls from step ~5000: it lowers the validation loss 9 %
and leaves the roll-out error as it was; README, "Why 128 fs"). χ's last layer starts at
zero, so a model with K > 0 fine-tuned from one without starts where it was.
f_c(r) = ½(cos(π r/r_c) + 1) takes a pair's term smoothly to zero at the cutoff
(a pair crossing r_c would otherwise make S jump, and the map would not be
smooth), φ, ψ are swish MLPs (smooth, so S has the second derivatives that
training and the implicit solve use) whose last layers start at zero, and the
scales are the training data's statistics (normalization.NormStats), fixed as
MDNet's are.

With config.generating_function = "composition" the step is instead the
symmetric composition of a half step A, the type-2 map of a learned
G(q, P) = (Δt/2)·[Σ|P|²/2m + U_LJ(q)] + δG(q, P), with B = ρA⁻¹ρ (ρ flips the
momenta; `_solve_composition`): symplectic and time-reversible for any G, and
velocity Verlet of Δt when δG = 0. A is fitted to true pairs Δt/2 apart, so
G is not even in P (a type-2 function of a reversible flow is not), and φ
also sees the signed projection (u·r̂)/s_u. Measured at 128 fs it reaches the
midpoint form's one-step plateau and heats faster in NVE (README, "Another
generating function"): for a harmonic mode both forms degenerate at ωΔt = π.

Training needs no solve: on a true pair the midpoints are known, and the loss
is MDNet's normalized MSE of (∂S/∂p̄, −∂S/∂q̄) against (Δq, Δp), with weight
gradients through the inner derivatives (nested GradientTape). A prediction
solves the implicit equations from a velocity Verlet predictor by
Anderson-accelerated damped fixed-point iteration (cheap: one network gradient
per iteration) and, where that fails, by Newton–Krylov (GMRES on
finite-difference Jacobian-vector products, with a line search), until the
residual is below tolerance; a solve that converges in neither is reported,
never hidden.

Shapes and units: positions [N, 3] Å, momenta [N, 3] g/mol·Å/fs, box [3] Å;
S in g/mol·Å²/fs (action); pairs (i, j) [E] int32 with i < j.
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import integrate
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import space
from mdnet_tf import units
from mdnet_tf.models import mlp

FAMILY = "mdnet_symplectic"
# config.generating_function: S(q̄, p̄) of the midpoints (the default), or the
# symmetric composition of the type-2 half step A of G(q, P) with its reversed
# inverse ρA⁻¹ρ (ρ: p → −p).
MIDPOINT = "midpoint"
COMPOSITION = "composition"
SPLITTING = "splitting"
GENERATING_FUNCTIONS = (MIDPOINT, COMPOSITION, SPLITTING)
# The splitting's default Verlet substep, fs (config.splitting_substep_fs).
# Measured at 128 fs on `small` (training_runs/splitting/verlet_substeps_rmse.txt,
# test split, truncated LJ force): Verlet alone in substeps of 64 / 32 / 16 / 8 fs
# is 4.9e-3 / 1.1e-3 / 2.6e-4 / 6.6e-5 Å from the true step (the midpoint 128 fs
# model: 3.9e-3), and C must move positions by the RMS of b − a, 1.3e-3 Å at 32 fs
# and 3.3e-4 Å at 16 fs (the trained models' s_q): from 32 fs down C is a small
# map. Trained at both, the 16 fs model is 3.5× more accurate (6.3e-5 against
# 2.2e-4 Å) and drifted 10× less in 40 ps of plain NVE on 864 atoms (+0.0022
# against +0.022 kcal/mol/atom/ns) for eight Verlet substeps per 128 fs instead of four.
SPLITTING_SUBSTEP = 16.0
# C is a contraction close to the identity, which needs no damping: measured on 5
# validation states of `small` with the 128 fs splitting model (32 fs substeps),
# Anderson (memory 5) to 1e-5 takes 7–8 evaluations at β = 0.5 and 5–6 at β = 1
# (the same solution to 1e-12 Å); the splitting's C solve uses β = 1.
SPLITTING_DAMPING = 1.0
# Width of the baseline LJ force's switch before r_c for new models, Å (potentials.pair_forces):
# at argon's r_c = 7 Å it changes a crossing pair's impulse by at most
# |F(r_c)|·w/2 ≈ 0.003 kcal/mol of energy, which δS's pair term (also taken to
# zero at r_c) can absorb, while adding at most 15|F(r_c)|/8w ≈ 0.04 kcal/mol/Å²
# of curvature to the implicit equations (an LJ pair at r = σ has ~9, 200× more).
LJ_SWITCH = 0.5

# Measured on the small preset (864 atoms, 80 K): at 64 fs a trained δS converges
# to 1e-6 in 36 damped (β = 0.5) iterations and in 20 with Anderson acceleration of
# memory 5 (22 with memory 3; β = 1 gives 19); at 128 fs the implicit midpoint rule
# (δS = 0) needs 62 damped iterations at β = 0.5 (74 at β = 0.25) and 28–29 with
# Anderson at β = 0.5. The networks compute in float32, which puts a floor of
# about 1e-6 under the residual: a trained 128 fs model stalled at 1–2e-6 on
# validation states (no convergence to 1e-6 within 100–300 iterations). The
# tolerance 1e-5 (Å, and s_p for momenta) sits above that floor and 300× below
# the 128 fs one-step error (3e-3 Å).
TOLERANCE = 1e-5
DAMPING = 0.5
MAX_ITER = 100
ANDERSON_MEMORY = 5
# Newton–Krylov: GMRES to a relative residual of FORCING per Newton step (an
# inexact Newton step; the residual then falls about a thousandfold per step),
# Armijo backtracking on |f| (halving up to LINE_SEARCH times) so that a step
# that overshoots (measured at 128 fs: the full step raised |f| ten-thousandfold
# on the second roll-out step) is shortened, not taken.
NEWTON_ITER = 12
KRYLOV = 30
FORCING = 1e-3
LINE_SEARCH = 20
# The predictor's substep: at 128 fs one Verlet step of Δt is far off where
# atoms collide (measured on a roll-out state: Anderson diverged from it, and
# Newton–Krylov alone needed 13 steps, 335 evaluations), while Verlet substeps
# of 32 fs, 16 fs or 8 fs let Anderson converge in 35, 38 and 39 iterations;
# on an ordinary state 47 → 34–35. An LJ force costs a fraction of a network
# gradient; 16 fs is Verlet well inside its stability limit.
PREDICTOR_DT = 16.0


class SolveResult(NamedTuple):
  """The solved step: positions, momenta, network evaluations used, converged
  (bool) and the last residual max|f| (positions Å, momenta in units of s_p)."""
  positions: tf.Tensor
  momenta: tf.Tensor
  iterations: tf.Tensor
  converged: tf.Tensor
  last_change: tf.Tensor


class GeneratingFunction(tf.Module):
  """S(q̄, p̄) of one Δt (see the module doc); config: an MDNetConfig (Δt, mass,
  cutoff, LJ parameters, statistics)."""

  def __init__(self, config, seed=0, name=None):
    super().__init__(name=name or "mdnet_symplectic")
    self.config = config
    sizes = [config.symplectic_width] * 2 + [1]
    # The composition's G also sees the signed bond projection of the relative
    # momentum: a type-2 generating function of a reversible flow is not even in P.
    pair_inputs = 4 if config.generating_function == COMPOSITION else 3
    self.pair_net = mlp.MLP(pair_inputs, sizes, activation="swish", seed=seed, name="phi_pair")
    self.atom_net = mlp.MLP(1, sizes, activation="swish", seed=seed + 1, name="psi_atom")
    self.density_net = (mlp.MLP(config.density_channels + 3, sizes, activation="swish",
                                seed=seed + 2, name="chi_density")
                        if config.density_channels else None)
    for net in self.nets:                         # δS = 0 at the start: implicit midpoint
      net.weights[-1].assign(tf.zeros_like(net.weights[-1]))

  @property
  def nets(self):
    """The MLPs of δS: φ (pairs), ψ (atoms) and, with density channels, χ."""
    return [n for n in (self.pair_net, self.atom_net, self.density_net) if n is not None]

  @property
  def scales(self):
    s = self.config.stats
    return s.dq_scale, s.dp_scale

  def correction(self, q, p, box, i, j):
    """δS(q, p) [] (same dtype as q) at S's arguments (midpoints, or a half
    step's (q, P)) over the pairs (i, j); the networks compute
    in the mlp precision (float32 by default: a float64 state's step is then
    symplectic up to float32 rounding of δS's gradient, ~1e-7 of the correction)."""
    c, s = self.config, self.config.stats
    dtype = q.dtype
    d = space.minimum_image(tf.gather(q, i) - tf.gather(q, j), box)
    r = tf.sqrt(tf.reduce_sum(d * d, axis=-1))
    u = tf.gather(p, i) - tf.gather(p, j)
    su2 = tf.constant(s.rel_mom_scale ** 2, dtype)
    along = tf.reduce_sum(u * d, axis=-1) / r
    features = [(1.0 / r - s.inv_r_mean) / s.inv_r_std, along * along / su2 - 1.0,
                tf.reduce_sum(u * u, axis=-1) / (3.0 * su2) - 1.0]
    if c.generating_function == COMPOSITION:
      features.append(along / tf.sqrt(su2))
    x = tf.stack(features, axis=-1)
    envelope = 0.5 * (tf.cos(math.pi * r / c.cutoff_angstrom) + 1.0)
    envelope = tf.where(r < c.cutoff_angstrom, envelope, tf.zeros_like(envelope))
    # The networks run in the ambient mlp precision (float32 unless the caller
    # opens mlp.precision(tf.float64), as the exactness tests do); features and
    # sums stay in the state's dtype.
    pair = tf.cast(self.pair_net(x)[:, 0], dtype)
    y = tf.reduce_sum(p * p, axis=-1, keepdims=True) / (3.0 * s.momentum_scale ** 2) - 1.0
    atom = tf.cast(self.atom_net(y)[:, 0], dtype)
    if self.density_net is not None:
      z = self.environment(r, x[:, 1:3], envelope, i, j, tf.shape(q)[0])
      atom += tf.cast(self.density_net(tf.concat([z, y], axis=-1))[:, 0], dtype)
    return s.dq_scale * s.dp_scale * (tf.reduce_sum(envelope * pair) + tf.reduce_sum(atom))

  def environment(self, r, kinematics, envelope, i, j, n):
    """Each atom's many-body features [n, K + 2] (dimensionless, O(1)).

    r [E] Å, kinematics [E, 2] the pair momentum invariants (standardized, as
    in x_ij), envelope [E] f_c(r): ρᵏ = Σ_j f_c g_k(r_ij) with Gaussians g_k of
    width w centred at K distances from 0.85 σ to r_c (w their spacing),
    divided by the mean neighbour count per channel; κ, ζ = Σ_j f_c x_ij /
    mean neighbour count (pairs i < j count for both atoms).
    """
    c, s = self.config, self.config.stats
    k = c.density_channels
    low = 0.85 * c.lj_sigma
    width = (c.cutoff_angstrom - low) / max(k - 1, 1)
    centres = tf.cast(tf.linspace(low, c.cutoff_angstrom, k), r.dtype)
    radial = tf.exp(-tf.square((r[:, None] - centres) / width))
    per_pair = envelope[:, None] * tf.concat([radial * (k / s.mean_neighbors),
                                              kinematics / s.mean_neighbors], axis=-1)
    return (tf.math.unsorted_segment_sum(per_pair, i, n)
            + tf.math.unsorted_segment_sum(per_pair, j, n)
            - tf.constant([1.0] * k + [0.0, 0.0], r.dtype))

  @property
  def step_fs(self):
    """The time the generating function's baseline spans, fs: Δt for the
    midpoint form, Δt/2 for the composition (each half step), 0 for the
    splitting (C's S is δS alone; its Verlet substeps carry the physics)."""
    c = self.config
    return {COMPOSITION: c.dt_fs / 2, SPLITTING: 0.0}.get(c.generating_function, c.dt_fs)

  def flow(self, q, p, box, i, j):
    """(∂S/∂p, −∂S/∂q) [N, 3] each at S's arguments (q, p): the midpoints
    (q̄, p̄), or for the composition (q, P) of a half step; the gradients of
    τ·Σ|p|²/2m + δS (τ = step_fs) by automatic differentiation, plus the
    baseline's LJ impulse τ·F(q) from its (switched) pair force, whose
    potential is never needed (the force is central and pairwise, hence a
    gradient)."""
    c = self.config
    tau = self.step_fs
    with tf.GradientTape() as tape:
      tape.watch([q, p])
      kinetic = tf.reduce_sum(p * p) / (2.0 * c.mass_amu)
      s = tau * kinetic + self.correction(q, p, box, i, j)
    grad_q, grad_p = (tf.convert_to_tensor(g) for g in tape.gradient(
        s, [q, p], unconnected_gradients=tf.UnconnectedGradients.ZERO))
    if not tau:
      return grad_p, -grad_q
    force = potentials.pair_forces(q, box, i, j, c.lj(), c.lj_switch_angstrom)
    return grad_p, -grad_q + tau * units.FORCE_TO_ACCEL * force


def midpoint_pairs(qbar, box, cutoff):
  """Pairs (i, j), i < j, within the cutoff at the midpoint positions."""
  return partition.pairs(tf.stop_gradient(qbar), box, cutoff)


def teacher_forced(model, q, p, dq, dp, box):
  """(∂S/∂p, −∂S/∂q) at the arguments S takes on a true pair of one
  generating-function step (no solve): the midpoints q + Δq/2, p + Δp/2, or for
  the composition (q, p + Δp) of a half step (the pair then spans Δt/2). The
  training prediction, scored against (Δq, Δp) by MDNet's loss
  (multistep.loss_terms). For the splitting, C's flow at the midpoints of
  (a, b) (`splitting_ends`) plus the Verlet halves' own displacements
  (a − x) + (x′ − b): its error is C's error against b − a."""
  if model.config.generating_function == SPLITTING:
    ends = splitting_ends(model, q, p, dq, dp, box)
    qa, pa, qb, pb = (tf.stop_gradient(x) for x in ends)
    f32 = lambda x: tf.cast(x, q.dtype)
    x, y = f32(0.5 * (qa + qb)), f32(0.5 * (pa + pb))
    fq, fp = model.flow(x, y, box, *midpoint_pairs(x, box, model.config.cutoff_angstrom))
    return fq + f32(qa - qb) + dq, fp + f32(pa - pb) + dp
  if model.config.generating_function == COMPOSITION:
    x, y = q, p + dp
  else:
    x, y = q + 0.5 * dq, p + 0.5 * dp
  i, j = midpoint_pairs(x, box, model.config.cutoff_angstrom)
  return model.flow(x, y, box, i, j)


# Pairs for the solve: one search per step within r_c + SKIN of the start
# positions, filtered to r_c at every iterate (exact while no atom has moved more
# than SKIN/2 from the start; otherwise a fresh search). At 128 fs argon atoms at
# 80 K move up to ~0.7 Å per step, their midpoints half of that.
SKIN = 1.0


class Solver(NamedTuple):
  """Settings of the implicit solve: stop when the residual is below `tolerance`
  (Å for positions, units of s_p for momenta); `max_iter` iterations of
  Anderson-accelerated damped fixed-point iteration (`damping` β, `memory` m;
  m = 0 is the plain damped iteration); if they fail, at most `newton_iter`
  Newton–Krylov iterations from the predictor (0: none), each solving its
  linear system by GMRES in at most `krylov` Jacobian-vector products. The
  predictor both start from is velocity Verlet with the LJ force in substeps
  of at most `predictor_dt_fs`."""
  tolerance: float = TOLERANCE
  max_iter: int = MAX_ITER
  damping: float = DAMPING
  memory: int = ANDERSON_MEMORY
  newton_iter: int = NEWTON_ITER
  krylov: int = KRYLOV
  predictor_dt_fs: float = PREDICTOR_DT


def verlet_half(model, q, p, box, solver=Solver()):
  """(q, p) after velocity Verlet over Δt/2 with the model's LJ force in
  substeps of at most config.splitting_substep_fs: the outer factor V of the
  splitting (exact Verlet, part of the map, not a predictor)."""
  c = model.config
  if not c.splitting_substep_fs > 0:
    raise errors.InputError(f"a splitting model needs splitting_substep_fs > 0, its config "
                            f"has {c.splitting_substep_fs}")
  return _Equations(model, q, box, solver).predict(q, p, 0.5 * c.dt_fs, c.splitting_substep_fs)


def splitting_ends(model, q, p, dq, dp, box):
  """(q_a, p_a, q_b, p_b) float64 of a true pair (q, p) → (q + Δq, p + Δp):
  a = V(q, p) and b = V⁻¹(q′, p′) = ρVρ(q′, p′), so that the splitting's C
  would map a to b exactly."""
  f64 = lambda x: tf.cast(x, tf.float64)
  q, p, box = f64(q), f64(p), f64(box)
  q1, p1 = q + f64(dq), p + f64(dp)
  qa, pa = verlet_half(model, q, p, box)
  qb, pb = verlet_half(model, q1, -p1, box)
  return qa, pa, qb, -pb


def splitting_scales(model, pairs, max_frames=32):
  """(s_q Å, s_p g/mol·Å/fs): the RMS component of b − a (`splitting_ends`) over
  the first `max_frames` of a FramePairs split: what C has to move, which
  scales δS's output and normalizes the loss as MDNet's statistics do."""
  sq_q, sq_p = [], []
  for k in range(min(len(pairs), max_frames)):
    qa, pa, qb, pb = splitting_ends(
        model, pairs.positions[k], pairs.momenta[k], pairs.next_positions[k] - pairs.positions[k],
        pairs.next_momenta[k] - pairs.momenta[k], pairs.box[k])
    sq_q.append(np.mean(np.square((qb - qa).numpy())))
    sq_p.append(np.mean(np.square((pb - pa).numpy())))
  return float(np.sqrt(np.mean(sq_q))), float(np.sqrt(np.mean(sq_p)))


def predict(model, q, p, box, solver=Solver(), step=None):
  """(Δq, Δp) float32 of one solved step and whether the solve converged [] bool;
  the state in float64 (a float32 position of ~20 Å would round Δq by 2e-6 Å).
  step: the solved map, `solve` (default) or a composition's `first_half`."""
  f64 = lambda x: tf.cast(x, tf.float64)
  out = (step or solve)(model, f64(q), f64(p), f64(box), solver)
  return (tf.cast(out.positions - f64(q), tf.float32),
          tf.cast(out.momenta - f64(p), tf.float32), out.converged)


def _pairs_near(x, start, box, candidates, cutoff):
  """The pairs within `cutoff` at positions x, from the candidate pairs of the
  start positions within cutoff + SKIN (a fresh search if an atom moved too far).
  A diverging iterate (non-finite, or an atom a whole box length away from its
  start) keeps the filtered candidates: its residual cannot converge anyway,
  while a cell search of it would overflow the cell indices and fail with an
  error instead of a reported non-convergence."""
  moved = tf.reduce_max(tf.abs(x - start))
  diverging = ~tf.reduce_all(tf.math.is_finite(x)) | ~(moved < tf.reduce_min(box))

  def filtered():
    i, j = candidates
    d = space.minimum_image(tf.gather(x, i) - tf.gather(x, j), box)
    keep = tf.reduce_sum(d * d, axis=-1) < cutoff ** 2
    return tf.boolean_mask(i, keep), tf.boolean_mask(j, keep)

  return tf.cond(diverging | (moved * math.sqrt(3.0) <= 0.5 * SKIN), filtered,
                 lambda: midpoint_pairs(x, box, cutoff))


def solve(model, q, p, box, solver=Solver()):
  """One step: the (q′, p′) solving the implicit equations, as SolveResult.

  The midpoint form solves for (q′, p′) at once; the composition solves its
  two half steps in turn (`_solve_composition`). Each solve starts from
  velocity Verlet with the LJ force in substeps of at most predictor_dt_fs,
  then runs Anderson-accelerated damped fixed-point iteration (`anderson`)
  until the residual is below the solver's tolerance; if that fails within
  max_iter iterations (or diverges), it solves again from the predictor by
  Newton–Krylov (`newton_krylov`). iterations counts the network evaluations
  of all of them (residuals and Jacobian-vector products), and converged
  False means the caller must report it.
  """
  if model.config.generating_function == COMPOSITION:
    return _solve_composition(model, q, p, box, solver)
  if model.config.generating_function == SPLITTING:
    return _solve_splitting(model, q, p, box, solver)
  c = model.config
  equations = _Equations(model, q, box, solver)
  q1, p1 = equations.predict(q, p, c.dt_fs)

  def images(q1, p1):
    """The midpoint equations' right-hand side G(x): (q, p) + flow at midpoints."""
    qbar, pbar = 0.5 * (q + q1), 0.5 * (p + p1)
    dq, dp = model.flow(qbar, pbar, box, *equations.pairs_at(qbar))
    return q + dq, p + dp

  return equations.solve(images, q1, p1)


def _solve_composition(model, q, p, box, solver):
  """The composition's step: half step A (the type-2 map of G) from (q, p) to
  (q_m, p_m), then B = ρA⁻¹ρ (ρ: p → −p) to (q′, p′), each solved as in `solve`:

      A:  p_m = p − ∂G/∂q(q, p_m),          q_m = q + ∂G/∂P(q, p_m)
      B:  q′ = q_m − ∂G/∂P(q′, −p_m),       p′ = p_m − ∂G/∂q(q′, −p_m)

  A is implicit in p_m alone, B in q′ alone; with δG = 0 this is velocity
  Verlet of Δt. B∘A is symplectic and time-reversible (ρ(B∘A)ρ = (B∘A)⁻¹) for
  any G, and if A is the exact flow of Δt/2 so is B (the flow is reversible),
  which is why both halves are fitted to true pairs Δt/2 apart (forward and
  time-reversed): B's equations on (q_m, p_m) → (q′, p′) are A's on
  (q′, −p′) → (q_m, −p_m)."""
  a = first_half(model, q, p, box, solver)
  qm, pm = a.positions, a.momenta
  half_b = _Equations(model, qm, box, solver)
  qb, pb = half_b.predict(qm, pm, model.step_fs)

  def images_b(q1, p1):
    del p1
    dq, dp = model.flow(q1, -pm, box, *half_b.pairs_at(q1))
    return qm - dq, pm + dp

  b = half_b.solve(images_b, qb, pb)
  return SolveResult(b.positions, b.momenta, a.iterations + b.iterations,
                     a.converged & b.converged, tf.maximum(a.last_change, b.last_change))


def _solve_splitting(model, q, p, box, solver):
  """The splitting's step V∘C∘V: Verlet over Δt/2 to a, the implicit midpoint
  map C of δS from a (q_c − q_a = ∂δS/∂p̄, p_c − p_a = −∂δS/∂q̄ at the midpoints
  of a and c), solved from the identity (undamped: SPLITTING_DAMPING), then
  Verlet over Δt/2. ρ(V∘C∘V)ρ = (V∘C∘V)⁻¹ because V and C are each reversible
  (δS even in p̄)."""
  qa, pa = verlet_half(model, q, p, box, solver)
  inner = _Equations(model, qa, box, solver._replace(damping=SPLITTING_DAMPING))

  def images(q1, p1):
    qbar, pbar = 0.5 * (qa + q1), 0.5 * (pa + p1)
    dq, dp = model.flow(qbar, pbar, box, *inner.pairs_at(qbar))
    return qa + dq, pa + dp

  c = inner.solve(images, qa, pa)
  q1, p1 = verlet_half(model, c.positions, c.momenta, box, solver)
  return c._replace(positions=q1, momenta=p1)


def first_half(model, q, p, box, solver=Solver()):
  """Half step A of a composition, (q, p) → (q_m, p_m) as SolveResult: on its
  own, the map fitted to true pairs Δt/2 apart (scored alone by
  training_runs/composition/halfstep_rmse.py)."""
  half_a = _Equations(model, q, box, solver)
  qa, pa = half_a.predict(q, p, model.step_fs)
  pairs_a = half_a.pairs_at(q)          # A evaluates G at the start positions only

  def images_a(q1, p1):
    del q1
    dq, dp = model.flow(q, p1, box, *pairs_a)
    return q + dq, p + dp

  return half_a.solve(images_a, qa, pa)


class _Equations:
  """What every implicit solve of one step shares: the pair candidates of its
  start positions (`pairs_at` filters them to r_c at an iterate), the Verlet
  predictor, and the solve of x = G(x) over x = (q′, p′/s_p) [2N·3], so that
  positions (Å) and momenta (s_p) weigh alike."""

  def __init__(self, model, start, box, solver):
    self.config, self.box, self.solver = model.config, box, solver
    self.start = start
    self.s_p = tf.constant(model.config.stats.dp_scale, start.dtype)
    self.candidates = partition.pairs(tf.stop_gradient(start), box,
                                      model.config.cutoff_angstrom + SKIN)

  def pairs_at(self, x):
    """Pairs within r_c at positions x (from the start's candidates)."""
    return _pairs_near(x, self.start, self.box, self.candidates, self.config.cutoff_angstrom)

  def predict(self, q, p, duration, max_substep_fs=None):
    """Velocity Verlet with the baseline's LJ force from (q, p) over `duration`
    fs in substeps of at most max_substep_fs (default: the solver's
    predictor_dt_fs; a graph loop: one copy of the pair search in the graph,
    not one per substep)."""
    c = self.config
    max_substep_fs = max_substep_fs or self.solver.predictor_dt_fs

    def lj_force(x):
      i, j = self.pairs_at(x)
      return potentials.pair_forces(x, self.box, i, j, c.lj(), c.lj_switch_angstrom), None

    substeps = max(1, math.ceil(duration / max_substep_fs - 1e-9))

    def substep(k, q1, p1, force):
      q1, p1, force, _ = integrate.verlet_step(q1, p1, force, duration / substeps, c.mass_amu,
                                               lj_force)
      return k + 1, q1, p1, force

    _, q1, p1, _ = tf.while_loop(lambda k, *_: k < substeps, substep,
                                 (tf.constant(0), q, p, lj_force(q)[0]))
    return q1, p1

  def solve(self, images, q0, p0):
    """SolveResult of x = G(x), G(x) = images(q′, p′) packed, from (q0, p0):
    Anderson, and Newton–Krylov from the same start where Anderson fails."""
    shape, half, s_p, solver = tf.shape(q0), tf.size(q0), self.s_p, self.solver
    pack = lambda a, b: tf.concat([tf.reshape(a, [-1]), tf.reshape(b / s_p, [-1])], 0)
    unpack = lambda x: (tf.reshape(x[:half], shape), tf.reshape(x[half:], shape) * s_p)

    # Traced once and called from every solver loop; not inlined, so that graph
    # optimization sees one copy of the network gradient instead of one per call
    # site (measured on a composition step: its first run 11.2 → 4.6 s, steps alike).
    @tf.function(experimental_attributes={"_noinline": True})
    def residual(x):
      """f = G(x) − x."""
      return pack(*images(*unpack(x))) - x

    x0 = pack(q0, p0)
    first = anderson(residual, x0, solver)
    if solver.newton_iter > 0:
      def rescue():
        newton = newton_krylov(residual, x0, solver)
        return newton._replace(iterations=newton.iterations + first.iterations)

      out = tf.cond(first.converged, lambda: first, rescue)
    else:
      out = first
    # The result is G(x) = x + f of the last evaluated iterate x (|f| < tolerance
    # on success): the images of an iterate within tolerance of its own.
    q1, p1 = unpack(out.x + out.f)
    return SolveResult(q1, p1, out.iterations, out.converged, out.residual)


class Iterate(NamedTuple):
  """The state a solver stops in: its last iterate x and residual f = G(x) − x
  [n], network evaluations used, converged [] bool and max|f|."""
  x: tf.Tensor
  f: tf.Tensor
  iterations: tf.Tensor
  converged: tf.Tensor
  residual: tf.Tensor


def anderson(residual, x0, solver):
  """Anderson-accelerated damped fixed-point iteration of x ← x + β f(x) from
  x0 until max|f| < tolerance, for at most max_iter residuals; a non-finite
  residual (a diverged iterate) ends it at once, unconverged. Returns Iterate.

  Anderson type II (Walker & Ni 2011): the newest differences of iterates and
  residuals replace the oldest of the m stored; γ minimizes |f − ΔF γ|
  (regularized normal equations; unused slots are zero and get γ = 0), and
  x ← x + βf − (ΔX + βΔF)γ. memory 0 is the plain damped iteration.
  """
  dtype = x0.dtype
  beta = tf.constant(solver.damping, dtype)
  m = max(1, solver.memory)
  history = tf.zeros(tf.stack([m, tf.size(x0)]), dtype)

  def body(k, x, x_prev, f_prev, d_x, d_f, change):
    f = residual(x)
    change = tf.reduce_max(tf.abs(f))
    if solver.memory == 0:
      return k + 1, x + beta * f, x, f, d_x, d_f, change
    started = k > 0                                     # the first iteration stores zeros
    slot = tf.math.floormod(k - 1, m)[None, None]
    d_x = tf.tensor_scatter_nd_update(d_x, slot, tf.where(started, x - x_prev, 0.0)[None])
    d_f = tf.tensor_scatter_nd_update(d_f, slot, tf.where(started, f - f_prev, 0.0)[None])
    gram = tf.linalg.matmul(d_f, d_f, transpose_b=True)
    # A diverging iterate (overlapping atoms) gives non-finite differences: the
    # mixing is skipped (the least-squares solve would fail) and the NaN
    # residual ends the iteration unconverged.
    finite = tf.reduce_all(tf.math.is_finite(gram)) & tf.reduce_all(tf.math.is_finite(f))
    gram = tf.where(finite, gram, tf.zeros_like(gram))
    reg = 1e-10 * tf.linalg.trace(gram) / m + tf.constant(1e-30, dtype)
    gamma = tf.linalg.solve(gram + reg * tf.eye(m, dtype=dtype),
                            tf.linalg.matvec(d_f, tf.where(finite, f, tf.zeros_like(f)))[:, None])
    gamma = tf.where(finite, gamma[:, 0], tf.zeros([m], dtype))
    x_new = x + beta * f - tf.linalg.matvec(tf.where(finite, d_x + beta * d_f, tf.zeros_like(d_x)),
                                            gamma, transpose_a=True)
    return k + 1, x_new, x, f, d_x, d_f, change

  def running(k, x, x_prev, f_prev, d_x, d_f, change):
    del x, x_prev, f_prev, d_x, d_f
    diverged = (k > 0) & ~tf.math.is_finite(change)
    return ~(change < solver.tolerance) & (k < solver.max_iter) & ~diverged

  inf = tf.constant(np.inf, dtype)
  k, _, x, f, _, _, change = tf.while_loop(
      running, body, (tf.constant(0), x0, x0, tf.zeros_like(x0), history, history, inf))
  # The loop's last residual f belongs to the iterate before its last update.
  return Iterate(x, f, k, change < solver.tolerance, change)


def newton_krylov(residual, x0, solver):
  """Newton's method on f(x) = 0 from x0 without forming the Jacobian: each
  Newton step solves J s = −f by GMRES (Arnoldi with classical Gram–Schmidt
  done twice) with Jacobian-vector products by forward differences of the
  residual, then backtracks along s until |f| decreases. Stops when max|f| <
  tolerance, after newton_iter steps, or when no step decreases |f|. Returns
  Iterate (iterations: residual evaluations, one per Jacobian-vector product).

  Forward differences (the Jacobian-free Newton–Krylov of Knoll & Keyes 2004,
  as in scipy's newton_krylov) cost one residual per product and add nothing
  to trace. Exact forward-mode products through the flow's inner gradient cost
  2–3 residuals each and, measured on a composition step, 11 s of tracing and
  14 s of graph optimization (two thirds of its start-up, 38 s). The increment
  moves the entries of x by √ε of the networks' precision in RMS (3.5e-4 Å and
  s_p in float32): about 300× their rounding noise in f (~1e-6) and far below
  the scale on which the step curves, so a product is good to ~1e-3, which an
  inexact Newton step solved to FORCING = 1e-3 does not notice. Measured with
  Newton–Krylov alone on a 4000-atom state of the published 128 fs model
  (float32 networks): 64 evaluations in 4.4 s, against forward mode's 50 in
  9.1 s; both within 4e-7 Å of the Anderson solution."""
  dtype = x0.dtype
  krylov = solver.krylov
  rows = tf.range(krylov + 1)
  rms_increment = math.sqrt(np.finfo(mlp.compute_dtype().as_numpy_dtype).eps)

  def jvp(x, f, v):
    h = rms_increment * tf.sqrt(tf.cast(tf.size(x), dtype)) / tf.norm(v)
    return (residual(x + h * v) - f) / h

  def least_squares(h, beta, k):
    """y minimizing |β e₁ − H[:k+1, :k] y| and that minimum."""
    hk = h[:k + 1, :k]
    rhs = tf.concat([[beta], tf.zeros([k], dtype)], 0)
    y = tf.linalg.lstsq(hk, rhs[:, None], fast=False)[:, 0]
    return y, tf.norm(tf.linalg.matvec(hk, y) - rhs)

  def gmres(x, f):
    beta = tf.norm(f)
    basis = tf.tensor_scatter_nd_update(tf.zeros(tf.stack([krylov + 1, tf.size(x)]), dtype),
                                        [[0]], (-f / beta)[None])

    def body(k, basis, h, _):
      w = jvp(x, f, basis[k])
      for _ in range(2):                      # classical Gram–Schmidt, twice
        c = tf.linalg.matvec(basis, w)        # rows beyond k are zero
        w = w - tf.linalg.matvec(basis, c, transpose_a=True)
        h = tf.tensor_scatter_nd_add(h, tf.stack([rows, tf.fill([krylov + 1], k)], 1), c)
      norm = tf.norm(w)
      h = tf.tensor_scatter_nd_update(h, [[k + 1, k]], [norm])
      basis = tf.tensor_scatter_nd_update(
          basis, [[k + 1]], (w / tf.maximum(norm, tf.constant(1e-300, dtype)))[None])
      return k + 1, basis, h, least_squares(h, beta, k + 1)[1]

    k, basis, h, _ = tf.while_loop(
        lambda k, basis, h, res: (k < krylov) & (res > FORCING * beta), body,
        (tf.constant(0), basis, tf.zeros([krylov + 1, krylov], dtype), beta))
    y, _ = least_squares(h, beta, k)
    return tf.linalg.matvec(basis[:k], y, transpose_a=True), k

  def newton_step(n, x, f, evaluations, stalled):
    s, products = gmres(x, f)
    norm = tf.norm(f)

    def shorter(lam, x_try, f_try, tries):
      del x_try, f_try
      lam = 0.5 * lam
      return lam, x + lam * s, residual(x + lam * s), tries + 1

    def worse(lam, x_try, f_try, tries):
      del x_try
      return ~(tf.norm(f_try) <= (1.0 - 1e-4 * lam) * norm) & (tries < LINE_SEARCH)

    one = tf.constant(1.0, dtype)
    _, x_new, f_new, tries = tf.while_loop(worse, shorter, (one, x + s, residual(x + s), 0))
    stalled = ~(tf.norm(f_new) < norm)              # no step length decreased |f|
    x_new, f_new = tf.where(stalled, x, x_new), tf.where(stalled, f, f_new)
    return n + 1, x_new, f_new, evaluations + products + tries + 1, stalled

  def running(n, x, f, evaluations, stalled):
    del x, evaluations
    change = tf.reduce_max(tf.abs(f))
    return (~(change < solver.tolerance) & tf.math.is_finite(change) & (n < solver.newton_iter)
            & ~stalled)

  f0 = residual(x0)
  _, x, f, evaluations, _ = tf.while_loop(
      running, newton_step, (tf.constant(0), x0, f0, tf.constant(1), tf.constant(False)))
  change = tf.reduce_max(tf.abs(f))
  return Iterate(x, f, evaluations, change < solver.tolerance, change)
