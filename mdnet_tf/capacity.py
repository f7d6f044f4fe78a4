"""Static capacities of a compiled step: the one head-room policy.

A compiled step has fixed-size arrays: the dense neighbor list (neighbors per
atom, atoms per cell; partition.py) and MDNet's padded edge list (graph.py).
They are sized once from a reference state with head-room, and every caller
checks the overflow flags: roll-outs grow the capacities and repeat the chunk,
training and export turn an overflow into an error. Nothing is truncated.

Head-room (one policy, used everywhere):
  HEADROOM = 1.5 on the neighbor list: the fullest atom and the fullest cell
    are maxima over N atoms and fluctuate by tens of per cent in a liquid;
  EDGE_HEADROOM = 1.2 on the graph: the number of pairs is a sum over N
    atoms and fluctuates by about 1 %, and every padded edge slot costs a full
    φ_o evaluation, so the graph gets less head-room than the list.
After an overflow, capacities grow by HEADROOM (at least).

Shapes and units: positions [N, 3] Å, box [3] Å, cutoff Å.
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from mdnet_tf import partition

HEADROOM = 1.5
EDGE_HEADROOM = 1.2


def count_pairs(neighbors):
  """Undirected pairs in a full neighbor list (host-side int)."""
  n = neighbors.indices.shape[0]
  return int(tf.reduce_sum(tf.cast(neighbors.indices < n, tf.int32))) // 2


class Capacity(NamedTuple):
  """Neighbor-list spec and graph edge capacity per atom.

  spec: partition.NeighborSpec (static).
  edges_per_atom: undirected edge slots per atom; a system of N atoms gets
    ceil(N · edges_per_atom) slots (`max_edges`).
  """
  spec: partition.NeighborSpec
  edges_per_atom: float

  @classmethod
  def fit(cls, positions, box, cutoff, skin=0.0, headroom=HEADROOM):
    """Capacities of a reference state with the head-room policy above.

    Returns (Capacity, the reference state's NeighborList).
    """
    spec, nl = partition.allocate(positions, box, cutoff, skin, capacity_multiplier=headroom)
    edges = count_pairs(nl) * min(headroom, EDGE_HEADROOM)
    return cls(spec, max(edges, 1.0) / nl.indices.shape[0]), nl

  @classmethod
  def from_spec(cls, spec):
    """Capacities for a given neighbor spec; the graph can hold every listed
    pair (max_neighbors / 2 per atom), so only the list can overflow."""
    return cls(spec, spec.max_neighbors / 2.0)

  def max_edges(self, num_atoms):
    """Undirected edge capacity of N atoms: int for an int N, else a tensor."""
    if isinstance(num_atoms, (int, np.integer)):
      return max(1, math.ceil(num_atoms * self.edges_per_atom))
    n = tf.cast(num_atoms, tf.float64)
    return tf.maximum(1, tf.cast(tf.math.ceil(n * self.edges_per_atom), tf.int32))

  def grow(self, neighbors, headroom=HEADROOM):
    """Larger capacities after an overflow somewhere in a compiled chunk."""
    return Capacity(partition.grow(self.spec, neighbors, headroom),
                    self.edges_per_atom * headroom)

  def to_array(self):
    return np.array(list(self.spec) + [self.edges_per_atom], np.float64)

  @classmethod
  def from_array(cls, values):
    cutoff, skin, k, cell, edges = np.asarray(values, np.float64).tolist()
    return cls(partition.NeighborSpec(cutoff, skin, int(k), int(cell)), edges)

  def describe(self):
    return (f"max neighbors {self.spec.max_neighbors}, atoms per cell "
            f"{self.spec.cell_capacity}, edges per atom {self.edges_per_atom:.2f}")
