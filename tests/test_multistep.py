"""Multi-step (roll-out-aware) training: sequences from the dumps, k = 1 is the
paper's loss exactly, gradients through the unrolled steps match finite
differences, the graph-mode trainer learns."""

import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import central_difference, smoke_config
from mdnet_tf import errors
from mdnet_tf import models
from mdnet_tf import multistep
from mdnet_tf import partition
from mdnet_tf import training
from mdnet_tf import units
from mdnet_tf.data import dataset
from mdnet_tf.data import dump
from mdnet_tf.models import compact_ops
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import segment_ops


@pytest.fixture(scope="module")
def sequences(smoke_dir):
  return dataset.load_sequences(smoke_dir, "train", 16, 3, starts_per_trajectory=2, seed=1)


def test_sequences_are_the_dumped_trajectory(smoke_dir, sequences):
  m = dataset.load_manifest(smoke_dir)
  s = sequences
  assert s.num_steps == 3 and s.positions.shape[1:3] == (4, m["num_atoms"])
  k = int(np.nonzero(~s.reversed)[0][0])
  record = m["trajectories"][s.trajectory[k]]
  frames = {f.timestep: f for f in dump.read_dump(os.path.join(smoke_dir, record["dump"]))}
  for j in range(4):
    f = frames[int(s.time_fs[k]) + 16 * j]
    np.testing.assert_array_equal(s.positions[k, j], f.positions)
    np.testing.assert_allclose(s.momenta[k, j], f.velocities * units.ARGON_MASS, rtol=1e-12)
  # Its time-reversed twin: the same states backwards with negated momenta.
  np.testing.assert_array_equal(s.positions[k + 1], s.positions[k][::-1])
  np.testing.assert_array_equal(s.momenta[k + 1], -s.momenta[k][::-1])
  with pytest.raises(errors.DatasetError, match="exceed"):
    dataset.load_sequences(smoke_dir, "train", 128, 5)


def _forward(model):
  return lambda *args: models.forward(model, *args)


def test_one_step_is_the_papers_loss_exactly(smoke_dir):
  pairs, config = smoke_config(smoke_dir)
  model = models.build(config)
  seqs = multistep.prepare(dataset.load_sequences(smoke_dir, "train", 16, 1,
                                                  starts_per_trajectory=1))
  q, p, box, dq, dp = (x[0] for x in seqs)
  got = multistep.unrolled_terms(_forward(model), config, q, p, box, dq, dp)
  g = graph_lib.from_pairs(*partition.pairs(q, box, 7.0))
  dq_pred, dp_pred = models.forward(model, q, p, box, g, compact_ops)
  want = training.loss_terms(config, dq_pred, dp_pred, dq[0], dp[0])
  assert [float(x) for x in got] == [float(x) for x in want]
  # The padded XLA training path gives the same loss to float32 rounding.
  _, nl = partition.allocate(q, box, 7.0)
  padded = graph_lib.from_neighbors(q, box, nl, 7.0, int(tf.reduce_sum(nl.counts)) // 2)
  xla = tf.function(lambda: models.forward(model, q, p, box, padded, segment_ops),
                    jit_compile=True)
  np.testing.assert_allclose(float(training.loss_terms(config, *xla(), dq[0], dp[0])[0]),
                             float(got[0]), rtol=1e-4)


def test_momentum_weight_scales_only_the_momentum_term(smoke_dir):
  """loss = position term + w · momentum term, in the unrolled loss (k = 2) and
  in the trainer's validation loss; the two terms themselves do not change."""
  _, config = smoke_config(smoke_dir)
  model = models.build(config, seed=2)
  seqs = multistep.prepare(dataset.load_sequences(smoke_dir, "train", 16, 2,
                                                  starts_per_trajectory=1))
  args = [x[0] for x in seqs]
  one = [float(x) for x in multistep.unrolled_terms(_forward(model), config, *args)]
  seven = [float(x) for x in multistep.unrolled_terms(_forward(model), config, *args,
                                                      momentum_weight=7.0)]
  assert one[1:] == seven[1:] and one[2] > 0
  np.testing.assert_allclose(seven[0], one[1] + 7.0 * one[2], rtol=1e-6)
  val = training.prepare(dataset.load_pairs(smoke_dir, "validation", 16), 7.0)
  predict = lambda q, p, box, graph: models.forward(model, q, p, box, graph, segment_ops)
  plain = training.evaluate(predict, val, config)
  weighted = training.evaluate(predict, val, config, momentum_weight=7.0)
  assert weighted["rmse_velocities"] == plain["rmse_velocities"]
  assert weighted["loss"] > 1.5 * plain["loss"]


def test_gradient_through_the_unroll_matches_finite_differences(smoke_dir):
  _, config = smoke_config(smoke_dir)
  model = models.build(config, seed=3)
  seqs = multistep.prepare(dataset.load_sequences(smoke_dir, "train", 16, 3,
                                                  starts_per_trajectory=1))
  q, p, box, dq, dp = (x[0] for x in seqs)
  loss = lambda: multistep.unrolled_terms(_forward(model), config, q, p, box, dq, dp)[0]
  weight = model.phi_e.weights[0]
  with tf.GradientTape() as tape:
    value = loss()
  grad = tape.gradient(value, weight).numpy()

  def stepwise():
    """The same loss with the steps cut apart (gradients not through the unroll)."""
    cum_q, cum_p, total = tf.zeros_like(q), tf.zeros_like(p), 0.0
    for j in range(3):
      qj, pj = tf.stop_gradient(q + cum_q), tf.stop_gradient(p + cum_p)
      g = graph_lib.from_pairs(*partition.pairs(qj, box, 7.0))
      a, b = models.forward(model, qj, pj, box, g, compact_ops)
      cum_q, cum_p = tf.stop_gradient(cum_q) + a, tf.stop_gradient(cum_p) + b
      total += training.loss_terms(config, cum_q, cum_p, dq[j], dp[j])[0] / 3
    return total

  with tf.GradientTape() as tape:
    cut = tape.gradient(stepwise(), weight).numpy()
  h = 3e-3
  checked = 0
  for (i, j) in [(0, 0), (1, 5), (3, 17), (6, 30)]:
    fd = central_difference(loss, weight, (i, j), h)
    assert grad[i, j] == pytest.approx(fd, rel=3e-2, abs=2e-3), (i, j, grad[i, j], fd)
    if abs(cut[i, j] - grad[i, j]) > 0.1 * abs(grad[i, j]):
      checked += 1           # here the unroll matters, and FD sides with it
      assert abs(fd - grad[i, j]) < abs(fd - cut[i, j])
  assert checked, "no weight where gradients through the unroll differ from stepwise ones"


def test_graph_trainer_with_three_steps_reduces_the_loss(smoke_dir, tmp_path):
  pairs, config = smoke_config(smoke_dir)
  seqs = multistep.prepare(dataset.load_sequences(smoke_dir, "train", 16, 3,
                                                  starts_per_trajectory=2))
  trainer = training.Trainer(models.build(config), seqs, training.prepare(pairs, 7.0),
                             training.TrainOptions(steps=40, learning_rate=2e-3,
                                                   graph_backend="graph", noise=0.1,
                                                   validate_every=40),
                             str(tmp_path))
  forward = _forward(trainer.model)
  before = np.mean([float(multistep.unrolled_terms(forward, config, *(x[k] for x in seqs))[0])
                    for k in range(len(seqs))])
  trainer.fit(progress=False)
  after = np.mean([float(multistep.unrolled_terms(forward, config, *(x[k] for x in seqs))[0])
                   for k in range(len(seqs))])
  assert after < 0.8 * before, (before, after)
