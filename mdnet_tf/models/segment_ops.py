"""TF-native message passing: tf.gather + tf.math.unsorted_segment_sum.

Runs eagerly, in tf.function, under XLA and in SavedModels; this is the path
that export and serving use. Computes the same function as dgl_ops.py.
Padded edges (mask False, ends = sentinel N) contribute nothing.
"""

import tensorflow as tf

from mdnet_tf import space
from mdnet_tf.models import graph as graph_lib

NAME = "xla"


def edge_differences(graph, positions, momenta, box):
  """(q_center − q_other) minimum image [2E, 3] Å and p_center − p_other [2E, 3]."""
  n = tf.shape(positions)[0]
  c = tf.minimum(graph.center, n - 1)
  o = tf.minimum(graph.other, n - 1)
  d = space.displacement(tf.gather(positions, c), tf.gather(positions, o),
                         tf.cast(box, positions.dtype))
  return d, tf.gather(momenta, c) - tf.gather(momenta, o)


def forward_edge_differences(graph, positions, momenta, box):
  """edge_differences of the forward edges (first half) only: [E, 3], [E, 3]."""
  half = tf.shape(graph.center)[0] // 2
  n = tf.shape(positions)[0]
  c = tf.minimum(graph.center[:half], n - 1)
  o = tf.minimum(graph.other[:half], n - 1)
  d = space.displacement(tf.gather(positions, c), tf.gather(positions, o),
                         tf.cast(box, positions.dtype))
  return d, tf.gather(momenta, c) - tf.gather(momenta, o)


def center_values(graph, node_values):
  """Node values at each edge's center: [N, F] -> [2E, F]."""
  n = tf.shape(node_values)[0]
  return tf.gather(node_values, tf.minimum(graph.center, n - 1))


def forward_center_values(graph, node_values):
  """Node values at the centers of the forward edges (first half): [N, F] -> [E, F]."""
  n = tf.shape(node_values)[0]
  half = tf.shape(graph.center)[0] // 2
  return tf.gather(node_values, tf.minimum(graph.center[:half], n - 1))


def sum_at_center(graph, edge_values, num_nodes):
  """Σ over edges of edge_values at their center: [2E, F] -> [N, F]."""
  masked = edge_values * tf.cast(graph.mask, edge_values.dtype)[:, None]
  return tf.math.unsorted_segment_sum(masked, graph.center, num_nodes + 1)[:num_nodes]


def sum_outer_at_center(graph, m, e, num_nodes):
  """Σ_j m_ij ⊗ e_ij at each center: [2E, a], [2E, b] -> [N, a·b]."""
  return sum_at_center(graph, graph_lib.outer(m, e), num_nodes)
