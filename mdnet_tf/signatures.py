"""The exported step functions: neighbor search + model + update, all in-graph.

Shared by export (exporting.py) and the tests. The steps are the package's one
step loop (stepping.py) with the model's propagator (propagators.py), so a
served roll-out computes exactly what an in-process one does. Everything here
is TF ops (no DGL, NumPy or py_function), so it runs inside a SavedModel and
TF Serving. Signatures (fixed contract):
  serving_default(positions [N,3] f32 Å, momenta [N,3] f32 g/mol·Å/fs, box [3] f32 Å)
      -> {positions, momenta} one Δt later (positions continue unwrapped)
  rollout(..., num_steps [] int32) -> {positions, momenta} after num_steps steps
  rollout_nvt(..., num_steps, target_temperature [] f32 K, tau_fs [] f32,
      seed [] int32) -> the same with a CSVR thermostat for ½Δt before and after
      every learned step
Inside roll-outs positions and momenta accumulate in float64, so float32
rounding of q + Δq does not build up over many steps.

Execution mode (propagators.MODES):
  graph (default) — compact graph, plain TF graph execution, oneDNN matmuls; no
    function is marked must-compile, so the stock tensorflow_model_server
    (which disables XLA) loads and runs it; nothing can overflow;
  xla — padded graph with capacities fixed at export, the step loop one XLA
    program (needs a server started with --xla_cpu_compilation_enabled).
Bad input (rank/shape, N mismatch, non-finite values, box < 2 r_c) and, in xla
mode, a neighbor-list or graph overflow raise InvalidArgument with a message.
"""

import tensorflow as tf

from mdnet_tf import propagators
from mdnet_tf import stepping

_STATE = [tf.TensorSpec([None, 3], tf.float32, name="positions"),
          tf.TensorSpec([None, 3], tf.float32, name="momenta"),
          tf.TensorSpec([3], tf.float32, name="box")]
_STEPS = tf.TensorSpec([], tf.int32, name="num_steps")


class StepModule(tf.Module):
  """A trained model wrapped with its in-graph neighbor search and update.

  capacity: capacity.Capacity fixed at export (xla mode: neighbor list and
  graph edges per atom; a state that needs more is refused with
  InvalidArgument). mode: 'graph' or 'xla' (see the module doc). precision:
  'float32' or 'bfloat16' for the network's matmuls.
  """

  def __init__(self, model, capacity, mode=propagators.DEFAULT_MODE, precision="float32"):
    super().__init__(name="mdnet_step")
    if mode not in propagators.MODES:
      raise ValueError(f"mode must be one of {propagators.MODES}, got {mode!r}")
    self.model = model
    self.config = model.config
    self.capacity = capacity
    self.mode = mode
    self.precision = precision
    # In xla mode the learned steps run as one XLA program per input shape; the
    # checks and the overflow → InvalidArgument conversion stay outside (XLA
    # drops Asserts). In graph mode they are plain graph functions.
    self._nve_loop = tf.function(self._nve, jit_compile=mode == "xla")
    self._nvt_loop = tf.function(self._nvt, jit_compile=mode == "xla")

  def _check(self, positions, momenta, box):
    c = self.config
    n = tf.shape(positions)[0]
    return [
        tf.debugging.assert_equal(tf.shape(momenta), tf.shape(positions), message=(
            "momenta must have the shape of positions [N, 3]")),
        tf.debugging.assert_greater_equal(n, 2, message="need at least 2 atoms"),
        tf.debugging.assert_all_finite(positions, "positions contain NaN or inf"),
        tf.debugging.assert_all_finite(momenta, "momenta contain NaN or inf"),
        tf.debugging.assert_all_finite(box, "box contains NaN or inf"),
        tf.debugging.assert_greater_equal(box, tf.constant(2.0 * c.cutoff_angstrom), message=(
            f"box edge < 2 × cutoff {c.cutoff_angstrom} Å: the minimum-image neighbor "
            f"search needs every edge ≥ {2 * c.cutoff_angstrom} Å")),
    ]

  def _run(self, loop, q, p, box, num_steps, dyn=stepping.Dynamic()):
    prop = propagators.model_propagator(self.model, mode=self.mode, precision=self.precision)
    out = stepping.run(prop, self.capacity, loop, q, p, box, num_steps, dyn)
    return out.positions, out.momenta, out.overflow

  def _nve(self, q, p, box, num_steps):
    return self._run(stepping.Loop(), q, p, box, num_steps)

  def _nvt(self, q, p, box, num_steps, target_temperature, tau_fs, seed):
    return self._run(stepping.Loop(thermostat="csvr"), q, p, box, num_steps,
                     stepping.Dynamic(seed=seed, temperature=target_temperature, tau_fs=tau_fs))

  def _finish(self, q, p, overflow):
    """float32 outputs, or InvalidArgument if a capacity overflowed (no truncation)."""
    ok = tf.debugging.Assert(tf.logical_not(overflow), [
        f"neighbor list overflow: the capacities fixed at export "
        f"({self.capacity.describe()}) are too small for this state; re-export with a "
        f"larger --capacity_multiplier"])
    with tf.control_dependencies([ok]):
      return {"positions": tf.cast(q, tf.float32), "momenta": tf.cast(p, tf.float32)}

  def _advance(self, positions, momenta, box, num_steps):
    q, p, overflow = self._nve_loop(tf.cast(positions, tf.float64),
                                   tf.cast(momenta, tf.float64), box, num_steps)
    return self._finish(q, p, overflow)

  @tf.function(input_signature=_STATE)
  def step(self, positions, momenta, box):
    with tf.control_dependencies(self._check(positions, momenta, box)):
      return self._advance(positions, momenta, box, 1)

  @tf.function(input_signature=_STATE + [_STEPS])
  def rollout(self, positions, momenta, box, num_steps):
    checks = self._check(positions, momenta, box) + [
        tf.debugging.assert_non_negative(num_steps, message="num_steps must be ≥ 0")]
    with tf.control_dependencies(checks):
      return self._advance(positions, momenta, box, num_steps)

  @tf.function(input_signature=_STATE + [
      _STEPS, tf.TensorSpec([], tf.float32, name="target_temperature"),
      tf.TensorSpec([], tf.float32, name="tau_fs"), tf.TensorSpec([], tf.int32, name="seed")])
  def rollout_nvt(self, positions, momenta, box, num_steps, target_temperature, tau_fs, seed):
    checks = self._check(positions, momenta, box) + [
        tf.debugging.assert_non_negative(num_steps, message="num_steps must be ≥ 0"),
        tf.debugging.assert_positive(target_temperature, message="target_temperature must be > 0 K"),
        tf.debugging.assert_positive(tau_fs, message="tau_fs must be > 0 fs")]
    with tf.control_dependencies(checks):
      q, p, overflow = self._nvt_loop(tf.cast(positions, tf.float64),
                                     tf.cast(momenta, tf.float64), box, num_steps,
                                     target_temperature, tau_fs, seed)
      return self._finish(q, p, overflow)

  def signatures(self):
    return {"serving_default": self.step, "rollout": self.rollout,
            "rollout_nvt": self.rollout_nvt}
