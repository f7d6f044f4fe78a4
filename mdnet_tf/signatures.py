"""The exported step functions: neighbor search + model + update, all in-graph.

Shared by export (exporting.py) and the tests. The steps are the package's one
step loop (stepping.py) with the model's propagator (propagators.py), so a
served roll-out computes exactly what an in-process one does. Everything here
is TF ops (no DGL, NumPy or py_function), so it runs inside a SavedModel and
TF Serving. Signatures (fixed contract; inputs positions [N,3] f32 Å, momenta
[N,3] f32 g/mol·Å/fs, box [3] f32 Å):
  serving_default(...) -> {positions, momenta} one Δt later (positions unwrapped)
  rollout(..., num_steps [] int32) -> NVE roll-out
  rollout_rescaled(..., num_steps) -> NVE with the momenta rescaled about the
      centre of mass after every step so that kinetic + LJ energy stays at the
      initial total (FlashMD; α within [0.9, 1.1], infeasible/clipped counted)
  rollout_nvt(..., num_steps, target_temperature [] f32 K, tau_fs [] f32,
      seed [] int32) -> CSVR for ½Δt before and after every learned step
Every roll-out signature returns positions, momenta (float32), temperature
(K), potential_energy, kinetic_energy (kcal/mol, LJ of the model's config),
min_distance (Å), all float64, steps_done (int32), failure (int32: 0 none,
1 non-finite values, 2 temperature outside [T₀/f, T₀·f], 3 a pair closer than
min_distance, 4 the implicit step of a symplectic model did not converge; T₀
the start temperature, or the target in NVT), and
rollout_rescaled also infeasible_rescales, clipped_rescales (int32). After a
failure the loop stops and returns the last good state with steps_done <
num_steps. Inside roll-outs positions and momenta accumulate in float64.

Execution mode (propagators.MODES):
  graph (default) — compact graph, plain TF graph execution, oneDNN matmuls; no
    function is marked must-compile, so the stock tensorflow_model_server
    (which disables XLA) loads and runs it; nothing can overflow;
  xla — padded graph with capacities fixed at export, the step loop one XLA
    program (needs a server started with --xla_cpu_compilation_enabled).
Bad input (rank/shape, N mismatch, non-finite values, box < 2 r_c) and, in xla
mode, a neighbor-list or graph overflow that is not part of a physical failure
raise InvalidArgument with a message, as does a symplectic model's single step
whose implicit solve does not converge.
"""

import types

import tensorflow as tf

from mdnet_tf import integrate
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

  def __init__(self, model, capacity, mode=propagators.DEFAULT_MODE, precision="float32",
               temperature_factor=3.0, min_distance=2.5):
    """temperature_factor, min_distance (Å): the failure criteria of the roll-outs."""
    super().__init__(name="mdnet_step")
    if mode not in propagators.MODES:
      raise ValueError(f"mode must be one of {propagators.MODES}, got {mode!r}")
    self.model = model
    self.config = model.config
    self.capacity = capacity
    self.mode = mode
    self.precision = precision
    self.temperature_factor = float(temperature_factor)
    self.min_distance = float(min_distance)
    # One propagator for every signature (a symplectic model's solve is then one
    # traced function they share) and the step loops, one XLA program each in
    # xla mode (the checks and the overflow → InvalidArgument conversion stay
    # outside: XLA drops Asserts); plain graph functions in graph mode. Held in
    # a namespace that tf.Module does not track: tf.saved_model.save would save
    # attribute functions on their own and trace them all again (half of an
    # export's time).
    jit = mode == "xla"
    self._untracked = types.SimpleNamespace(
        propagator=propagators.model_propagator(model, mode=mode, precision=precision),
        single=tf.function(self._single, jit_compile=jit),
        nve=tf.function(self._nve, jit_compile=jit),
        rescaled=tf.function(self._rescaled, jit_compile=jit),
        nvt=tf.function(self._nvt, jit_compile=jit))

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

  def _single(self, q, p, box):
    out = stepping.run(self._untracked.propagator, self.capacity, stepping.Loop(), q, p, box, 1)
    return out.positions, out.momenta, out.overflow

  def _monitored(self, loop, q, p, box, num_steps, reference_temperature=None, **dyn):
    """The monitored loop; reference temperature T₀: given (NVT) or the start's."""
    prop = self._untracked.propagator
    t0 = (integrate.temperature(p, prop.mass) if reference_temperature is None
          else tf.cast(reference_temperature, tf.float64))
    f = self.temperature_factor
    out = stepping.run(prop, self.capacity, loop, q, p, box, num_steps,
                       stepping.Dynamic(t_low=t0 / f, t_high=t0 * f, **dyn))
    row = out.rows[-1]
    names = stepping.RECORDED
    good = out.steps_done - tf.cast(out.failed, tf.int32)
    return {"positions": out.positions, "momenta": out.momenta,
            "temperature": row[names.index("temperature_K")],
            "potential_energy": row[names.index("potential_kcal_mol")],
            "kinetic_energy": row[names.index("kinetic_kcal_mol")],
            "min_distance": row[names.index("min_distance_A")],
            "steps_done": good, "failure": out.code,
            "infeasible_rescales": tf.cast(out.events[0], tf.int32),
            "clipped_rescales": tf.cast(out.events[1], tf.int32),
            "overflow": out.overflow & ~out.failed}

  def _loop(self, **kwargs):
    return stepping.Loop(monitor=True, min_distance=self.min_distance, **kwargs)

  def _nve(self, q, p, box, num_steps):
    return self._monitored(self._loop(), q, p, box, num_steps)

  def _rescaled(self, q, p, box, num_steps):
    # E₀ = kinetic + LJ energy of the start: the monitored values before any step.
    start = stepping.run(self._untracked.propagator, self.capacity, self._loop(), q, p, box, 0)
    e0 = start.rows[-1][stepping.RECORDED.index("total_kcal_mol")]
    return self._monitored(self._loop(energy_rescale=True), q, p, box, num_steps, e0=e0)

  def _nvt(self, q, p, box, num_steps, target_temperature, tau_fs, seed):
    return self._monitored(self._loop(thermostat="csvr"), q, p, box, num_steps,
                           reference_temperature=target_temperature, seed=seed,
                           temperature=target_temperature, tau_fs=tau_fs)

  def _overflow_check(self, overflow):
    return tf.debugging.Assert(tf.logical_not(overflow), [
        f"neighbor list overflow: the capacities fixed at export "
        f"({self.capacity.describe()}) are too small for this state (no atoms came "
        f"unphysically close); re-export with a larger --capacity_multiplier"])

  def _finish(self, q, p, overflow):
    """float32 outputs, or InvalidArgument if a capacity overflowed (no truncation)."""
    with tf.control_dependencies([self._overflow_check(overflow)]):
      return {"positions": tf.cast(q, tf.float32), "momenta": tf.cast(p, tf.float32)}

  def _finish_rollout(self, out, rescaled=False):
    """The roll-out outputs (see the module doc); an overflow not caused by a
    physical failure is an InvalidArgument error."""
    keys = ["temperature", "potential_energy", "kinetic_energy", "min_distance",
            "steps_done", "failure"] + (["infeasible_rescales", "clipped_rescales"]
                                        if rescaled else [])
    with tf.control_dependencies([self._overflow_check(out["overflow"])]):
      result = {"positions": tf.cast(out["positions"], tf.float32),
                "momenta": tf.cast(out["momenta"], tf.float32)}
      result.update({k: tf.identity(out[k]) for k in keys})
      return result

  def _inputs(self, positions, momenta):
    return tf.cast(positions, tf.float64), tf.cast(momenta, tf.float64)

  def _rollout_checks(self, positions, momenta, box, num_steps):
    return self._check(positions, momenta, box) + [
        tf.debugging.assert_non_negative(num_steps, message="num_steps must be ≥ 0")]

  @tf.function(input_signature=_STATE)
  def step(self, positions, momenta, box):
    with tf.control_dependencies(self._check(positions, momenta, box)):
      return self._finish(*self._untracked.single(*self._inputs(positions, momenta), box))

  @tf.function(input_signature=_STATE + [_STEPS])
  def rollout(self, positions, momenta, box, num_steps):
    with tf.control_dependencies(self._rollout_checks(positions, momenta, box, num_steps)):
      return self._finish_rollout(
          self._untracked.nve(*self._inputs(positions, momenta), box, num_steps))

  @tf.function(input_signature=_STATE + [_STEPS])
  def rollout_rescaled(self, positions, momenta, box, num_steps):
    with tf.control_dependencies(self._rollout_checks(positions, momenta, box, num_steps)):
      return self._finish_rollout(
          self._untracked.rescaled(*self._inputs(positions, momenta), box, num_steps), True)

  @tf.function(input_signature=_STATE + [
      _STEPS, tf.TensorSpec([], tf.float32, name="target_temperature"),
      tf.TensorSpec([], tf.float32, name="tau_fs"), tf.TensorSpec([], tf.int32, name="seed")])
  def rollout_nvt(self, positions, momenta, box, num_steps, target_temperature, tau_fs, seed):
    checks = self._rollout_checks(positions, momenta, box, num_steps) + [
        tf.debugging.assert_positive(target_temperature, message="target_temperature must be > 0 K"),
        tf.debugging.assert_positive(tau_fs, message="tau_fs must be > 0 fs")]
    with tf.control_dependencies(checks):
      return self._finish_rollout(self._untracked.nvt(*self._inputs(positions, momenta), box,
                                                 num_steps, target_temperature, tau_fs, seed))

  def signatures(self):
    return {"serving_default": self.step, "rollout": self.rollout,
            "rollout_rescaled": self.rollout_rescaled, "rollout_nvt": self.rollout_nvt}
