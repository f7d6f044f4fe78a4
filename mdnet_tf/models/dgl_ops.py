"""DGL message passing (TensorFlow backend), as in the paper's stack.

The only module that imports DGL; it sets DGLBACKEND first. DGL's TF backend is
eager-only (it fails inside tf.function), so this path is for eager training
and evaluation; export and serving use segment_ops.py, which computes the same
function (a test asserts equal outputs and gradients).

Graphs are DGL graphs with src = other, dst = center, built per call from a
padded Graph (graph.py) by dropping padding: 2E' edges, forward ones first.
"""

import os

os.environ["DGLBACKEND"] = "tensorflow"

import dgl  # noqa: E402  pylint: disable=wrong-import-position
import dgl.function as fn  # noqa: E402
import tensorflow as tf  # noqa: E402

from mdnet_tf import space  # noqa: E402
from mdnet_tf.models import graph as graph_lib  # noqa: E402

NAME = "dgl"


def to_dgl(graph, num_nodes):
  """A dgl.DGLGraph with the real edges of a padded Graph (eager only)."""
  e = graph.capacity
  real = graph.mask[:e]
  fwd_c = tf.boolean_mask(graph.center[:e], real)
  fwd_o = tf.boolean_mask(graph.other[:e], real)
  src = tf.concat([fwd_o, fwd_c], 0)
  dst = tf.concat([fwd_c, fwd_o], 0)
  return dgl.graph((src, dst), num_nodes=int(num_nodes))


def edge_differences(g, positions, momenta, box):
  """(q_dst − q_src) minimum image [2E', 3] and p_dst − p_src [2E', 3]."""
  with g.local_scope():
    g.ndata["q"] = tf.identity(positions)
    g.ndata["p"] = tf.identity(momenta)
    g.apply_edges(fn.v_sub_u("q", "q", "dq"))
    g.apply_edges(fn.v_sub_u("p", "p", "dp"))
    d = g.edata["dq"]
    dp = g.edata["dp"]
  return space.minimum_image(d, tf.cast(box, positions.dtype)), dp


def forward_edge_differences(g, positions, momenta, box):
  """edge_differences of the forward edges (first half): [E', 3], [E', 3]."""
  d, dp = edge_differences(g, positions, momenta, box)
  half = tf.shape(d)[0] // 2
  return d[:half], dp[:half]


def center_values(g, node_values):
  """Node values at each edge's dst: [N, F] -> [2E', F]."""
  with g.local_scope():
    g.ndata["h"] = tf.identity(node_values)
    g.apply_edges(lambda edges: {"out": edges.dst["h"]})
    return g.edata["out"]


def forward_center_values(g, node_values):
  """Node values at the dst of the forward edges (first half): [N, F] -> [E', F]."""
  values = center_values(g, node_values)
  return values[:tf.shape(values)[0] // 2]


def sum_at_center(g, edge_values, num_nodes):
  """Σ over incoming edges at each dst: [2E', F] -> [N, F] (update_all)."""
  del num_nodes
  with g.local_scope():
    g.edata["m"] = tf.identity(edge_values)
    g.update_all(fn.copy_e("m", "m"), fn.sum("m", "out"))
    return g.ndata["out"]



def sum_outer_at_center(g, m, e, num_nodes):
  """Σ_j m_ij ⊗ e_ij at each dst: [2E', a], [2E', b] -> [N, a·b]."""
  return sum_at_center(g, graph_lib.outer(m, e), num_nodes)
