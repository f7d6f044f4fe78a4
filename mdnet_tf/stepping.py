"""The one step loop: a propagator advanced many steps inside one TF graph.

Roll-outs (rollout.py), the exported signatures (signatures.py) and the
benchmark (benchmarking.py) all run this loop, so what is timed is what
ships. One iteration, for step k = step0 + i:

  p ← O(Δt/2) p                      (NVT only; CSVR or Langevin, FlashMD split)
  Δq, Δp ← propagator(q, p, box, neighbors of q)   in float32 (float64 for
                                     a propagator that asks for it)
  q ← q + Δq,  p ← p + Δp            accumulated in float64
  (an implicit propagator, the symplectic step, solves its equations inside
  the propagator and reports its iterations and whether it converged: a step
  that did not converge is a failure of a monitored loop and an
  InvalidArgument error of an unmonitored one)
  p ← O(Δt/2) p                      (NVT only)
  neighbors ← cell list of the new q (a dense partition.NeighborList, or the
    compact pairs of partition.pairs for a compact propagator)
  monitoring (optional): LJ potential U, energy rescaling of p about the
    centre of mass to the initial total E0 (NVE, optional), kinetic energy,
    temperature, |Σp|, closest pair; the loop stops after a step whose values
    are non-finite, whose temperature leaves [t_low, t_high] or whose closest
    pair is below min_distance, and returns the last good state (the state
    before that step) with a failure code (FAILURES).

State: positions [N, 3] Å (unwrapped) and momenta [N, 3] g/mol·Å/fs in
float64; box [3] Å. Thermostat noise is a stateless function of (seed, k), so
a loop split into chunks gives the same numbers as one long loop.
"""

from typing import NamedTuple

import tensorflow as tf

from mdnet_tf import integrate
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import space

THERMOSTATS = ("none", "csvr", "langevin")
# Values recorded per step when monitoring, in this order (thermo.py adds step and time).
RECORDED = ("temperature_K", "potential_kcal_mol", "kinetic_kcal_mol", "total_kcal_mol",
            "momentum_norm", "min_distance_A", "solver_iterations", "solver_converged",
            "alpha", "infeasible", "clipped")
_SEED_TAG = 0x726f6c
# Failure codes of a monitored loop (Outcome.code), in the order they are checked.
FAILURES = ("none", "non-finite values", "temperature out of range", "atoms too close",
            "implicit step did not converge")
# Default "atoms too close" threshold, in units of the potential's σ: 2.5 Å
# for the paper's argon (σ = 3.432 Å), where the LJ repulsion is 30 ε.
MIN_DISTANCE_SIGMA = 2.5 / 3.432


class Loop(NamedTuple):
  """Static description of the loop (part of what a compiled loop is keyed on).

  thermostat: 'none' (NVE), 'csvr' or 'langevin'.
  energy_rescale: NVE only; hold kinetic + LJ potential at e0 (needs monitor).
  rescale_bounds: allowed range of the rescaling factor α per step.
  monitor: compute the per-step values (RECORDED) and stop on failure.
  record_steps: rows of the per-step record (static; 0 = keep only the last).
  min_distance: failure below this pair distance, Å.
  """
  thermostat: str = "none"
  energy_rescale: bool = False
  rescale_bounds: tuple = (0.9, 1.1)
  monitor: bool = False
  record_steps: int = 0
  min_distance: float = 2.5


class Dynamic(NamedTuple):
  """Run-time values of the loop (tensors or numbers).

  step0: index of the first step (thermostat noise).  seed: thermostat seed.
  temperature: thermostat target, K.  tau_fs: coupling time (CSVR) or
  1/friction (Langevin), fs.  e0: target total energy, kcal/mol.
  t_low, t_high: failure bounds on the temperature, K.
  """
  step0: object = 0
  seed: object = 0         # int32 range
  temperature: object = 80.0
  tau_fs: object = 1000.0
  e0: object = 0.0
  t_low: object = 0.0
  t_high: object = 1e30


class Outcome(NamedTuple):
  """steps_done [] int32 (steps taken, a failing one included; < num_steps
  only after a failure); q, p [N, 3] float64 (after a failure: the last good
  state); overflow [] bool (some capacity was too small: the numbers are not to
  be used); failed [] bool; rows [record_steps or 1, len(RECORDED)] float64
  (monitoring; with record_steps = 0 the one row is the last step's, or the
  start state's before any step); neighbors of the final q (dense list, or
  compact pairs); code [] int32 (index into FAILURES); events [2] float64
  (infeasible and clipped energy rescalings summed over the steps)."""
  steps_done: tf.Tensor
  positions: tf.Tensor
  momenta: tf.Tensor
  overflow: tf.Tensor
  failed: tf.Tensor
  rows: tf.Tensor
  neighbors: object
  code: tf.Tensor
  events: tf.Tensor


def _pair_potential_and_closest(positions, box, pairs, lj):
  """LJ potential [] kcal/mol and closest pair distance [] Å over compact pairs."""
  i, j = pairs
  d = space.displacement(tf.gather(positions, i), tf.gather(positions, j), box)
  r2 = tf.reduce_sum(d * d, -1)
  within = (r2 > 0) & (r2 < lj.cutoff ** 2)
  potential = tf.reduce_sum(potentials.pair_energy(r2, within, lj))
  closest = tf.sqrt(tf.reduce_min(tf.concat([r2, [tf.cast(lj.cutoff ** 2, r2.dtype)]], 0)))
  return potential, closest


def min_pair_distance(positions, box, neighbors, cutoff):
  """Closest pair distance within `cutoff` (cutoff if none), Å."""
  n = tf.shape(positions)[0]
  idx = neighbors.indices
  other = tf.gather(positions, tf.minimum(idx, n - 1))
  d = space.displacement(positions[:, None, :], other, tf.cast(box, positions.dtype))
  r2 = tf.where(idx < n, tf.reduce_sum(d * d, -1), tf.cast(cutoff ** 2, positions.dtype))
  return tf.sqrt(tf.reduce_min(r2))


def _thermostat(loop, dyn, mass, dt_fs):
  """p, step, half -> p after ½Δt of the loop's thermostat."""
  def apply(p, step, half):
    seed = tf.random.experimental.stateless_fold_in(
        tf.stack([tf.cast(dyn.seed, tf.int32), _SEED_TAG]), 2 * step + half)
    temperature = tf.cast(dyn.temperature, tf.float64)
    tau = tf.cast(dyn.tau_fs, tf.float64)
    if loop.thermostat == "csvr":
      return integrate.csvr_rescale(p, mass, temperature, 0.5 * dt_fs, tau, seed)
    return integrate.langevin(p, mass, temperature, 0.5 * dt_fs, tau, seed)
  return apply


def run(propagator, capacity, loop, q, p, box, num_steps, dyn=Dynamic()):
  """Advances (q, p) by up to num_steps steps of the propagator (see module doc).

  Args:
    propagator: propagators.Propagator.  capacity: capacity.Capacity.
    loop: Loop (static).  q, p: [N, 3] float64.  box: [3] float (any dtype).
    num_steps: [] int32.  dyn: Dynamic.
  Returns:
    Outcome.
  """
  prop = propagator
  if loop.thermostat not in THERMOSTATS:
    raise ValueError(f"thermostat must be one of {THERMOSTATS}, got {loop.thermostat!r}")
  if prop.compact and prop.jit_compile:
    raise ValueError("a compact propagator has dynamic shapes and cannot run under XLA")
  thermostat = (_thermostat(loop, dyn, prop.mass, prop.dt_fs)
                if loop.thermostat != "none" else None)
  box64 = tf.cast(box, tf.float64)
  box32 = tf.cast(box, tf.float32)
  step0 = tf.cast(dyn.step0, tf.int32)
  rows_len = max(1, loop.record_steps)

  def neighbors_of(q):
    """(neighbors, overflow) of float64 positions q."""
    if prop.compact:
      return partition.pairs(tf.cast(q, tf.float32), box32, prop.cutoff), tf.constant(False)
    nl = partition.build(tf.cast(q, tf.float32), box32, capacity.spec)
    return nl, nl.overflow

  nl0, overflow0 = neighbors_of(q)

  def monitor(q, p, nl, solved):
    if prop.compact:
      potential, r_min = _pair_potential_and_closest(q, box64, nl, prop.lj)
    else:
      potential, _, _ = potentials.energy_and_forces(q, box64, nl, prop.lj)
      r_min = min_pair_distance(q, box64, nl, prop.lj.cutoff)
    alpha = tf.ones([], tf.float64)
    infeasible = clipped = tf.constant(False)
    if loop.energy_rescale:
      p, alpha, infeasible, clipped = integrate.rescale_to_energy(
          p, prop.mass, potential, tf.cast(dyn.e0, tf.float64), loop.rescale_bounds)
    kinetic = integrate.kinetic_energy(p, prop.mass)
    temp = integrate.temperature(p, prop.mass)
    iterations, converged = solved
    row = tf.stack([temp, potential, kinetic, potential + kinetic,
                    tf.norm(tf.reduce_sum(p, 0)), r_min, tf.cast(iterations, tf.float64),
                    tf.cast(converged, tf.float64), alpha,
                    tf.cast(infeasible, tf.float64), tf.cast(clipped, tf.float64)])
    finite = tf.reduce_all(tf.math.is_finite(row)) & tf.reduce_all(tf.math.is_finite(q))
    hot_or_cold = (temp < tf.cast(dyn.t_low, tf.float64)) | (temp > tf.cast(dyn.t_high, tf.float64))
    code = tf.where(~finite, 1, tf.where(hot_or_cold, 2,
                                         tf.where(r_min < loop.min_distance, 3, 0)))
    code = tf.where(converged, code, 4)
    return p, row, code

  explicit = (tf.constant(0), tf.constant(True))   # what the start state reports
  input_dtype = tf.float64 if prop.float64_inputs else tf.float32

  def body(i, q, p, nl, overflow, failed, rows, code, events):
    step = step0 + i
    q_before, p_before = q, p
    if thermostat is not None:
      p = thermostat(p, step, 0)
    out = prop.delta(tf.cast(q, input_dtype), tf.cast(p, input_dtype), box32, nl, capacity)
    dq, dp, over = out.dq, out.dp, out.overflow
    if prop.implicit and not loop.monitor:   # nothing records a failure: raise it
      with tf.control_dependencies([tf.debugging.assert_equal(out.converged, True, message=(
          f"{prop.name}: the implicit step did not converge (raise max_iter or the tolerance)"))]):
        dq = tf.identity(dq)
    q = q + tf.cast(dq, tf.float64)
    p = p + tf.cast(dp, tf.float64)
    if thermostat is not None:
      p = thermostat(p, step, 1)
    # Never search pairs among non-finite positions (a diverged step): the
    # search keeps the previous positions, and the monitor reports the step.
    nl, nl_overflow = neighbors_of(tf.where(tf.reduce_all(tf.math.is_finite(q)), q, q_before))
    if loop.monitor:
      p, row, code = monitor(q, p, nl, (out.iterations, out.converged))
      failed = code > 0
      q = tf.where(failed, q_before, q)          # a failing step is not taken
      p = tf.where(failed, p_before, p)
      slot = tf.minimum(i, rows_len - 1)
      rows = tf.tensor_scatter_nd_update(rows, [[slot]], row[None])
      events = events + tf.gather(row, [RECORDED.index("infeasible"), RECORDED.index("clipped")])
    return i + 1, q, p, nl, overflow | over | nl_overflow, failed, rows, code, events

  rows0 = tf.zeros([rows_len, len(RECORDED)], tf.float64)
  if loop.monitor and loop.record_steps == 0:   # report the start state if no step is taken
    rows0 = monitor(tf.cast(q, tf.float64), tf.cast(p, tf.float64), nl0, explicit)[1][None]
    rows0 = tf.tensor_scatter_nd_update(rows0, [[0, RECORDED.index("alpha")]], [1.0])  # no step
  init = (tf.constant(0), tf.cast(q, tf.float64), tf.cast(p, tf.float64), nl0, overflow0,
          tf.constant(False), rows0, tf.constant(0), tf.zeros([2], tf.float64))
  # Compact pairs change length from step to step: their shape is left open.
  invariants = tf.nest.map_structure(lambda t: t.shape, init)
  if prop.compact:
    invariants = invariants[:3] + ((tf.TensorShape([None]), tf.TensorShape([None])),) + invariants[4:]
  i, q, p, nl, overflow, failed, rows, code, events = tf.while_loop(
      lambda i, q, p, nl, overflow, failed, *_: (i < num_steps) & ~failed, body, init,
      shape_invariants=invariants)
  return Outcome(i, q, p, overflow, failed, rows, nl, code, events)
