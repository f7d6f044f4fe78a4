"""The generating-function step (models/symplectic.py), checked against its defining
properties: exact momentum conservation, invariance and evenness of S, the implicit
midpoint rule (midpoint form) and velocity Verlet (composition) with the independent
LJ force code when δS = 0, time reversibility, and symplecticity of the solved map
(finite-difference Jacobian, float64), with an explicit map of the same network as
the negative control; both generating functions wherever the property is theirs."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import brute_force_neighbors
from mdnet_tf import errors
from mdnet_tf import multistep
from mdnet_tf import potentials
from mdnet_tf import space
from mdnet_tf import propagators
from mdnet_tf import stepping
from mdnet_tf import partition
from mdnet_tf import units
from mdnet_tf.models import mdnet
from mdnet_tf.models import mlp
from mdnet_tf.models import normalization
from mdnet_tf.models import symplectic

STATS = normalization.NormStats(inv_r_mean=0.2, inv_r_std=0.045, rel_pos_scale=0.116,
                                rel_mom_scale=0.072, mean_neighbors=24.0, dq_scale=0.062,
                                dp_scale=0.0375)
BOX = np.full(3, 16.0)


@pytest.fixture
def exact():
  """Networks in float64 too: the exactness checks below resolve 1e-10."""
  with mlp.precision(tf.float64):
    yield


# Without / with the many-body term, and the composition and the splitting without it
# (the term is the same code in every form; their solves add to the cost of each case).
FORMS = pytest.mark.parametrize("density, generating", [
    (0, symplectic.MIDPOINT), (4, symplectic.MIDPOINT), (0, symplectic.COMPOSITION),
    (0, symplectic.SPLITTING)])


def _model(dt_fs=64.0, random_correction=True, seed=0, density=0,
           generating=symplectic.MIDPOINT):
  substep = 16.0 if generating == symplectic.SPLITTING else 0.0
  config = mdnet.MDNetConfig(dt_fs=dt_fs, stats=STATS, model=symplectic.FAMILY,
                             density_channels=density, symplectic_width=16,
                             generating_function=generating, splitting_substep_fs=substep)
  model = symplectic.GeneratingFunction(config, seed=seed)
  if random_correction:   # a trained-looking δS ≠ 0
    rng = np.random.default_rng(seed)
    for net in model.nets:
      net.weights[-1].assign(rng.normal(0.0, 0.5, net.weights[-1].shape).astype(np.float32))
  return model


def _tiny_state(seed=0, n=5):
  """n argon atoms 3.4–4.5 Å apart in a 16 Å box, thermal momenta (float64)."""
  rng = np.random.default_rng(seed)
  q = [np.array([5.0, 5.0, 5.0])]
  while len(q) < n:
    c = q[rng.integers(len(q))] + rng.normal(size=3) / 1.0
    c = q[-1] + 3.6 * (c - q[-1]) / np.linalg.norm(c - q[-1])
    if min(np.linalg.norm(c - x) for x in q) > 3.3:
      q.append(c)
  p = rng.normal(0.0, 0.05, (n, 3))
  return tf.constant(np.array(q)), tf.constant(p - p.mean(0)), tf.constant(BOX)


def _flow(model, q, p, box):
  i, j = symplectic.midpoint_pairs(q, box, model.config.cutoff_angstrom)
  return [x.numpy() for x in model.flow(q, p, box, i, j)]


@FORMS
def test_flow_conserves_momentum_and_is_invariant_and_even_in_momenta(exact, density,
                                                                      generating):
  """Σ Δp = 0 and invariance for every form; S even in p̄ for the midpoint and
  splitting forms (their reversibility rests on it), while the composition's G is deliberately
  not (a type-2 generating function of a reversible flow is not even in P;
  its step is reversible by construction, tested below)."""
  model = _model(density=density, generating=generating)
  q, p, box = _tiny_state()
  dq, dp = _flow(model, q, p, box)
  assert np.abs(dp).max() > 1e-4                                  # the correction acts
  np.testing.assert_allclose(dp.sum(axis=0), 0.0, atol=1e-14)     # Σ Δp = 0 exactly
  shifted = _flow(model, q + tf.constant([1.3, -2.1, 0.7], tf.float64), p, box)
  for a, b in zip(shifted, (dq, dp)):
    np.testing.assert_allclose(a, b, atol=1e-13)
  rot = tf.constant([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], tf.float64)
  rotated = _flow(model, q @ tf.transpose(rot), p @ tf.transpose(rot), box)
  for a, b in zip(rotated, (dq, dp)):
    np.testing.assert_allclose(a, b @ rot.numpy().T, atol=1e-13)
  dq_rev, dp_rev = _flow(model, q, -p, box)
  if generating != symplectic.COMPOSITION:
    np.testing.assert_allclose(dq_rev, -dq, atol=1e-13)           # ∂S/∂p̄ odd in p̄
    np.testing.assert_allclose(dp_rev, dp, atol=1e-13)            # ∂S/∂q̄ even in p̄
  else:
    assert np.abs(dp_rev - dp).max() > 1e-6                       # G's odd part acts


def test_zero_correction_is_the_implicit_midpoint_rule_with_the_lj_force(exact):
  model = _model(dt_fs=16.0, random_correction=False)
  q, p, box = _tiny_state(1)
  out = symplectic.solve(model, q, p, box, symplectic.Solver(1e-13, 200))
  assert bool(out.converged), float(out.last_change)
  q1, p1 = out.positions.numpy(), out.momenta.numpy()
  qbar, pbar = 0.5 * (q.numpy() + q1), 0.5 * (p.numpy() + p1)
  # Independent force code: the dense-neighbor-list LJ of potentials.py.
  _, nl = partition.allocate(tf.constant(qbar), box, 7.0)
  _, _, force = potentials.energy_and_forces(tf.constant(qbar), box, nl,
                                             model.config.lj())
  np.testing.assert_allclose(q1 - q.numpy(), 16.0 * pbar / model.config.mass_amu,
                             atol=1e-11)
  np.testing.assert_allclose(p1 - p.numpy(), 16.0 * force.numpy() * units.FORCE_TO_ACCEL,
                             atol=1e-11)


def test_zero_correction_composition_is_velocity_verlet_with_the_lj_force(exact):
  """δG = 0: the composition of the type-2 half step with its adjoint is
  velocity Verlet of Δt (independent numpy Verlet, dense-list LJ forces), and
  its training prediction on a pair Δt/2 apart is G's flow at (q, P = p′)."""
  model = _model(dt_fs=32.0, random_correction=False, generating=symplectic.COMPOSITION)
  q, p, box = _tiny_state(1)
  out = symplectic.solve(model, q, p, box, symplectic.Solver(1e-13, 200))
  assert bool(out.converged), float(out.last_change)
  mass = model.config.mass_amu

  def accel(x):
    _, nl = partition.allocate(tf.constant(x), box, 7.0)
    _, _, force = potentials.energy_and_forces(tf.constant(x), box, nl, model.config.lj())
    return force.numpy() * units.FORCE_TO_ACCEL

  p_half = p.numpy() + 16.0 * accel(q.numpy())
  q1 = q.numpy() + 32.0 * p_half / mass
  p1 = p_half + 16.0 * accel(q1)
  np.testing.assert_allclose(out.positions.numpy(), q1, atol=1e-11)
  np.testing.assert_allclose(out.momenta.numpy(), p1, atol=1e-11)
  dq, dp = (x.numpy() for x in symplectic.teacher_forced(
      model, q, p, tf.constant(q1 - q.numpy()), tf.constant(p1 - p.numpy()), box))
  np.testing.assert_allclose(dq, 16.0 * p1 / mass, atol=1e-12)
  np.testing.assert_allclose(dp, 16.0 * accel(q.numpy()), atol=1e-12)


def _numpy_verlet(q, p, box, dt_fs, steps, lj, mass):
  """Velocity Verlet with dense-neighbor-list LJ forces (potentials.energy_and_forces,
  truncated: the test states keep every pair far from r_c), numpy float64; mass g/mol."""
  def accel(x):
    _, nl = partition.allocate(tf.constant(x), box, lj.cutoff)
    return potentials.energy_and_forces(tf.constant(x), box, nl, lj)[2].numpy() * (
        units.FORCE_TO_ACCEL)

  a = accel(q)
  for _ in range(steps):
    p_half = p + 0.5 * dt_fs * a
    q = q + dt_fs * p_half / mass
    a = accel(q)
    p = p_half + 0.5 * dt_fs * a
  return q, p


def test_zero_correction_splitting_is_verlet_in_substeps(exact):
  """δS = 0: the splitting V∘C∘V is velocity Verlet of Δt in substeps
  (independent numpy Verlet, 4 × 16 fs for Δt = 64 fs), and its training
  prediction on that Verlet pair is the pair itself (C's target b − a is 0)."""
  model = _model(dt_fs=64.0, random_correction=False, generating=symplectic.SPLITTING)
  q, p, box = _tiny_state(1)
  out = symplectic.solve(model, q, p, box, symplectic.Solver(1e-13, 200))
  assert bool(out.converged), float(out.last_change)
  assert int(out.iterations) == 1                     # C is the identity: solved at once
  q1, p1 = _numpy_verlet(q.numpy(), p.numpy(), box, 16.0, 4, model.config.lj(),
                         model.config.mass_amu)
  np.testing.assert_allclose(out.positions.numpy(), q1, atol=1e-11)
  np.testing.assert_allclose(out.momenta.numpy(), p1, atol=1e-11)
  assert np.abs(q1 - q.numpy()).max() > 0.05          # the step moves the atoms
  dq, dp = tf.constant(q1 - q.numpy()), tf.constant(p1 - p.numpy())
  pred = symplectic.teacher_forced(model, q, p, dq, dp, box)
  np.testing.assert_allclose(pred[0].numpy(), dq.numpy(), atol=1e-11)
  np.testing.assert_allclose(pred[1].numpy(), dp.numpy(), atol=1e-11)


@FORMS
def test_solved_step_is_time_reversible(exact, density, generating):
  model = _model(density=density, generating=generating)
  q, p, box = _tiny_state(2)
  fwd = symplectic.solve(model, q, p, box, symplectic.Solver(1e-13, 200))
  back = symplectic.solve(model, fwd.positions, -fwd.momenta, box, symplectic.Solver(1e-13, 200))
  assert bool(fwd.converged) and bool(back.converged)
  np.testing.assert_allclose(back.positions.numpy(), q.numpy(), atol=1e-10)
  np.testing.assert_allclose(-back.momenta.numpy(), p.numpy(), atol=1e-10)


def test_a_fine_tune_with_the_many_body_term_starts_at_the_pair_model(exact, tmp_path):
  """A model with density channels restored (as --init_from does) from a
  checkpoint of one without has the same flow: χ starts at zero; its features
  are finite and O(1) on a dense state; and its gradient reaches χ's weights."""
  from mdnet_tf.models import io as model_io  # pylint: disable=import-outside-toplevel
  old = _model(seed=3)
  tf.train.Checkpoint(model=old).write(str(tmp_path / "best" / "ckpt"))
  with open(tmp_path / "best" / "checkpoint", "w") as f:
    f.write('model_checkpoint_path: "ckpt"\n')
  new = symplectic.GeneratingFunction(
      dataclasses.replace(old.config, density_channels=4), seed=9)
  model_io.restore_weights(new, str(tmp_path))
  q, p, box = _tiny_state(5)
  for a, b in zip(_flow(new, q, p, box), _flow(old, q, p, box)):
    np.testing.assert_array_equal(a, b)
  i, j = symplectic.midpoint_pairs(q, box, 7.0)
  d = space.minimum_image(tf.gather(q, i) - tf.gather(q, j), box)
  r = tf.sqrt(tf.reduce_sum(d * d, axis=-1))
  z = new.environment(r, tf.zeros([len(r), 2], tf.float64), tf.ones_like(r), i, j, q.shape[0])
  assert z.shape == (q.shape[0], 6) and np.all(np.abs(z.numpy()) < 10.0)
  with tf.GradientTape() as tape:
    loss = _loss(new, q, p, 0.01 * tf.ones_like(q), 0.01 * tf.ones_like(p), box)
  grad = tape.gradient(loss, new.density_net.weights[-1])      # χ's (zero) last layer
  assert float(tf.reduce_max(tf.abs(grad))) > 0.0


def _loss(model, q, p, dq, dp, box):
  """The trainer's loss of one true pair: MDNet's normalized MSE of the
  teacher-forced flow (no solve)."""
  flow = symplectic.teacher_forced(model, q, p, dq, dp, box)
  return multistep.loss_terms(model.config, *flow, dq, dp)[0]


def _jacobian(step, x0, h):
  """Central finite-difference Jacobian of step: R^n -> R^n at x0 (float64)."""
  cols = []
  for k in range(len(x0)):
    e = np.zeros_like(x0)
    e[k] = h
    cols.append((step(x0 + e) - step(x0 - e)) / (2 * h))
  return np.stack(cols, axis=1)


def _symplectic_error(jac, n):
  """max |Mᵀ J M − J| for the canonical J of n positions and n momenta."""
  eye = np.eye(n)
  j = np.block([[np.zeros((n, n)), eye], [-eye, np.zeros((n, n))]])
  return np.abs(jac.T @ j @ jac - j).max()


@FORMS
def test_solved_step_is_symplectic_and_an_explicit_map_is_not(exact, density, generating):
  model = _model(density=density, generating=generating)
  if generating == symplectic.SPLITTING:
    # Its S is δS alone (no LJ term), whose explicit map x + flow(x) errs by
    # |Hessian|²: a stronger δS keeps the negative control's error clear of 1e-3.
    for net in model.nets:
      net.weights[-1].assign(3.0 * net.weights[-1])
  q, p, box = _tiny_state(3, n=4)
  n = q.shape[0] * 3
  # Coordinates scaled so that positions (Å) and momenta (s_p) are O(1) alike;
  # J is preserved up to the constant factor of the scaling, undone below.
  s_p = STATS.dp_scale

  # Traced once; Anderson alone (no Newton–Krylov rescue to trace: its own test
  # is below, and these tiny states converge without it).
  solve = tf.function(lambda q, p: symplectic.solve(
      model, q, p, box, symplectic.Solver(1e-14, 400, newton_iter=0)))

  def implicit(x):
    out = solve(tf.constant(x[:n].reshape(-1, 3)), tf.constant(x[n:].reshape(-1, 3) * s_p))
    assert bool(out.converged)
    return np.concatenate([out.positions.numpy().ravel(), out.momenta.numpy().ravel() / s_p])

  def explicit(x):      # the same S, evaluated at the start instead of the midpoint
    qq, pp = tf.constant(x[:n].reshape(-1, 3)), tf.constant(x[n:].reshape(-1, 3) * s_p)
    dq, dp = _flow(model, qq, pp, box)
    return np.concatenate([(qq.numpy() + dq).ravel(), (pp.numpy() + dp).ravel() / s_p])

  x0 = np.concatenate([q.numpy().ravel(), p.numpy().ravel() / s_p])
  for step, symplectic_expected in ((implicit, True), (explicit, False)):
    jac = _jacobian(step, x0, 1e-5)
    error = _symplectic_error(jac, n)
    if symplectic_expected:
      assert error < 1e-6, error
    else:
      assert error > 1e-3, error


@FORMS
def test_training_gradient_through_the_inner_derivatives_matches_finite_differences(
    exact, density, generating):
  """The loss of the teacher-forced flow (no solve) differentiated w.r.t. the
  weights with nested tapes, against central differences of the loss (float64)."""
  model = _model(density=density, generating=generating)
  q, p, box = _tiny_state(4)
  rng = np.random.default_rng(4)
  q1 = q + tf.constant(rng.normal(0.0, 0.05, q.shape))      # a "true" next state
  p1 = p + tf.constant(rng.normal(0.0, 0.02, p.shape))

  def loss():
    return _loss(model, q, p, q1 - q, p1 - p, box)

  with tf.GradientTape() as tape:
    value = loss()
  grads = tape.gradient(value, model.trainable_variables,
                        unconnected_gradients=tf.UnconnectedGradients.ZERO)
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)
  checked = 0
  for var, grad in zip(model.trainable_variables, grads):
    if var.shape.rank != 2:
      continue
    index = (0, 0)
    original = var.numpy()
    h = 1e-3
    values = []
    for sign in (1, -1):
      bumped = original.copy()
      bumped[index] += sign * h
      var.assign(bumped)
      values.append(float(loss()))
    var.assign(original)
    numeric = (values[0] - values[1]) / (2 * h)
    assert float(grad[index]) == pytest.approx(numeric, rel=2e-3, abs=1e-9), var.name
    checked += 1
  assert checked == 3 * len(model.nets)


def test_trainer_fits_the_generating_function_and_validates_with_the_solve(smoke_dir,
                                                                         tmp_path):
  """The Trainer path of --model=mdnet_symplectic: the no-solve loss falls, the
  validation solves the step (its RMSE is the solved one, not teacher-forced),
  and multi-step or noisy training is refused."""
  from mdnet_tf import models, training  # pylint: disable=import-outside-toplevel
  from mdnet_tf.data import dataset  # pylint: disable=import-outside-toplevel
  pairs = dataset.load_pairs(smoke_dir, "train", 64)
  config = mdnet.MDNetConfig(dt_fs=64.0, model=symplectic.FAMILY,
                             stats=normalization.NormStats.from_pairs(pairs, 39.948, 7.0))
  seqs = multistep.prepare(dataset.load_sequences(smoke_dir, "train", 64, 1,
                                                  starts_per_trajectory=3))
  validation = training.prepare(dataset.load_pairs(smoke_dir, "validation", 64), 7.0)
  options = training.TrainOptions(steps=30, learning_rate=2e-3, graph_backend="graph",
                                  validate_every=30)
  trainer = training.Trainer(models.build(config), seqs, validation, options, str(tmp_path))

  def mean_loss():
    return np.mean([float(_loss(trainer.model, seqs.positions[k], seqs.momenta[k],
                                seqs.dq[k][0], seqs.dp[k][0], seqs.box[k]))
                    for k in range(len(seqs))])

  before = mean_loss()
  trainer.fit(progress=False)
  assert mean_loss() < 0.8 * before
  metrics = trainer.validate()
  q, p, box, _, dq, _ = validation.pair(0)
  solved, _, converged = symplectic.predict(trainer.model, q, p, box)
  assert bool(converged) and metrics["unconverged"] == 0
  assert np.isfinite(metrics["rmse_positions"]) and metrics["rmse_positions"] > 0
  assert float(tf.reduce_max(tf.abs(solved - dq))) > 0       # a real prediction, not Δq
  with pytest.raises(errors.InputError, match="rollout_steps=1"):
    training.Trainer(models.build(config), multistep.prepare(dataset.load_sequences(
        smoke_dir, "train", 64, 2, starts_per_trajectory=1)), validation, options,
        str(tmp_path / "k2"))


def test_step_loop_runs_the_solved_step_and_stops_when_a_solve_fails(exact):
  """The propagator of a symplectic model in the one step loop: the same state
  as two direct solves (Anderson and plain damped iteration agree); a solve
  that cannot converge stops a monitored loop at the last good state with its
  own failure code and raises InvalidArgument in an unmonitored one."""
  model = _model()
  q, p, box = _tiny_state(5)
  assert propagators.model_propagator(model).implicit
  with pytest.raises(errors.InputError, match="graph mode only"):
    propagators.model_propagator(model, mode="xla")
  prop = propagators.symplectic_propagator(model, symplectic.Solver(1e-12, 200))
  assert prop.implicit and prop.float64_inputs and prop.compact
  out = stepping.run(prop, None, stepping.Loop(monitor=True, record_steps=2), q, p, box, 2)
  assert int(out.steps_done) == 2 and int(out.code) == 0
  iterations = out.rows.numpy()[:, stepping.RECORDED.index("solver_iterations")]
  assert np.all(iterations > 1)
  x = (q, p)
  for _ in range(2):
    step = symplectic.solve(model, *x, box, symplectic.Solver(1e-12, 400, memory=0))
    x = (step.positions, step.momenta)
  np.testing.assert_allclose(out.positions.numpy(), x[0].numpy(), atol=1e-10)
  np.testing.assert_allclose(out.momenta.numpy(), x[1].numpy(), atol=1e-10 * STATS.dp_scale)

  stuck = propagators.symplectic_propagator(model, symplectic.Solver(1e-12, 2, newton_iter=0))
  out = stepping.run(stuck, None, stepping.Loop(monitor=True), q, p, box, 3)
  assert stepping.FAILURES[int(out.code)] == "implicit step did not converge"
  assert int(out.steps_done) == 1 and bool(out.failed)
  assert out.rows.numpy()[-1, stepping.RECORDED.index("solver_iterations")] == 2
  np.testing.assert_array_equal(out.positions.numpy(), q.numpy())
  with pytest.raises(tf.errors.InvalidArgumentError, match="did not converge"):
    stepping.run(stuck, None, stepping.Loop(), q, p, box, 3)


@pytest.mark.parametrize("form,density", [(symplectic.MIDPOINT, 3),
                                          (symplectic.COMPOSITION, 0),
                                          (symplectic.SPLITTING, 0)])
def test_export_serves_the_solved_step(smoke_dir, tmp_path, form, density):
  """A symplectic model of any form exports in graph mode with MDNet's
  signatures: the SavedModel's step is the in-process solved step; XLA export
  is refused. (The many-body term and the roll-out signatures, the same code
  in both forms, are checked with the midpoint form only: the composition's
  two solves per step make each trace and first run of a signature costly.)"""
  from mdnet_tf import exporting, models, training  # pylint: disable=import-outside-toplevel
  from mdnet_tf.data import dataset  # pylint: disable=import-outside-toplevel
  pairs = dataset.load_pairs(smoke_dir, "train", 64)
  substep = symplectic.SPLITTING_SUBSTEP if form == symplectic.SPLITTING else 0.0
  config = mdnet.MDNetConfig(dt_fs=64.0, model=symplectic.FAMILY, density_channels=density,
                             generating_function=form, splitting_substep_fs=substep,
                             stats=normalization.NormStats.from_pairs(pairs, 39.948, 7.0))
  model = models.build(config)     # with the many-body term: the export must carry χ too
  rng = np.random.default_rng(7)
  for net in model.nets:                           # a correction that acts
    net.weights[-1].assign(rng.normal(0.0, 0.3, net.weights[-1].shape).astype(np.float32))
  workdir = str(tmp_path / "run")
  tf.train.Checkpoint(model=model).write(os.path.join(workdir, "checkpoints", "ckpt"))
  with open(os.path.join(workdir, "checkpoints", "checkpoint"), "w") as f:
    f.write('model_checkpoint_path: "ckpt"\n')
  training.save_config(workdir, config, {"data_dir": smoke_dir})
  if form == symplectic.MIDPOINT:
    with pytest.raises(errors.InputError, match="graph mode"):
      exporting.export(workdir, str(tmp_path / "xla"), 1, smoke_dir, mode="xla")
  path = exporting.export(workdir, str(tmp_path / "served"), 1, smoke_dir)
  served = tf.saved_model.load(path)
  q, p, box = (np.asarray(x[0], np.float32) for x in (pairs.positions, pairs.momenta, pairs.box))
  out = served.signatures["serving_default"](positions=tf.constant(q), momenta=tf.constant(p),
                                             box=tf.constant(box))
  ref = stepping.run(propagators.model_propagator(model), None, stepping.Loop(),
                     tf.constant(q, tf.float64), tf.constant(p, tf.float64), tf.constant(box), 1)
  moved = np.abs(ref.positions.numpy() - q).max()
  assert moved > 1e-2
  # float32 outputs: positions of ~20 Å round to 2e-6 Å; the solve stops at 1e-5.
  np.testing.assert_allclose(out["positions"].numpy(), ref.positions.numpy(), atol=2e-5)
  np.testing.assert_allclose(out["momenta"].numpy(), ref.momenta.numpy(),
                             atol=2e-5 * config.stats.dp_scale)
  if form == symplectic.MIDPOINT:   # the roll-out loops run the same step
    roll = served.signatures["rollout"](positions=tf.constant(q), momenta=tf.constant(p),
                                        box=tf.constant(box), num_steps=tf.constant(2))
    assert int(roll["steps_done"]) == 2 and int(roll["failure"]) == 0


def test_a_diverged_solve_stops_the_loop_with_its_reason(exact):
  """A solve that diverges to non-finite positions stops a monitored loop at the
  last good state with the solver's failure code (the pair search never sees
  the non-finite positions)."""
  model = _model()
  for net in model.nets:                            # a correction far too strong to solve
    net.weights[-1].assign(net.weights[-1] * 1e4)
  q, p, box = _tiny_state(6)
  prop = propagators.symplectic_propagator(model, symplectic.Solver(1e-6, 30))
  out = stepping.run(prop, None, stepping.Loop(monitor=True), q, p, box, 2)
  assert stepping.FAILURES[int(out.code)] == "implicit step did not converge"
  np.testing.assert_array_equal(out.positions.numpy(), q.numpy())


def test_newton_krylov_rescues_a_failed_anderson_solve(exact):
  """Anderson iteration that diverges (β = 30 overshoots to NaN) hands over to
  Newton–Krylov from the predictor, which reaches the same solution as a
  converged Anderson solve (float64 networks: the finite-difference
  Jacobian-vector products are good to ~1e-8, so Newton converges to 1e-12);
  iterations count both solvers' network
  evaluations. (Running out of iterations takes the same branch.)"""
  model = _model(dt_fs=128.0)
  q, p, box = _tiny_state(5)
  fresh = symplectic.solve(model, q, p, box, symplectic.Solver(1e-12, 200, 0.5, 3, 0))
  assert bool(fresh.converged)
  wild = symplectic.solve(model, q, p, box, symplectic.Solver(1e-12, 40, 30.0, 3, 0))
  assert not bool(wild.converged) and np.isnan(float(wild.last_change))
  rescued = symplectic.solve(model, q, p, box, symplectic.Solver(1e-12, 40, 30.0, 3))
  assert bool(rescued.converged) and float(rescued.last_change) < 1e-12
  assert int(rescued.iterations) > int(wild.iterations)
  np.testing.assert_allclose(rescued.positions.numpy(), fresh.positions.numpy(), atol=1e-10)
  np.testing.assert_allclose(rescued.momenta.numpy(), fresh.momenta.numpy(),
                             atol=1e-10 * STATS.dp_scale)


def test_pair_search_of_a_diverged_iterate_is_not_an_error():
  """An iterate that moved past the skin gets a fresh search (equal to the
  brute-force pairs); a diverging one (non-finite, or absurdly far) keeps the
  candidates instead of failing in the cell search, so that the solve reports
  it as not converged."""
  q, _, box = _tiny_state(3, n=8)
  cutoff = 7.0
  candidates = partition.pairs(q, box, cutoff + symplectic.SKIN)
  # As in the solve: traced (the graph's bincount is the one that checks its input).
  near = tf.function(lambda x: symplectic._pairs_near(  # pylint: disable=protected-access
      x, q, box, candidates, cutoff))
  far = q + tf.constant(np.random.default_rng(1).uniform(-2.0, 2.0, q.shape))
  i, j = near(far)
  want = brute_force_neighbors(far.numpy(), box.numpy(), cutoff)
  got = {(a, b) for a, b in zip(i.numpy().tolist(), j.numpy().tolist())}
  assert got == {(a, b) for a in range(8) for b in want[a] if a < b}
  for bad in (np.nan, np.inf, 1e30):  # in z: its cell index enters the flat id unscaled
    x = tf.tensor_scatter_nd_update(far, [[2, 2]], tf.constant([bad], tf.float64))
    i, j = near(x)
    assert i.shape == j.shape


def test_benchmark_counts_the_evaluations_of_the_solve_it_times():
  """benchmarking's solved-step timer reports the solve's own iteration count
  (a direct solve of the same state, same default solver, float32 networks)."""
  from mdnet_tf import benchmarking  # pylint: disable=import-outside-toplevel
  model = _model(dt_fs=128.0)
  q, p, box = _tiny_state(3, n=6)
  timer = benchmarking.ModelTimer(model, q.numpy(), p.numpy(), box.numpy())
  seconds, evaluations = timer.time_solved_steps(1, repeats=1)
  direct = symplectic.solve(model, tf.cast(timer.q, tf.float64), tf.cast(timer.p, tf.float64),
                            tf.cast(timer.box, tf.float64))
  assert bool(direct.converged) and seconds > 0
  assert evaluations == int(direct.iterations) > 1


def _switched_forces_brute_force(q, box, lj, width):
  """LJ forces by a double loop over minimum-image pairs, the pair force times
  1 − 10t³ + 15t⁴ − 6t⁵ on the last `width` Å before r_c (numpy, float64)."""
  f = np.zeros_like(q)
  for a in range(len(q)):
    for b in range(len(q)):
      d = q[a] - q[b]
      d -= box * np.round(d / box)
      r = np.linalg.norm(d)
      if a == b or r >= lj.cutoff:
        continue
      s6 = (lj.sigma / r) ** 6
      t = min(1.0, max(0.0, (r - lj.cutoff + width) / width)) if width else 0.0
      f[a] += 24 * lj.epsilon * (2 * s6 * s6 - s6) / r ** 2 * d * (1 - t**3 * (10 - 15*t + 6*t*t))
  return f


@pytest.mark.parametrize("width", [0.0, 0.5])
def test_baseline_force_against_brute_force(width):
  q, _, box = _tiny_state(4, n=6)
  lj = _model().config.lj()
  i, j = symplectic.midpoint_pairs(q, box, lj.cutoff)
  r = np.linalg.norm(space.minimum_image(
      tf.gather(q, i) - tf.gather(q, j), box).numpy(), axis=-1)
  assert np.any((r > lj.cutoff - width) & (r < lj.cutoff)) or width == 0.0   # switch in use
  np.testing.assert_allclose(potentials.pair_forces(q, box, i, j, lj, width).numpy(),
                             _switched_forces_brute_force(q.numpy(), box.numpy(), lj, width),
                             rtol=1e-12, atol=1e-15)


def test_switched_baseline_makes_the_solved_step_continuous_across_the_cutoff(exact):
  """Two atoms at rest about r_c apart, their distance d0 scanned across r_c in
  2.5e-5 Å steps: with lj/cut's truncated force the solved step jumps by the
  cutoff impulse (2.4e-4 Å of Δq at 64 fs) between neighbouring d0, where a
  roll-out's solve was seen to fail; with the switched force it is continuous."""
  jumps = {}
  for width in (0.0, symplectic.LJ_SWITCH):
    model = _model(dt_fs=64.0, random_correction=False)
    model.config = dataclasses.replace(model.config, lj_switch_angstrom=width)
    solver = symplectic.Solver(1e-12, 200, newton_iter=0)
    solve = tf.function(lambda q, p, b: symplectic.solve(model, q, p, b, solver))
    dq = []
    for d0 in 7.0 + np.linspace(-1e-4, 4e-4, 21):
      q = tf.constant(np.array([[4.0, 8.0, 8.0], [4.0 + d0, 8.0, 8.0]]))
      out = solve(q, tf.zeros([2, 3], tf.float64), tf.constant(BOX))
      assert bool(out.converged)
      dq.append(out.positions.numpy()[1, 0] - q.numpy()[1, 0])
    jumps[width] = np.max(np.abs(np.diff(dq)))
  assert jumps[0.0] > 2e-4 and jumps[symplectic.LJ_SWITCH] < 1e-9, jumps


def test_momentum_error_anatomy_against_a_direct_count():
  """The bins of cos(p, p′): fractions and error shares add to 1, an error put
  only on atoms whose motion reverses lands wholly in the cos < 0 bins, and the
  per-bin RMS ratio is the direct one."""
  from mdnet_tf import evaluation  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  p0 = rng.normal(size=(2, 50, 3))
  p1 = p0 * rng.choice([-1.0, 0.3, 1.0], size=(2, 50, 1)) + 0.05 * rng.normal(size=(2, 50, 3))
  pairs = dataclasses.make_dataclass("P", ["momenta", "next_momenta"])(p0, p1)
  cos = np.sum(p0 * p1, -1) / np.linalg.norm(p0, axis=-1) / np.linalg.norm(p1, axis=-1)
  error = np.where((cos < 0)[..., None], rng.normal(size=p0.shape), 0.0)
  rms, rows = evaluation.momentum_error_anatomy(p1 - p0 + error, pairs)
  assert rms == pytest.approx(np.sqrt(np.mean(np.sum(error ** 2, axis=-1))))
  assert sum(r["atoms"] for r in rows) == pytest.approx(1.0)
  assert sum(r["mse_share"] for r in rows if r["hi"] <= 0.0) == pytest.approx(1.0)
  norms = np.linalg.norm(error, axis=-1)
  sel = cos < -0.5
  assert 0 < sel.sum() < sel.size
  want = np.sqrt(np.mean(norms[sel] ** 2)) / np.sqrt(np.mean(norms ** 2))
  assert rows[0]["rms_ratio"] == pytest.approx(want)


def test_momentum_predictions_of_a_zero_correction_are_the_lj_impulse_at_the_midpoint(
    smoke_dir):
  """With δS = 0 (truncated baseline) the training target's prediction is
  Δt·F(q̄) at the true midpoints, F from the independent dense-list LJ code."""
  from mdnet_tf import evaluation  # pylint: disable=import-outside-toplevel
  from mdnet_tf.data import dataset  # pylint: disable=import-outside-toplevel
  pairs = dataset.load_pairs(smoke_dir, "validation", 64)
  config = mdnet.MDNetConfig(dt_fs=64.0, model=symplectic.FAMILY,
                             stats=normalization.NormStats.from_pairs(pairs, 39.948, 7.0))
  predicted = evaluation.momentum_predictions(symplectic.GeneratingFunction(config), pairs)
  assert predicted.shape == pairs.momenta.shape
  qbar = tf.constant(0.5 * (pairs.positions[0] + pairs.next_positions[0]))
  box = tf.constant(pairs.box[0])
  _, nl = partition.allocate(qbar, box, 7.0)
  _, _, force = potentials.energy_and_forces(qbar, box, nl, config.lj())
  np.testing.assert_allclose(predicted[0], 64.0 * units.FORCE_TO_ACCEL * force.numpy(),
                             rtol=1e-4, atol=1e-6)
