"""EGNN baseline: E(3) equivariance, backend equality, and it learns."""

import numpy as np
import tensorflow as tf

from conftest import assert_training_reduces_loss
from test_mdnet import STATS, _graph, _system
from mdnet_tf import models
from mdnet_tf.models import dgl_ops
from mdnet_tf.models import mdnet
from mdnet_tf.models import segment_ops

CONFIG = mdnet.MDNetConfig(dt_fs=16.0, stats=STATS, model="egnn")


def _run(model, q, p, box, backend=segment_ops):
  g = _graph(q, box)
  graph = g if backend is segment_ops else dgl_ops.to_dgl(g, len(q))
  return [x.numpy() for x in model(tf.constant(q), tf.constant(p), tf.constant(box),
                                   graph, backend)]


def test_rotation_and_translation_equivariance():
  q, p, _ = _system(seed=2)
  big = np.full(3, 200.0, np.float32)      # no periodic images: a free cluster
  model = models.build(CONFIG, seed=2)
  rot = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0].astype(np.float32)
  centred = q - q.mean(0)
  dq, dp = _run(model, centred, p, big)
  dq_r, dp_r = _run(model, centred @ rot.T, p @ rot.T, big)
  np.testing.assert_allclose(dq_r, dq @ rot.T, atol=1e-5 * np.abs(dq).max())
  np.testing.assert_allclose(dp_r, dp @ rot.T, atol=1e-4 * np.abs(dp).max())
  dq_t, dp_t = _run(model, centred + np.float32([3.0, -2.0, 5.0]), p, big)
  np.testing.assert_allclose(dq_t, dq, atol=1e-5 * np.abs(dq).max())
  np.testing.assert_allclose(dp_t, dp, atol=1e-4 * np.abs(dp).max())


def test_backends_agree():
  q, p, box = _system(seed=4)
  model = models.build(CONFIG, seed=4)
  for a, b in zip(_run(model, q, p, box), _run(model, q, p, box, dgl_ops)):
    np.testing.assert_allclose(a, b, atol=1e-5 * np.abs(a).max())


def test_egnn_learns(smoke_dir, tmp_path):
  assert_training_reduces_loss(smoke_dir, tmp_path, 20, 1e-3, model="egnn")
