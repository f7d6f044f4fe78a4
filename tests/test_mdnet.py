"""MDNet against the paper's equations (NumPy, brute force), conservation, backends."""

import numpy as np
import pytest
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import partition
from mdnet_tf import units
from mdnet_tf.models import dgl_ops
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import mdnet
from mdnet_tf.models import normalization
from mdnet_tf.models import segment_ops

STATS = normalization.NormStats(inv_r_mean=0.2, inv_r_std=0.05, rel_pos_scale=0.12,
                                rel_mom_scale=0.07, mean_neighbors=25.0,
                                dq_scale=1e-3, dp_scale=5e-3)


def _system(n=40, edge=15.0, seed=0):
  rng = np.random.default_rng(seed)
  g = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij"), -1).reshape(-1, 3)[:n]
  q = g * (edge / 4) + rng.normal(0, 0.3, (n, 3)) - 20.0   # unwrapped, outside the box
  p = rng.normal(0, 0.07, (n, 3))
  return q.astype(np.float32), p.astype(np.float32), np.full(3, edge, np.float32)


def _graph(q, box, cutoff=7.0):
  _, nl = partition.allocate(q, box, cutoff)
  return graph_lib.from_neighbors(tf.constant(q), tf.constant(box), nl, cutoff,
                                  int(tf.reduce_sum(nl.counts)) // 2 + 7)


def _model(dt=16.0, seed=0):
  model = mdnet.MDNet(mdnet.MDNetConfig(dt_fs=dt, stats=STATS), seed=seed)
  # Non-zero biases, so that padding and the bias path are exercised.
  for b in model.phi_e.biases + model.phi_o.biases:
    b.assign(tf.random.stateless_normal(b.shape, [seed, 1], stddev=0.1))
  return model


def _paper_reference(model, q, p, box):
  """Eqs. 6–9 of the paper in float64 NumPy, O(N²) over all pairs within r_c."""
  c = model.config
  s = c.stats
  we = [w.numpy().astype(np.float64) for w in model.phi_e.weights]
  be = [b.numpy().astype(np.float64) for b in model.phi_e.biases]
  wo = [w.numpy().astype(np.float64) for w in model.phi_o.weights]
  bo = [b.numpy().astype(np.float64) for b in model.phi_o.biases]

  def mlp(x, ws, bs):
    for k, (w, b) in enumerate(zip(ws, bs)):
      x = x @ w + b
      if k < len(ws) - 1:
        x = np.maximum(x, 0.0)
    return x

  q, p, box = (np.asarray(a, np.float64) for a in (q, p, box))
  n = len(q)

  def e(i, j):   # Eq. 6, normalized by the fixed statistics
    d = q[i] - q[j]
    d -= box * np.round(d / box)
    r2 = d @ d
    return np.concatenate([[(1 / np.sqrt(r2) - s.inv_r_mean) / s.inv_r_std],
                           d / r2 / s.rel_pos_scale, (p[i] - p[j]) / s.rel_mom_scale])

  def r(i, j):
    d = q[i] - q[j]
    d -= box * np.round(d / box)
    return np.sqrt(d @ d)

  nbrs = [[j for j in range(n) if j != i and r(i, j) < c.cutoff_angstrom] for i in range(n)]
  local = []
  for i in range(n):   # Eq. 7: L_i = M_i E_iᵀ
    E = np.stack([e(i, j) for j in nbrs[i]], axis=1)           # [7, n_i]
    M = np.stack([mlp(e(i, j), we, be) for j in nbrs[i]], axis=1)  # [m2, n_i]
    local.append((M @ E.T).reshape(-1) / s.mean_neighbors)
  delta = np.zeros((n, 6))
  for i in range(n):   # Eqs. 8–9, one direction per edge (i < j), the other negated
    for j in nbrs[i]:
      if i < j:
        out = mlp(np.concatenate([local[i], e(i, j)]), wo, bo)
        delta[i] += out
        delta[j] -= out
  dq = delta[:, :3] * s.dq_scale + p / c.mass_amu * c.dt_fs
  return dq, delta[:, 3:] * s.dp_scale


@pytest.mark.parametrize("backend", [segment_ops, dgl_ops])
def test_matches_the_paper_equations(backend):
  q, p, box = _system()
  model = _model()
  g = _graph(q, box)
  graph = g if backend is segment_ops else dgl_ops.to_dgl(g, len(q))
  dq, dp = model(tf.constant(q), tf.constant(p), tf.constant(box), graph, backend)
  ref_dq, ref_dp = _paper_reference(model, q, p, box)
  # float32 network vs float64 reference: relative 1e-5 of the output scale.
  np.testing.assert_allclose(dq.numpy(), ref_dq, atol=1e-5 * np.abs(ref_dq).max())
  np.testing.assert_allclose(dp.numpy(), ref_dp, atol=1e-5 * np.abs(ref_dp).max())


@pytest.mark.parametrize("backend", [segment_ops, dgl_ops])
def test_total_momentum_is_conserved(backend):
  q, p, box = _system(seed=3)
  model = _model(seed=3)
  g = _graph(q, box)
  graph = g if backend is segment_ops else dgl_ops.to_dgl(g, len(q))
  dq, dp = model(tf.constant(q), tf.constant(p), tf.constant(box), graph, backend)
  # Σ Δp_i is a sum of ± pairs: zero up to float32 rounding of the sum.
  scale = np.abs(dp.numpy()).sum(0)
  assert np.all(np.abs(dp.numpy().sum(0)) < 1e-6 * scale)
  # The same treatment of Δq: Σ Δq_i = Σ p_i/m Δt (the centre of mass drifts freely).
  free = p.sum(0) / units.ARGON_MASS * 16.0
  np.testing.assert_allclose(dq.numpy().sum(0), free, atol=1e-6 * np.abs(dq.numpy()).sum())


def test_dgl_and_segment_paths_agree_with_gradients():
  q, p, box = _system(seed=5)
  model = _model(seed=5)
  g = _graph(q, box)
  dg = dgl_ops.to_dgl(g, len(q))
  target = tf.random.stateless_normal([len(q), 6], [1, 2])

  def loss(graph, ops):
    dq, dp = model(tf.constant(q), tf.constant(p), tf.constant(box), graph, ops)
    return tf.reduce_sum(tf.concat([dq / 1e-3, dp / 5e-3], 1) * target)

  with tf.GradientTape(persistent=True) as tape:
    l_seg, l_dgl = loss(g, segment_ops), loss(dg, dgl_ops)
  assert float(l_seg) == pytest.approx(float(l_dgl), rel=1e-5)
  for a, b in zip(tape.gradient(l_seg, model.trainable_variables),
                  tape.gradient(l_dgl, model.trainable_variables)):
    np.testing.assert_allclose(a.numpy(), b.numpy(),
                               atol=1e-5 * (np.abs(a.numpy()).max() + 1e-12))


def test_xla_equals_eager_and_is_translation_invariant():
  q, p, box = _system(seed=7)
  model = _model(seed=7)
  g = _graph(q, box)
  eager = model(tf.constant(q), tf.constant(p), tf.constant(box), g, segment_ops)
  xla = tf.function(lambda *a: model(*a, g, segment_ops), jit_compile=True)(
      tf.constant(q), tf.constant(p), tf.constant(box))
  for a, b in zip(eager, xla):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-9)
  # Wrapped positions (as a server may receive them) give the same update.
  wrapped = q - box * np.floor(q / box)
  shifted = model(tf.constant(wrapped), tf.constant(p), tf.constant(box),
                  _graph(wrapped, box), segment_ops)
  for a, b in zip(eager, shifted):
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4 * np.abs(a.numpy()).max())


def test_padding_edges_change_nothing():
  q, p, box = _system(seed=9)
  model = _model(seed=9)
  _, nl = partition.allocate(q, box, 7.0)
  exact = int(tf.reduce_sum(nl.counts)) // 2
  outs = [model(tf.constant(q), tf.constant(p), tf.constant(box),
                graph_lib.from_neighbors(tf.constant(q), tf.constant(box), nl, 7.0, cap),
                segment_ops) for cap in (exact, exact + 500)]
  # Padded edges add exact zeros, but the matmuls over a longer edge array may
  # block (and so round) differently: each Δp_i is a float32 sum of ~24 edge
  # terms, so the two agree to ~24·2⁻²⁴ of the largest term (1.5e-9 of 3.8e-4
  # was seen on an AVX2 CPU), not bit for bit.
  dp = outs[0][1].numpy()
  np.testing.assert_allclose(dp, outs[1][1].numpy(), rtol=1e-6,
                             atol=24 * 2.0 ** -24 * np.abs(dp).max())
  small = graph_lib.from_neighbors(tf.constant(q), tf.constant(box), nl, 7.0, exact - 1)
  assert bool(small.overflow) and int(small.num_edges) == exact - 1


def test_model_refuses_another_dt_and_round_trips_config():
  config = mdnet.MDNetConfig(dt_fs=32.0, stats=STATS)
  config.check_dt(32)
  with pytest.raises(errors.InputError, match="trained for Δt = 32 fs, the data has Δt = 64 fs"):
    config.check_dt(64)
  assert mdnet.MDNetConfig.from_json(config.to_json()) == config
