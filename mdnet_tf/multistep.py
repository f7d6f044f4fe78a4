"""Roll-out-aware training: the loss of k learned steps unrolled from a true state.

A training item is a short true trajectory (data/dataset.load_sequences): the
state (q₀, p₀) and the states at Δt, 2Δt, ..., kΔt. The model is applied k
times, each step on a compact graph (partition.pairs) rebuilt in-graph from its
own predicted positions, and gradients flow through every step via the
predicted positions and momenta (the graph's connectivity is discrete and
carries none). The loss averages the paper's normalized MSE over the steps,
measured on cumulative displacements from the start:

  L = (1/k) Σ_j [ mean((D̂q_j − Dq_j)²) / s_q² + w_p · mean((D̂p_j − Dp_j)²) / s_p² ]
  Dq_j = q_j − q₀ (float64, then float32),  D̂q_j = Σ_{l ≤ j} Δq̂_l

so float32 rounding of absolute positions never enters the errors, and k = 1
is exactly training.loss_terms of one step. w_p (momentum_weight, 1 = the
paper's) weights the momentum term: a momentum error δp moves every later
position by δp/m · Δt per step, so after n steps it costs about
δp/m · Δt · n^1.5/√3 of position error against δq · √n for a position error;
at 16–64 fs the roll-out error after 768 fs is the momentum term's.
Optional input noise (learned simulators) adds Gaussian noise of std
`noise` × (s_q, s_p) to the start state; the targets stay the true
trajectory, so the model learns to pull back.

Runs in graph mode (dynamic edge counts); shapes: q, p [N, 3] float32,
targets [k, N, 3] float32, box [3] Å.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from mdnet_tf import partition
from mdnet_tf.models import compact_ops
from mdnet_tf.models import graph as graph_lib


def loss_terms(config, dq_pred, dp_pred, dq, dp, momentum_weight=1.0):
  """(loss, position term, momentum term) of the normalized MSE of one step:
  loss = position term + momentum_weight · momentum term (1 = the paper's)."""
  s = config.stats
  lq = tf.reduce_mean(tf.square((dq_pred - dq) / s.dq_scale))
  lp = tf.reduce_mean(tf.square((dp_pred - dp) / s.dp_scale))
  return lq + momentum_weight * lp, lq, lp


def unrolled_terms(forward, config, q0, p0, box, dq_targets, dp_targets, noise=0.0, seed=None,
                   momentum_weight=1.0):
  """(loss, position term, momentum term) averaged over k = len(dq_targets) steps.

  forward: (q, p, box, graph, ops) -> (Δq, Δp) of the model (models.forward).
  dq_targets, dp_targets: [k, N, 3] cumulative true displacements from q₀, p₀.
  noise: std of the start-state noise in units of (s_q, s_p); seed: [2] int32.
  momentum_weight: weight of the momentum term in the loss (loss_terms).
  """
  s = config.stats
  if noise:
    q0 = q0 + noise * s.dq_scale * tf.random.stateless_normal(tf.shape(q0), seed)
    p0 = p0 + noise * s.dp_scale * tf.random.stateless_normal(tf.shape(p0), seed + 1)
  k = dq_targets.shape[0]
  cum_q = tf.zeros_like(q0)
  cum_p = tf.zeros_like(p0)
  total = [tf.constant(0.0)] * 3
  for j in range(k):                # k is static: the steps are unrolled in the graph
    q, p = q0 + cum_q, p0 + cum_p
    pairs = partition.pairs(tf.stop_gradient(q), box, config.cutoff_angstrom)
    dq, dp = forward(q, p, box, graph_lib.from_pairs(*pairs), compact_ops)
    cum_q, cum_p = cum_q + dq, cum_p + dp
    terms = loss_terms(config, cum_q, cum_p, dq_targets[j], dp_targets[j], momentum_weight)
    total = [a + b / k for a, b in zip(total, terms)]
  return tuple(total)


class PreparedSequences(NamedTuple):
  """Training sequences as float32 tensors: positions, momenta [S, N, 3] at the
  start, box [S, 3], dq, dp [S, k, N, 3] cumulative displacements."""
  positions: tf.Tensor
  momenta: tf.Tensor
  box: tf.Tensor
  dq: tf.Tensor
  dp: tf.Tensor

  def __len__(self):
    return int(self.positions.shape[0])

  @property
  def num_steps(self):
    return int(self.dq.shape[1])

  def batch(self, indices):
    return tuple(tf.gather(x, indices) for x in self)


def prepare(sequences):
  """PreparedSequences of dataset.FrameSequences (displacements exact in float64)."""
  q, p = sequences.positions, sequences.momenta
  f32 = lambda x: tf.constant(np.asarray(x, np.float32))
  return PreparedSequences(f32(q[:, 0]), f32(p[:, 0]), f32(sequences.box),
                           f32(q[:, 1:] - q[:, :1]), f32(p[:, 1:] - p[:, :1]))
