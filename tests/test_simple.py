"""SIMPLE baseline and Noether tailoring: kNN vs brute force, the tailoring step
lowers the Noether loss, second-order gradients vs finite differences, training."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import assert_training_reduces_loss, central_difference
from test_mdnet import STATS, _graph, _system
from mdnet_tf import models
from mdnet_tf.models import mdnet
from mdnet_tf.models import segment_ops
from mdnet_tf.models import simple
from mdnet_tf.models import tailoring


def _config(model="simple", tailor="none", lr=1e-2):
  return mdnet.MDNetConfig(dt_fs=16.0, stats=STATS, model=model, tailor=tailor, tailor_lr=lr)


def test_knn_matches_brute_force():
  q, p, box = _system(seed=6)
  model = models.build(_config())
  table = model._knn(_graph(q, box), tf.constant(q), tf.constant(p), tf.constant(box),
                     segment_ops).numpy()
  d = q[None, :, :] - q[:, None, :]              # d[i, j] = q_j − q_i
  d -= box * np.round(d / box)
  r = np.linalg.norm(d, axis=-1)
  np.fill_diagonal(r, np.inf)
  for i in range(len(q)):
    nearest = np.argsort(r[i])[:simple.K_NEIGHBORS]
    np.testing.assert_allclose(table[i, :, :3], d[i, nearest], atol=1e-5)
    np.testing.assert_allclose(table[i, :, 3:], p[nearest], atol=1e-7)


@pytest.mark.parametrize("model_name,tailor", [("simple", "temperature"),
                                               ("mdnet", "energy"), ("mdnet", "temperature")])
def test_tailoring_step_lowers_the_noether_loss(model_name, tailor):
  q, p, box = _system(seed=8)
  model = models.build(_config(model_name, tailor, lr=1e-4))
  g = _graph(q, box)
  args = (tf.constant(q), tf.constant(p), tf.constant(box), g, segment_ops)

  def noether(dq, dp):
    before = tailoring.quantity(model, args[0], args[1], args[2], g, segment_ops)
    after = tailoring.quantity(model, args[0] + dq, args[1] + dp, args[2], g, segment_ops)
    return float(tf.reduce_sum(tf.square(after - before)))

  plain = noether(*model(*args))
  tailored = noether(*models.forward(model, *args))
  assert tailored < plain, (plain, tailored)


def test_outer_gradient_through_the_inner_step_matches_finite_differences():
  """d(task loss at θ')/dθ includes the second-order term; check one weight."""
  q, p, box = _system(seed=10)
  model = models.build(_config("simple", "temperature", lr=1e-1))
  g = _graph(q, box)
  args = (tf.constant(q), tf.constant(p), tf.constant(box), g, segment_ops)
  target = tf.random.stateless_normal([len(q), 3], [3, 4])
  weight = model.net.weights[-1]

  def loss():
    dq, _ = models.forward(model, *args)
    return tf.reduce_sum(dq / 1e-3 * target)

  with tf.GradientTape() as tape:
    value = loss()
  grad = tape.gradient(value, weight).numpy()
  h = 1e-2
  for (i, j) in [(0, 0), (5, 1), (17, 2)]:
    assert grad[i, j] == pytest.approx(central_difference(loss, weight, (i, j), h),
                                       rel=2e-2, abs=1e-3)


@pytest.mark.parametrize("model_name,tailor", [("simple", "none"), ("simple", "learned"),
                                               ("mdnet", "temperature")])
def test_baselines_train(smoke_dir, tmp_path, model_name, tailor):
  assert_training_reduces_loss(smoke_dir, tmp_path, 40, 2e-3, model=model_name, tailor=tailor)
