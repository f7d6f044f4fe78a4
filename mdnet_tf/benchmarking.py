"""Timing helpers shared by launch/benchmark.py (Table 2) and launch/error_cost.py.

Every number is a median over repeats after warm-up (compilation excluded).
Systems are LAMMPS-equilibrated 80 K liquids (the datasets' roll-out start
frames), tiled for larger sizes (`tile`).

FLOPs of one MDNet forward (multiply-add = 2 FLOPs), N atoms, E undirected
edges (2E directed), widths from the config (φ_e 7→40→40→40→m2, φ_o
7·m2+7→200→200→200→6, first φ_o layer split into W_L·L_i + W_e·e_ij):
  φ_e on 2E:           2·2E·(7·40 + 40·40 + 40·40 + 40·m2)
  L_i = Σ m eᵀ on 2E:  2·2E·7·m2
  W_L·L_i on N:        2·N·7·m2·200
  W_e·e_ij on E:       2·E·7·200
  φ_o rest on E:       2·E·(200·200·2 + 200·6)
Elementwise work (activations, gathers, scatters) is not counted: the ratio
to dense-matmul throughput is then a lower bound on how well the matmuls run.
"""

import statistics
import time

import numpy as np
import tensorflow as tf

from mdnet_tf import models
from mdnet_tf import partition
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import segment_ops

def median_seconds(fn, repeats=5, warmup=1):
  """(median, list of samples) wall seconds of fn() after `warmup` calls."""
  for _ in range(warmup):
    fn()
  samples = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    samples.append(time.perf_counter() - start)
  return statistics.median(samples), samples


def tile(positions, momenta, box, reps):
  """The periodic system repeated reps × reps × reps times (N·reps³ atoms).

  Tiling an equilibrated liquid keeps its density and neighbor statistics,
  so the cost per atom is the liquid's (a lattice would have fewer pairs).
  """
  shifts = np.stack(np.meshgrid(*[np.arange(reps)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
  q = (np.asarray(positions)[None] + shifts * np.asarray(box)).reshape(-1, 3)
  p = np.tile(np.asarray(momenta), (len(shifts), 1))
  return q, p, np.asarray(box) * reps


def matmul_gflops(rows, inner=200, cols=200, repeats=5):
  """Dense [rows, inner] × [inner, cols] float32 throughput under XLA, GFLOP/s."""
  a = tf.random.normal([rows, inner])
  b = tf.random.normal([inner, cols])
  fn = tf.function(lambda a, b: tf.reduce_sum(tf.matmul(a, b)), jit_compile=True)
  seconds, _ = median_seconds(lambda: fn(a, b).numpy(), repeats, warmup=2)
  return 2.0 * rows * inner * cols / seconds / 1e9


def mdnet_flops(config, num_atoms, num_edges, aggregation=True):
  """FLOPs of one MDNet forward (see module doc); aggregation=False leaves out
  the L_i = Σ m eᵀ term, i.e. counts the matmuls only."""
  m2, h, eh = config.m2, config.out_hidden, config.edge_hidden
  directed = 2 * num_edges
  phi_e = 2 * directed * (7 * eh + eh * eh * (config.num_layers - 2) + eh * m2)
  local = 2 * directed * 7 * m2 if aggregation else 0
  first = 2 * num_atoms * 7 * m2 * h + 2 * num_edges * 7 * h
  rest = 2 * num_edges * (h * h * (config.num_layers - 2) + h * 6)
  return phi_e + local + first + rest


class ModelTimer:
  """Compiled pieces of one model on one system (XLA unless said otherwise)."""

  def __init__(self, model, positions, momenta, box, multiplier=1.5, edge_headroom=1.2):
    self.model = model
    c = model.config
    self.q = tf.constant(positions, tf.float32)
    self.p = tf.constant(momenta, tf.float32)
    self.box = tf.constant(box, tf.float32)
    self.spec, nl = partition.allocate(self.q, self.box, c.cutoff_angstrom,
                                       capacity_multiplier=multiplier)
    self.num_edges = int(tf.reduce_sum(tf.cast(nl.indices < len(positions), tf.int32))) // 2
    # Padded edge slots cost as much as real ones: size the graph to the pairs.
    self.max_edges = int(self.num_edges * edge_headroom) + 1
    spec, max_edges = self.spec, self.max_edges

    def build_graph(q, box):
      nl = partition.build(q, box, spec)
      return graph_lib.from_neighbors(q, box, nl, c.cutoff_angstrom, max_edges), nl.overflow

    self.graph = tf.function(build_graph, jit_compile=True)
    self._graph_value, _ = self.graph(self.q, self.box)
    self.forward = tf.function(
        lambda q, p, box, g: models.forward(model, q, p, box, g, segment_ops),
        jit_compile=True)

    def steps(q, p, box, n):
      def body(i, q, p, overflow):
        g, over = build_graph(q, box)
        dq, dp = models.forward(model, q, p, box, g, segment_ops)
        return i + 1, q + dq, p + dp, overflow | over | g.overflow
      _, q, p, overflow = tf.while_loop(lambda i, *_: i < n, body,
                                        (tf.constant(0), q, p, tf.constant(False)))
      return q, p, overflow

    self.steps = tf.function(steps, jit_compile=True)

  def flops(self):
    return mdnet_flops(self.model.config, int(self.q.shape[0]), self.num_edges)

  def time_forward(self, repeats=5):
    """Median seconds of Δq, Δp from a prebuilt graph."""
    g = self._graph_value
    return median_seconds(lambda: self.forward(self.q, self.p, self.box, g)[0].numpy(),
                          repeats, warmup=2)[0]

  def time_neighbors(self, repeats=5):
    """Median seconds of cell list + graph construction."""
    return median_seconds(lambda: self.graph(self.q, self.box)[1].numpy(), repeats,
                          warmup=2)[0]

  def time_steps(self, num_steps, repeats=3):
    """Median seconds per step of a compiled roll-out loop (neighbors + model)."""
    n = tf.constant(num_steps)

    def run():
      out = self.steps(self.q, self.p, self.box, n)
      if bool(out[2]):
        raise RuntimeError("neighbor list overflow in the benchmark loop")
    return median_seconds(run, repeats, warmup=1)[0] / num_steps

  def time_dgl_forward(self, repeats=3):
    """Median seconds of the same forward through DGL message passing (eager)."""
    from mdnet_tf.models import dgl_ops  # pylint: disable=import-outside-toplevel
    g = dgl_ops.to_dgl(self._graph_value, int(self.q.shape[0]))
    return median_seconds(
        lambda: models.forward(self.model, self.q, self.p, self.box, g, dgl_ops)[0].numpy(),
        repeats, warmup=1)[0]
