"""Periodic neighbor list with linear cost: cell list, fixed capacity, overflow flag.

The list is *dense*: `indices[i, k]` is the k-th neighbor of atom i, and empty
slots hold the sentinel `num_atoms` (one past the last atom), as in jax-md. The
capacity `max_neighbors` is static, so the build compiles under XLA; atoms with
more neighbors than fit raise the `overflow` flag, and every caller checks it:
training and export turn it into an error, roll-outs reallocate (never truncate).

`pairs` is the compact alternative for graph-mode (non-XLA) code: the list of
pairs i < j within the cutoff with a dynamic length, built from the same cell
grid through ragged index ranges, so no slot is padded and nothing can
overflow (it cannot compile under XLA, which needs static shapes).

The build bins atoms into cells of edge ≥ list radius (cutoff + skin), sorts
atoms by cell, and for each atom scans the 27 surrounding cells. Per-cell counts
and starts live in arrays of N entries (at most N cells, so the shapes are
static under XLA while the number of cells may change with the box). Cost is
O(N · 27 · cell_capacity) plus an O(N log N) sort: linear in N at fixed density.

Shapes and units:
  positions: [N, 3] float, Å (wrapped or unwrapped)
  box: [3] float, Å (orthorhombic; every edge ≥ 2 × (cutoff + skin))
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import space

# The 27 cell offsets of the stencil, [27, 3] in {-1, 0, 1}.
_STENCIL = np.array([(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1)
                     for c in (-1, 0, 1)], dtype=np.int32)


class NeighborSpec(NamedTuple):
  """Static (host-side) description of a neighbor list.

  cutoff: interaction cutoff, Å. skin: extra radius, Å; with skin > 0 the list
  is reused until some atom moved more than skin / 2. max_neighbors: capacity
  per atom. cell_capacity: capacity per cell.
  """
  cutoff: float
  skin: float
  max_neighbors: int
  cell_capacity: int

  @property
  def list_radius(self):
    return self.cutoff + self.skin


class NeighborList(NamedTuple):
  """A built neighbor list (all tensors).

  indices: [N, max_neighbors] int32, neighbor ids, sentinel N in empty slots.
  counts: [N] int32, true number of neighbors within the list radius
    (may exceed max_neighbors; then `overflow` is set).
  max_cell_occupancy: [] int32, the fullest cell's atom count.
  overflow: [] bool, True if any count or cell occupancy exceeded capacity.
  reference_positions: [N, 3] positions the list was built from, Å.
  """
  indices: tf.Tensor
  counts: tf.Tensor
  max_cell_occupancy: tf.Tensor
  overflow: tf.Tensor
  reference_positions: tf.Tensor


def _cell_grid(box, radius, max_cells):
  """Cells per dimension [3] int32 and their edges [3] float, Å.

  Cells are at least `radius` wide, and wider if needed so that there are at
  most `max_cells` of them (cells wider than the radius stay correct; they
  only hold more candidates).
  """
  volume = tf.reduce_prod(box)
  edge = tf.maximum(radius, tf.pow(volume / tf.cast(max_cells, box.dtype), 1.0 / 3.0))
  n_cells = tf.maximum(tf.cast(tf.math.floor(box / edge), tf.int32), 1)
  return n_cells, box / tf.cast(n_cells, box.dtype)


def build(positions, box, spec):
  """Builds the neighbor list of `positions` in `box` (pure TF, XLA-friendly).

  Args:
    positions: [N, 3] float, Å.
    box: [3] float, Å. Must satisfy box ≥ 2 × spec.list_radius (check on the
      host with `space.check_box`; inside a graph the caller asserts it).
    spec: NeighborSpec (static).
  Returns:
    NeighborList. Check `overflow` before using `indices`.
  """
  positions = tf.convert_to_tensor(positions)
  box = tf.cast(tf.convert_to_tensor(box), positions.dtype)
  num_atoms = tf.shape(positions)[0]
  capacity = spec.cell_capacity
  radius = tf.constant(spec.list_radius, positions.dtype)

  # At most N cells: a static bound under XLA, and at liquid densities there are
  # about N / 7 cells of edge 7 Å, so the bound only bites for dilute systems.
  n_cells, cell_edge = _cell_grid(box, radius, num_atoms)
  wrapped = space.wrap(positions, box)
  cell_xyz = tf.minimum(tf.cast(tf.math.floor(wrapped / cell_edge), tf.int32),
                        n_cells - 1)                                # [N, 3]

  def flat_id(xyz):
    return (xyz[..., 0] * n_cells[1] + xyz[..., 1]) * n_cells[2] + xyz[..., 2]

  cell_id = flat_id(cell_xyz)                                       # [N]
  order = tf.argsort(cell_id, stable=True)                          # [N]
  cell_count = tf.math.unsorted_segment_sum(tf.ones_like(cell_id), cell_id,
                                            num_atoms)              # [≤N cells]
  cell_start = tf.cumsum(cell_count, exclusive=True)

  stencil = tf.constant(_STENCIL)                                   # [27, 3]
  stencil_ok = _stencil_ok(n_cells)                                 # [27]

  nbr_xyz = tf.math.floormod(cell_xyz[:, None, :] + stencil[None], n_cells)
  nbr_cell = flat_id(nbr_xyz)                                       # [N, 27]
  start = tf.gather(cell_start, nbr_cell)
  occupancy = tf.gather(cell_count, nbr_cell)

  slot = tf.range(capacity, dtype=tf.int32)                        # [C]
  candidate_ok = tf.logical_and(slot[None, None, :] < occupancy[:, :, None],
                                stencil_ok[None, :, None])          # [N, 27, C]
  sorted_pos = tf.minimum(start[:, :, None] + slot[None, None, :], num_atoms - 1)
  candidates = tf.reshape(tf.gather(order, sorted_pos), [num_atoms, -1])
  candidate_ok = tf.reshape(candidate_ok, [num_atoms, -1])          # [N, M]

  d = space.displacement(positions[:, None, :],
                         tf.gather(positions, candidates), box)     # [N, M, 3]
  r2 = tf.reduce_sum(d * d, axis=-1)
  self_index = tf.range(num_atoms, dtype=tf.int32)[:, None]
  is_neighbor = candidate_ok & (r2 < radius * radius) & (candidates != self_index)

  counts = tf.reduce_sum(tf.cast(is_neighbor, tf.int32), axis=1)    # [N]
  column = tf.cumsum(tf.cast(is_neighbor, tf.int32), axis=1, exclusive=True)
  k = spec.max_neighbors
  keep = is_neighbor & (column < k)
  rows = tf.broadcast_to(self_index, tf.shape(candidates))
  target_col = tf.where(keep, column, k)                            # k = discard slot
  scatter_idx = tf.stack([tf.reshape(rows, [-1]), tf.reshape(target_col, [-1])], 1)
  indices = tf.tensor_scatter_nd_update(
      tf.fill([num_atoms, k + 1], num_atoms), scatter_idx,
      tf.reshape(tf.where(keep, candidates, num_atoms), [-1]))[:, :k]

  max_occupancy = tf.reduce_max(occupancy[:, 13])                   # own cell
  overflow = tf.logical_or(tf.reduce_max(counts) > k, max_occupancy > capacity)
  return NeighborList(indices, counts, max_occupancy, overflow, positions)


def _stencil_ok(n_cells):
  """[27] bool: stencil offsets that reach a cell no other offset reaches.

  With fewer than 3 cells along an axis the offsets -1 and +1 reach the same
  cell (2 cells) or the own cell (1 cell): keep each distinct cell once.
  """
  stencil = tf.constant(_STENCIL)
  distinct = tf.logical_or(
      n_cells[None, :] >= 3,
      tf.logical_or(stencil == 0, tf.logical_and(n_cells[None, :] == 2, stencil == -1)))
  return tf.reduce_all(distinct, axis=1)


# The 13 offsets of a half stencil: one of each ± pair of neighbor cells.
_HALF_STENCIL = np.array([o for o in _STENCIL.tolist() if tuple(o) > (0, 0, 0)], np.int32)


def pairs(positions, box, cutoff):
  """All pairs i < j closer than `cutoff` (minimum image), compact: ([E], [E]) int32.

  Graph or eager mode only (E is dynamic, so it does not compile under XLA);
  exact, nothing padded, no capacity to overflow. With at least 3 cells along
  every axis each atom scans its own cell (atoms after it in cell order) and a
  half stencil of 13 neighbor cells, so every pair is met once; with fewer
  cells (small boxes) it scans the distinct cells of the full stencil and keeps
  j > i.

  Args:
    positions: [N, 3] float, Å.  box: [3] float, Å (every edge ≥ 2 × cutoff).
    cutoff: Å.
  """
  positions = tf.convert_to_tensor(positions)
  box = tf.cast(tf.convert_to_tensor(box), positions.dtype)
  num_atoms = tf.shape(positions)[0]
  radius = tf.constant(cutoff, positions.dtype)
  n_cells, cell_edge = _cell_grid(box, radius, num_atoms)
  cell_xyz = tf.minimum(tf.cast(tf.math.floor(space.wrap(positions, box) / cell_edge),
                                tf.int32), n_cells - 1)

  def flat_id(xyz):
    return (xyz[..., 0] * n_cells[1] + xyz[..., 1]) * n_cells[2] + xyz[..., 2]

  total = tf.reduce_prod(n_cells)
  cell_id = flat_id(cell_xyz)
  order = tf.argsort(cell_id, stable=True)          # atoms in cell order ("sorted positions")
  count = tf.math.bincount(cell_id, minlength=total, maxlength=total, dtype=tf.int32)
  start = tf.cumsum(count, exclusive=True)
  sorted_xyz = tf.gather(cell_xyz, order)
  sorted_q = tf.gather(positions, order)

  def close(a, b):
    """(i, j) original ids of the candidate pairs (a, b) in sorted positions within r_c."""
    d = space.displacement(tf.gather(sorted_q, a), tf.gather(sorted_q, b), box)
    within = tf.reduce_sum(d * d, axis=-1) < radius * radius
    i = tf.gather(order, tf.boolean_mask(a, within))
    j = tf.gather(order, tf.boolean_mask(b, within))
    return tf.minimum(i, j), tf.maximum(i, j)

  def half_stencil():
    nbr = flat_id(tf.math.floormod(sorted_xyz[:, None, :] + _HALF_STENCIL[None], n_cells))
    own = flat_id(sorted_xyz)
    first = tf.concat([tf.range(num_atoms)[:, None] + 1, tf.gather(start, nbr)], 1)
    limit = tf.concat([tf.gather(start + count, own)[:, None], tf.gather(start + count, nbr)], 1)
    ranges = tf.ragged.range(tf.reshape(first, [-1]), tf.reshape(limit, [-1]))
    a = tf.cast(ranges.value_rowids() // (1 + len(_HALF_STENCIL)), tf.int32)
    return close(a, ranges.flat_values)

  def full_stencil():
    nbr = flat_id(tf.math.floormod(sorted_xyz[:, None, :] + tf.constant(_STENCIL)[None], n_cells))
    first = tf.reshape(tf.gather(start, nbr), [-1])
    size = tf.reshape(tf.gather(count, nbr) * tf.cast(_stencil_ok(n_cells), tf.int32)[None],
                      [-1])
    ranges = tf.ragged.range(first, first + size)
    a = tf.cast(ranges.value_rowids() // 27, tf.int32)
    b = ranges.flat_values
    ahead = tf.gather(order, b) > tf.gather(order, a)
    return close(tf.boolean_mask(a, ahead), tf.boolean_mask(b, ahead))

  return tf.cond(tf.reduce_min(n_cells) >= 3, half_stencil, full_stencil)


def needs_rebuild(positions, box, neighbors, spec):
  """True if some atom moved more than skin / 2 since the list was built."""
  if spec.skin <= 0.0:
    return tf.constant(True)
  d = space.displacement(positions, neighbors.reference_positions,
                         tf.cast(box, positions.dtype))
  max_d2 = tf.reduce_max(tf.reduce_sum(d * d, axis=-1))
  return max_d2 > (0.5 * spec.skin) ** 2


def update(positions, box, neighbors, spec):
  """Rebuilds the list if needed (always when spec.skin == 0)."""
  if spec.skin <= 0.0:
    return build(positions, box, spec)
  return tf.cond(needs_rebuild(positions, box, neighbors, spec),
                 lambda: build(positions, box, spec), lambda: neighbors)


def allocate(positions, box, cutoff, skin=0.0, capacity_multiplier=1.25):
  """Host-side: chooses capacities from the data and returns (spec, list).

  Args:
    positions: [N, 3] array-like, Å.  box: [3] array-like, Å.
    cutoff: interaction cutoff, Å.  skin: extra list radius, Å.
    capacity_multiplier: head-room over the observed maxima (≥ 1).
  Raises:
    errors.InputError: bad shapes, non-finite values, box < 2 × (cutoff + skin).
  """
  if capacity_multiplier < 1.0:
    raise errors.InputError(
        f"capacity_multiplier must be ≥ 1, got {capacity_multiplier}")
  space.check_state(positions)
  space.check_box(box, cutoff + skin)
  positions = tf.convert_to_tensor(positions)
  box = tf.cast(tf.convert_to_tensor(box), positions.dtype)
  n_cells, cell_edge = _cell_grid(box, tf.constant(cutoff + skin, positions.dtype),
                                  positions.shape[0])
  cell_xyz = tf.minimum(
      tf.cast(tf.math.floor(space.wrap(positions, box) / cell_edge), tf.int32),
      n_cells - 1)
  ids = (cell_xyz[:, 0] * n_cells[1] + cell_xyz[:, 1]) * n_cells[2] + cell_xyz[:, 2]
  max_occupancy = int(tf.reduce_max(tf.math.bincount(ids)))
  cell_capacity = max(1, math.ceil(max_occupancy * capacity_multiplier))
  # First pass with a capacity that cannot overflow, to measure the counts.
  probe = NeighborSpec(cutoff, skin, 27 * cell_capacity, cell_capacity)
  max_count = int(tf.reduce_max(build(positions, box, probe).counts))
  spec = NeighborSpec(cutoff, skin, max(1, math.ceil(max_count * capacity_multiplier)),
                      cell_capacity)
  return spec, build(positions, box, spec)


def grow(spec, neighbors, capacity_multiplier=1.25):
  """Host-side: a larger spec after an overflow (for roll-outs).

  Capacities grow to fit the observed maxima with head-room, and at least by
  `capacity_multiplier`, since an overflow inside a compiled loop may have
  happened at a step whose list is no longer at hand.
  """
  max_count = int(tf.reduce_max(neighbors.counts))
  occupancy = int(neighbors.max_cell_occupancy)
  return spec._replace(
      max_neighbors=max(math.ceil(spec.max_neighbors * capacity_multiplier),
                        math.ceil(max_count * capacity_multiplier)),
      cell_capacity=max(math.ceil(spec.cell_capacity * capacity_multiplier),
                        math.ceil(occupancy * capacity_multiplier)))


def raise_if_overflow(neighbors, spec, where="neighbor list"):
  """Host-side: raises NeighborListOverflowError with the numbers if overflowed."""
  if bool(neighbors.overflow):
    max_count = int(tf.reduce_max(neighbors.counts))
    raise errors.NeighborListOverflowError(
        f"{where} overflow: max neighbors {max_count} (capacity "
        f"{spec.max_neighbors}), max atoms per cell "
        f"{int(neighbors.max_cell_occupancy)} (capacity {spec.cell_capacity}). "
        f"Reallocate with partition.allocate() or partition.grow(); entries "
        f"are never dropped silently.")
