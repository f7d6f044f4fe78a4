"""MDNet's graph: one node per atom, an edge for every pair closer than r_c.

The graph is stored as a padded list of *undirected* edges (i < j), each used in
both directions. Directed edge arrays have 2E entries: the first E are the
"forward" directions (center i, other j, i < j), the next E the same pairs
reversed (center j, other i). MDNet evaluates φ_o once per undirected edge, on
the forward direction (the paper picks one direction at random; the lower
index is our fixed choice), and gives the reverse direction the negative.

Shapes: E = static capacity (`max_edges`); padded slots have mask False and
both ends equal to the sentinel N. A compact graph (`from_pairs`, graph mode
only) has a dynamic E, every slot real: φ_o then runs on real edges only.
"""

from typing import NamedTuple

import tensorflow as tf

from mdnet_tf import space


class Graph(NamedTuple):
  """Directed view of a padded undirected edge list (TF tensors).

  center: [2E] int32, the atom an edge feature is centred on (DGL: dst).
  other: [2E] int32, its neighbor (DGL: src).
  mask: [2E] bool, real edges.
  num_edges: [] int32, real undirected edges (≤ E).
  overflow: [] bool, more undirected edges than the capacity E.
  """
  center: tf.Tensor
  other: tf.Tensor
  mask: tf.Tensor
  num_edges: tf.Tensor
  overflow: tf.Tensor

  @property
  def capacity(self):
    return self.center.shape[0] // 2


def from_neighbors(positions, box, neighbors, cutoff, max_edges):
  """Undirected edges within `cutoff` from a full dense neighbor list.

  Args:
    positions: [N, 3] Å.  box: [3] Å.
    neighbors: partition.NeighborList (full list, radius ≥ cutoff).
    cutoff: edge radius r_c, Å.
    max_edges: static capacity E of undirected edges.
  Returns:
    Graph; check `overflow` (and the neighbor list's) before use.
  """
  num_atoms = tf.shape(positions)[0]
  idx = neighbors.indices                                      # [N, K]
  rows = tf.broadcast_to(tf.range(num_atoms)[:, None], tf.shape(idx))
  valid = idx < num_atoms
  other_pos = tf.gather(positions, tf.minimum(idx, num_atoms - 1))
  d = space.displacement(positions[:, None, :], other_pos, tf.cast(box, positions.dtype))
  r2 = tf.reduce_sum(d * d, axis=-1)
  keep = tf.reshape(valid & (idx > rows) & (r2 < cutoff * cutoff), [-1])
  slot = tf.cumsum(tf.cast(keep, tf.int32), exclusive=True)
  total = tf.reduce_sum(tf.cast(keep, tf.int32))
  target = tf.where(keep & (slot < max_edges), slot, max_edges)[:, None]
  fill = tf.fill([max_edges + 1], num_atoms)
  i = tf.tensor_scatter_nd_update(fill, target, tf.reshape(rows, [-1]))[:max_edges]
  j = tf.tensor_scatter_nd_update(fill, target, tf.reshape(idx, [-1]))[:max_edges]
  mask = tf.range(max_edges) < total
  return Graph(center=tf.concat([i, j], 0), other=tf.concat([j, i], 0),
               mask=tf.concat([mask, mask], 0), num_edges=tf.minimum(total, max_edges),
               overflow=total > max_edges)


def from_pairs(i, j):
  """A compact Graph of the undirected pairs (i [E], j [E]) int32 (partition.pairs).

  E is dynamic (graph mode only); no padding, no overflow.
  """
  return Graph(center=tf.concat([i, j], 0), other=tf.concat([j, i], 0),
               mask=tf.ones([2 * tf.shape(i)[0]], tf.bool), num_edges=tf.shape(i)[0],
               overflow=tf.constant(False))


def outer(m, e):
  """Per-edge outer products m_k ⊗ e_k flattened: [2E, a], [2E, b] -> [2E, a·b]."""
  return tf.reshape(m[:, :, None] * e[:, None, :], [-1, m.shape[-1] * e.shape[-1]])


def center_ids(ops, graph, num_nodes):
  """Center atom of every directed edge [2E] int32; N for padded slots.

  Works on either message-passing path (`ops` = segment_ops or dgl_ops).
  """
  ids = tf.cast(tf.range(num_nodes)[:, None], tf.float32)
  center = tf.cast(tf.round(ops.center_values(graph, ids)[:, 0]), tf.int32)
  if isinstance(graph, Graph):
    center = tf.where(graph.mask, center, num_nodes)
  return center


def other_values(ops, graph, node_values):
  """Node values at each directed edge's neighbor end: [N, F] -> [2E, F].

  The neighbor of directed edge k is the center of its reverse, which sits in
  the other half of the edge arrays (forward half first, on both paths).
  """
  at_center = ops.center_values(graph, node_values)
  half = tf.shape(at_center)[0] // 2
  return tf.concat([at_center[half:], at_center[:half]], 0)
