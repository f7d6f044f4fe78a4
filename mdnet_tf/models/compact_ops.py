"""Message passing on a compact graph (graph.from_pairs), for graph mode.

The same function as segment_ops.py (tests assert it) with dynamic edge
counts, which XLA cannot compile but plain TensorFlow graphs (and so the
stock TF Serving) run fast: nothing is padded, and the aggregation
L_i = Σ_j m_ij ⊗ e_ij runs as one batched matmul M_iᵀ E_i over edges grouped
by center (a ragged → padded [N, K_max] layout) instead of materializing the
[2E, a·b] outer products and scattering them.
"""

import tensorflow as tf

from mdnet_tf.models.segment_ops import center_values  # noqa: F401  (same on both)
from mdnet_tf.models.segment_ops import edge_differences  # noqa: F401
from mdnet_tf.models.segment_ops import forward_center_values  # noqa: F401
from mdnet_tf.models.segment_ops import forward_edge_differences  # noqa: F401
from mdnet_tf.models.segment_ops import sum_at_center  # noqa: F401

NAME = "compact"


def sum_outer_at_center(graph, m, e, num_nodes):
  """Σ_j m_ij ⊗ e_ij at each center: [2E, a], [2E, b] -> [N, a·b] (batched matmul)."""
  order = tf.argsort(graph.center, stable=True)
  rows = tf.gather(graph.center, order)
  padded_m = tf.RaggedTensor.from_value_rowids(tf.gather(m, order), rows,
                                               nrows=num_nodes).to_tensor()   # [N, K, a]
  padded_e = tf.RaggedTensor.from_value_rowids(tf.gather(e, order), rows,
                                               nrows=num_nodes).to_tensor()   # [N, K, b]
  local = tf.matmul(padded_m, padded_e, transpose_a=True)                    # [N, a, b]
  return tf.reshape(local, [num_nodes, m.shape[-1] * e.shape[-1]])
