"""Fixed normalization statistics, computed once from training data.

The network never sees raw units: edge features are scaled by statistics of
the training set, and its outputs are scaled back by statistics of the targets.
The statistics are computed offline (`NormStats.from_pairs`), saved with the
model config, and never updated during training.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from mdnet_tf import partition
from mdnet_tf.models import graph as graph_lib


@dataclasses.dataclass(frozen=True)
class NormStats:
  inv_r_mean: float        # 1/Å, mean of 1/r_ij over edges
  inv_r_std: float         # 1/Å
  rel_pos_scale: float     # 1/Å, RMS component of (q_i − q_j)/r_ij²
  rel_mom_scale: float     # g/mol·Å/fs, RMS component of p_i − p_j
  mean_neighbors: float    # directed edges per atom
  dq_scale: float          # Å, RMS component of Δq − p Δt / m
  dp_scale: float          # g/mol·Å/fs, RMS component of Δp

  @property
  def momentum_scale(self):
    """Typical per-component atomic momentum, g/mol·Å/fs: the RMS of p_i − p_j
    over √2 (differences of independent momenta have twice the variance).
    √2 is rounded to 1.4142, the value the pretrained models were trained with."""
    return self.rel_mom_scale / 1.4142

  def to_json(self):
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d):
    return cls(**d)

  @classmethod
  def from_pairs(cls, pairs, mass, cutoff, max_frames=32):
    """Statistics of a FramePairs training split (first `max_frames` frames)."""
    inv_r, rel_pos, rel_mom, neighbors = [], [], [], []
    for k in range(min(len(pairs), max_frames)):
      q = tf.constant(pairs.positions[k], tf.float64)
      box = tf.constant(pairs.box[k], tf.float64)
      _, nl = partition.allocate(q, box, cutoff)
      max_edges = int(tf.reduce_sum(nl.counts)) // 2 + 1
      g = graph_lib.from_neighbors(q, box, nl, cutoff, max_edges)
      e = int(g.num_edges)
      center = np.concatenate([g.center[:e], g.center[max_edges:max_edges + e]])
      other = np.concatenate([g.other[:e], g.other[max_edges:max_edges + e]])
      d = pairs.positions[k][center] - pairs.positions[k][other]
      d -= pairs.box[k] * np.round(d / pairs.box[k])
      r2 = (d ** 2).sum(-1)
      inv_r.append(1 / np.sqrt(r2))
      rel_pos.append(d / r2[:, None])
      rel_mom.append(pairs.momenta[k][center] - pairs.momenta[k][other])
      neighbors.append(2 * e / len(q))
    dq = (pairs.next_positions - pairs.positions
          - pairs.momenta / mass * pairs.dt_fs)
    dp = pairs.next_momenta - pairs.momenta
    rms = lambda x: float(np.sqrt(np.mean(np.square(np.concatenate(x)))))
    inv_r = np.concatenate(inv_r)
    return cls(inv_r_mean=float(inv_r.mean()), inv_r_std=float(inv_r.std()),
               rel_pos_scale=rms(rel_pos), rel_mom_scale=rms(rel_mom),
               mean_neighbors=float(np.mean(neighbors)),
               dq_scale=float(np.sqrt(np.mean(dq ** 2))),
               dp_scale=float(np.sqrt(np.mean(dp ** 2))))
