"""SIMPLE baseline (Chung et al.): k-nearest-neighbor MLP next-state predictor.

For each atom i, the k = 10 nearest neighbors (periodic, minimum image) are
found on the r_c graph; the network input is the atom's own momentum, each
neighbor's position offset by the target atom (q_j − q_i, nearest first) and
momentum, and the box edges. A three-layer fully-connected network with sigmoid
activations predicts the change of position and momentum directly (no
free-flight term, as in SIMPLE). Inputs are scaled by the fixed statistics.

Shapes: positions, momenta [N, 3]; box [3]. Needs ≥ k neighbors within r_c per
atom (liquid argon has about 25); missing slots are zero-filled.
"""

import tensorflow as tf

from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import mlp

K_NEIGHBORS = 10
HIDDEN = 128


class SIMPLE(tf.Module):
  """kNN + 3-layer sigmoid MLP predicting Δq [N, 3] Å and Δp [N, 3]."""

  def __init__(self, config, seed=0, name="simple"):
    super().__init__(name=name)
    self.config = config
    width = 3 + K_NEIGHBORS * 6 + 3
    self.net = mlp.MLP(width, [HIDDEN, HIDDEN, 6], "sigmoid", seed=seed, name="f_theta")

  def _knn(self, graph, positions, momenta, box, ops):
    """Per atom: [k, 3] offsets q_j − q_i and [k, 3] momenta p_j (nearest first)."""
    n = tf.shape(positions)[0]
    d, _ = ops.edge_differences(graph, positions, momenta, box)   # q_center − q_other
    r2 = tf.reduce_sum(d * d, -1)
    # Dense [N, slots] table of each atom's edges via a per-center rank.
    center = graph_lib.center_ids(ops, graph, n)
    big = tf.fill(tf.shape(r2), tf.constant(1e9, r2.dtype))
    r2 = tf.where(center < n, r2, big)
    # Sort edges by (center, r²): by r², then stably by center; keep k per center.
    by_r2 = tf.argsort(r2)
    idx = tf.gather(by_r2, tf.argsort(tf.gather(center, by_r2), stable=True))
    sorted_center = tf.gather(center, idx)
    first = tf.math.unsorted_segment_min(tf.range(tf.shape(idx)[0]), sorted_center, n + 1)
    rank = tf.range(tf.shape(idx)[0]) - tf.gather(first, sorted_center)
    keep = (rank < K_NEIGHBORS) & (sorted_center < n)
    slots = tf.stack([tf.minimum(sorted_center, n), tf.minimum(rank, K_NEIGHBORS)], 1)
    offsets = -tf.gather(d, idx)                                    # q_j − q_i
    other_p = tf.gather(graph_lib.other_values(ops, graph, momenta), idx)
    table = tf.zeros([n + 1, K_NEIGHBORS + 1, 6], d.dtype)
    values = tf.concat([offsets, other_p], -1) * tf.cast(keep, d.dtype)[:, None]
    table = tf.tensor_scatter_nd_add(table, slots, values)
    return table[:n, :K_NEIGHBORS]

  def __call__(self, positions, momenta, box, graph, ops):
    c, s = self.config, self.config.stats
    n = tf.shape(positions)[0]
    neighbors = self._knn(graph, positions, momenta, box, ops)     # [N, k, 6]
    p_scale = s.momentum_scale
    feats = tf.concat([
        momenta / p_scale,
        tf.reshape(neighbors[..., :3] / c.cutoff_angstrom, [n, -1]),
        tf.reshape(neighbors[..., 3:] / p_scale, [n, -1]),
        tf.broadcast_to(tf.cast(box, positions.dtype)[None] / (10 * c.cutoff_angstrom),
                        [n, 3])], -1)
    out = self.net(feats)
    flight = p_scale / c.mass_amu * c.dt_fs         # typical free-flight displacement
    dq_scale = (s.dq_scale ** 2 + flight ** 2) ** 0.5
    return out[:, :3] * dq_scale, out[:, 3:] * s.dp_scale

