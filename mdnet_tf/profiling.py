"""Where a graph-mode MDNet step spends its time: each stage of the forward on
a compact graph timed on its own (medians after warm-up, plain graph mode).

Stages, in the order the step runs them (models/mdnet.py, compact_ops.py):
  pairs            partition.pairs: the compact pair search
  edge features    forward-half displacements and normalized features, mirrored
  phi_e            the message MLP on 2E directed edges
  aggregation      L_i = Σ_j m_ij ⊗ e_ij (batched matmul over edges by center)
  phi_o layer 1    W_L·L_i per atom, gathered to edges, + W_e·e_ij + b, ReLU
  phi_o layers 2-4 the two 200×200 layers and the output layer
  scatter          Δ per edge summed at both ends
Timed separately, the stages miss the overlap TensorFlow finds between them in
one graph, so their sum is an upper bound of the forward. Compiling the
stand-alone first layer makes TensorFlow 2.21 log "tfg_optimizer ... Node Relu
has an empty op name" from an optional Grappler pass that then steps aside;
the timing is unaffected (the full step does not trigger it).
"""

import tensorflow as tf

from mdnet_tf import benchmarking
from mdnet_tf import partition
from mdnet_tf.models import compact_ops
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import mdnet
from mdnet_tf.models import mlp


def step_breakdown(model, positions, momenta, box, repeats=7):
  """{stage: median seconds} of one forward of `model` (MDNet) on a state."""
  c = model.config
  q, p, b = (tf.constant(x, tf.float32) for x in (positions, momenta, box))
  n = int(q.shape[0])
  graph = graph_lib.from_pairs(*partition.pairs(q, b, c.cutoff_angstrom))
  split = c.m2 * mdnet.NUM_EDGE_FEATURES
  w1 = model.phi_o.weights[0]

  def features():
    e_fwd = model.edge_features(*compact_ops.forward_edge_differences(graph, q, p, b))
    return e_fwd, tf.concat([e_fwd, e_fwd * mdnet.REVERSE], 0)

  def first_layer(local, e_fwd):
    pre = (tf.nn.bias_add(mlp.matmul(e_fwd, w1[split:]), model.phi_o.biases[0])
           + compact_ops.forward_center_values(graph, mlp.matmul(local, w1[:split])))
    return tf.nn.relu(pre)

  def later_layers(h):
    for k in range(1, len(model.phi_o.weights)):
      h = tf.nn.bias_add(tf.matmul(h, model.phi_o.weights[k]), model.phi_o.biases[k])
      h = tf.nn.relu(h) if k < len(model.phi_o.weights) - 1 else h
    return h

  stages = {}

  def timed(name, fn, *args):
    compiled = tf.function(fn)
    result = compiled(*args)
    stages[name] = benchmarking.median_seconds(
        lambda: tf.nest.map_structure(lambda t: t.numpy(), compiled(*args)), repeats)[0]
    return result

  timed("pairs", lambda: partition.pairs(q, b, c.cutoff_angstrom))
  e_fwd, e = timed("edge features", features)
  m = timed("phi_e", lambda e: model.phi_e(e), e)
  local = timed("aggregation",
                lambda m, e: compact_ops.sum_outer_at_center(graph, m, e, n), m, e)
  h = timed("phi_o layer 1", first_layer, local, e_fwd)
  out = timed("phi_o layers 2-4", later_layers, h)
  timed("scatter", lambda out: compact_ops.sum_at_center(graph, tf.concat([out, -out], 0), n),
        out)
  return stages
