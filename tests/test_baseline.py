"""MDNet with the Verlet baseline (models/baseline.py): with a silent network it
is velocity Verlet (checked against the float64 VerletSimulator, which shares
no code path with it beyond the pair force formula), on every message-passing
path; its output scales are Verlet's one-step error on the training pairs;
gradients flow through the unrolled baseline; it refuses XLA and a run cannot
change its baseline."""

import re

import numpy as np
import pytest
import tensorflow as tf

from conftest import smoke_config
from mdnet_tf import errors
from mdnet_tf import evaluation
from mdnet_tf import models
from mdnet_tf import multistep
from mdnet_tf import partition
from mdnet_tf import propagators
from mdnet_tf import run_config
from mdnet_tf import training
from mdnet_tf import verlet
from mdnet_tf.data import dataset
from mdnet_tf.models import baseline
from mdnet_tf.models import compact_ops
from mdnet_tf.models import dgl_ops
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import segment_ops


def _silent(model):
  """Zeroes φ_o's last layer: the network then predicts exactly 0."""
  model.phi_o.weights[-1].assign(tf.zeros_like(model.phi_o.weights[-1]))
  model.phi_o.biases[-1].assign(tf.zeros_like(model.phi_o.biases[-1]))
  return model


def test_silent_network_on_the_verlet_baseline_is_velocity_verlet(smoke_dir):
  pairs, config = smoke_config(smoke_dir, baseline=baseline.VERLET)
  model = _silent(models.build(config))
  sim = verlet.VerletSimulator(16.0, mass=config.mass_amu, lj=config.lj(), dtype=tf.float64)
  for k in (0, 5):
    q = tf.constant(pairs.positions[k], tf.float32)
    p = tf.constant(pairs.momenta[k], tf.float32)
    box = tf.constant(pairs.box[k], tf.float32)
    # The reference starts from the same float32-rounded state, in float64.
    q64, p64 = q.numpy().astype(np.float64), p.numpy().astype(np.float64)
    ref = sim.run(q64, p64, pairs.box[k], 1)
    want_dq, want_dp = ref.positions[-1] - q64, ref.momenta[-1] - p64
    compact = graph_lib.from_pairs(*partition.pairs(q, box, 7.0))
    _, nl = partition.allocate(q, box, 7.0)
    padded = graph_lib.from_neighbors(q, box, nl, 7.0, int(tf.reduce_sum(nl.counts)) // 2)
    paths = {"compact": (compact, compact_ops), "padded": (padded, segment_ops),
             "dgl": (dgl_ops.to_dgl(padded, q.shape[0]), dgl_ops)}
    for name, (g, ops) in paths.items():
      dq, dp = models.forward(model, q, p, box, g, ops)
      # float32 arithmetic: Δq ≲ 0.03 Å to ~1e-6 relative. The end forces are taken at
      # q + Δq rounded to float32 (~1e-6 Å at |q| ~ 20 Å): with pair stiffness up to
      # ~100 kcal/mol/Å² that moves them by ~1e-4 kcal/mol/Å, Δp by ~3e-7 g/mol·Å/fs.
      np.testing.assert_allclose(dq.numpy(), want_dq, rtol=0, atol=5e-8, err_msg=name)
      np.testing.assert_allclose(dp.numpy(), want_dp, rtol=0, atol=3e-7, err_msg=name)
      # Verlet's pair forces are central: total momentum is conserved.
      assert abs(float(tf.reduce_sum(dp[:, 0]))) < 1e-5 * np.abs(want_dp).sum()


def test_residual_scales_are_verlets_one_step_error(smoke_dir):
  pairs, config = smoke_config(smoke_dir)
  s_q, s_p = baseline.residual_scales(pairs, config.mass_amu, config.lj(),
                                      max_frames=len(pairs))
  rmse_q, rmse_v = evaluation.verlet_rmse(pairs, config.mass_amu, config.lj())
  assert s_q == pytest.approx(rmse_q, rel=1e-9)
  assert s_p == pytest.approx(rmse_v * config.mass_amu, rel=1e-9)


def test_gradient_flows_through_the_unrolled_verlet_baseline(smoke_dir):
  """k = 2: the second step's baseline forces depend on the first step's
  prediction, so its loss moves with φ_o's weights through both steps."""
  _, config = smoke_config(smoke_dir, baseline=baseline.VERLET)
  model = models.build(config, seed=4)
  seqs = multistep.prepare(dataset.load_sequences(smoke_dir, "train", 16, 2,
                                                  starts_per_trajectory=1))
  args = [x[0] for x in seqs]
  forward = lambda *a: models.forward(model, *a)
  with tf.GradientTape() as tape:
    loss = multistep.unrolled_terms(forward, config, *args)[0]
  grads = tape.gradient(loss, model.trainable_variables)
  assert np.isfinite(float(loss)) and all(g is not None for g in grads)
  assert all(np.isfinite(g.numpy()).all() for g in grads)


def test_verlet_baseline_refuses_xla_and_a_run_cannot_change_it(smoke_dir, tmp_path):
  work = str(tmp_path / "run")
  config = run_config.resolve(work, smoke_dir, 16, "mdnet", baseline=baseline.VERLET)
  pairs = dataset.load_pairs(smoke_dir, "train", 16)
  s_q, s_p = baseline.residual_scales(pairs, config.mass_amu, config.lj())
  assert (config.stats.dq_scale, config.stats.dp_scale) == (s_q, s_p)
  assert not models.runs_under_xla(config)
  model = models.build(config)
  with pytest.raises(errors.InputError, match="graph mode, not xla"):
    propagators.model_propagator(model, mode="xla")
  data = training.prepare(pairs, 7.0, max_pairs=2)
  with pytest.raises(errors.InputError, match="--graph_backend=graph or dgl"):
    training.Trainer(model, data, data, training.TrainOptions(steps=1), str(tmp_path / "t"))
  training.save_config(work, config, {})
  assert run_config.resolve(work, smoke_dir, 16, "mdnet").baseline == baseline.VERLET
  refusals = [((work, smoke_dir, 16, "mdnet"), {"baseline": "free_flight"},
               "baseline 'verlet'"),
              ((str(tmp_path / "b"), smoke_dir, 16, "mdnet"),
               {"baseline": "free_flight", "init_from": work}, "baseline 'verlet'"),
              ((str(tmp_path / "c"), smoke_dir, 16, "egnn"), {"baseline": "verlet"},
               "option of --model=mdnet"),
              ((str(tmp_path / "d"), smoke_dir, 16, "mdnet"), {"baseline": "leapfrog"},
               "baseline must be one of")]
  for args, kwargs, message in refusals:
    with pytest.raises(errors.InputError, match=re.escape(message)):
      run_config.resolve(*args, **kwargs)


def test_export_serves_the_verlet_baseline_step(smoke_dir, tmp_path):
  """A Verlet-baseline MDNet exports in graph mode (xla is refused) and its
  served step and 3-step roll-out are the in-process ones (eager, padded graph
  rebuilt each step, float64 accumulation)."""
  import os  # pylint: disable=import-outside-toplevel
  from mdnet_tf import exporting  # pylint: disable=import-outside-toplevel
  pairs, config = smoke_config(smoke_dir, baseline=baseline.VERLET)
  model = models.build(config, seed=5)                  # an untrained network that acts
  workdir = str(tmp_path / "run")
  tf.train.Checkpoint(model=model).write(os.path.join(workdir, "checkpoints", "ckpt"))
  with open(os.path.join(workdir, "checkpoints", "checkpoint"), "w") as f:
    f.write('model_checkpoint_path: "ckpt"\n')
  training.save_config(workdir, config, {"data_dir": smoke_dir})
  with pytest.raises(errors.InputError, match="graph mode, not xla"):
    exporting.export(workdir, str(tmp_path / "xla"), 1, smoke_dir, mode="xla")
  served = tf.saved_model.load(exporting.export(workdir, str(tmp_path / "served"), 1,
                                                smoke_dir))
  q, p, box = (np.asarray(x[0], np.float32) for x in (pairs.positions, pairs.momenta, pairs.box))
  q64, p64 = q.astype(np.float64), p.astype(np.float64)
  for steps in (1, 2, 3):
    q32, p32 = tf.constant(q64, tf.float32), tf.constant(p64, tf.float32)
    _, nl = partition.allocate(q32, box, 7.0)
    g = graph_lib.from_neighbors(q32, tf.constant(box), nl, 7.0,
                                 int(tf.reduce_sum(nl.counts)) // 2)
    dq, dp = models.forward(model, q32, p32, tf.constant(box), g, segment_ops)
    q64, p64 = q64 + dq.numpy(), p64 + dp.numpy()
    if steps == 1:
      out = served.signatures["serving_default"](
          positions=tf.constant(q), momenta=tf.constant(p), box=tf.constant(box))
      np.testing.assert_allclose(out["positions"].numpy(), q64, atol=2e-6)
      np.testing.assert_allclose(out["momenta"].numpy(), p64, atol=3e-5 * np.abs(p).max())
  roll = served.signatures["rollout"](positions=tf.constant(q), momenta=tf.constant(p),
                                      box=tf.constant(box), num_steps=tf.constant(3))
  assert int(roll["steps_done"]) == 3 and int(roll["failure"]) == 0
  # float32 steps accumulated in float64 on both sides: rounding of the per-step
  # updates (positions ~1e-6 Å at ~20 Å; momenta as in the test above).
  np.testing.assert_allclose(roll["positions"].numpy(), q64, atol=2e-5)
  np.testing.assert_allclose(roll["momenta"].numpy(), p64, atol=1e-4 * np.abs(p).max())
