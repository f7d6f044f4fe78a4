"""Benchmark helpers: the FLOP count matches the matmuls in the traced graph;
tiling keeps the liquid's neighbor statistics."""

import numpy as np
import tensorflow as tf

from conftest import brute_force_neighbors, smoke_config
from mdnet_tf import benchmarking
from mdnet_tf import models
from mdnet_tf import partition
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import segment_ops


def _matmul_flops(concrete):
  """2·m·k·n summed over the MatMul ops of a traced graph (static shapes)."""
  total = 0
  for op in concrete.graph.get_operations():
    if op.type == "MatMul":
      a, b = (t.shape.as_list() for t in op.inputs)
      m, k = a[::-1] if op.get_attr("transpose_a") else a
      n = b[0] if op.get_attr("transpose_b") else b[1]
      total += 2 * m * k * n
  return total


def test_flop_count_equals_the_traced_matmuls(smoke_dir, liquid_frame):
  _, config = smoke_config(smoke_dir)
  model = models.build(config)
  q = tf.constant(liquid_frame.positions, tf.float32)
  p = tf.constant(liquid_frame.velocities * 39.948, tf.float32)
  box = tf.constant(liquid_frame.box, tf.float32)
  spec, nl = partition.allocate(q, box, 7.0)
  max_edges = 3000
  graph = graph_lib.from_neighbors(q, box, nl, 7.0, max_edges)
  fn = tf.function(lambda q, p, box, g: models.forward(model, q, p, box, g, segment_ops))
  concrete = fn.get_concrete_function(q, p, box, graph)
  assert _matmul_flops(concrete) == benchmarking.mdnet_flops(config, len(q), max_edges,
                                                              aggregation=False)


def test_tiling_keeps_neighbor_counts(liquid_frame):
  q, p, box = liquid_frame.positions, liquid_frame.velocities, liquid_frame.box
  q2, p2, box2 = benchmarking.tile(q, p, box, 2)
  assert q2.shape == (8 * len(q), 3) and np.allclose(box2, 2 * box)
  before = [len(s) for s in brute_force_neighbors(q, box, 7.0)]
  after = [len(s) for s in brute_force_neighbors(q2, box2, 7.0)]
  assert after == before * 8
