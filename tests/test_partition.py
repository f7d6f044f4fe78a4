"""Cell-list neighbor list vs brute force O(N²), overflow reporting, skin updates."""

import numpy as np
import pytest
import tensorflow as tf

from conftest import brute_force_neighbors
from mdnet_tf import errors
from mdnet_tf import partition

CUTOFF = 7.0


def _as_sets(nl, n):
  return [set(row[row < n].tolist()) for row in nl.indices.numpy()]


def _configs():
  rng = np.random.default_rng(0)
  out = []
  # A liquid-like box with ≥ 3 cells along every axis (the half-stencil search).
  g = np.stack(np.meshgrid(*[np.arange(8)] * 3, indexing="ij"), -1).reshape(-1, 3)
  out.append(("three_cells", g * 3.6 + rng.normal(0, 0.3, g.shape), np.full(3, 8 * 3.6)))
  # Random gas-like, non-cubic box with 2 cells along one axis (the ±1 cells coincide).
  out.append(("random", rng.uniform(-50, 80, (300, 3)), np.array([14.5, 21.0, 30.0])))
  # Dense: jittered lattice at twice liquid density.
  g = np.stack(np.meshgrid(*[np.arange(8)] * 3, indexing="ij"), -1).reshape(-1, 3)
  out.append(("dense", g * 2.9 + rng.normal(0, 0.2, g.shape), np.full(3, 8 * 2.9)))
  # Clustered: half of the atoms in one small blob (uneven cell occupancy).
  blob = rng.normal(10.0, 1.5, (150, 3))
  out.append(("clustered", np.concatenate([blob, rng.uniform(0, 30, (150, 3))]),
              np.array([30.0, 30.0, 30.0])))
  return out


@pytest.mark.parametrize("name,positions,box", _configs(), ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("jit", [False, True])
def test_matches_brute_force(name, positions, box, jit):
  del name
  spec, _ = partition.allocate(positions.astype(np.float32), box, CUTOFF)
  build = tf.function(lambda q, b: partition.build(q, b, spec), jit_compile=jit)
  nl = build(tf.constant(positions, tf.float32), tf.constant(box, tf.float32))
  assert not bool(nl.overflow)
  ref = brute_force_neighbors(positions, box, CUTOFF)
  got = _as_sets(nl, len(positions))
  # float32 vs float64 may disagree only for pairs within rounding of r = cutoff.
  d = positions[:, None] - positions[None]
  d -= box * np.round(d / box)
  r = np.sqrt((d ** 2).sum(-1))
  for i, (g, e) in enumerate(zip(got, ref)):
    for j in g ^ e:
      assert abs(r[i, j] - CUTOFF) < 1e-4, (i, j, r[i, j])
  np.testing.assert_array_equal(nl.counts.numpy(), [len(s) for s in got])


@pytest.mark.parametrize("name,positions,box", _configs(), ids=lambda x: x if isinstance(x, str) else "")
@pytest.mark.parametrize("graph_mode", [False, True])
def test_compact_pairs_match_brute_force(name, positions, box, graph_mode):
  """partition.pairs (ragged, dynamic length) lists every pair i < j once."""
  del name
  fn = tf.function(partition.pairs) if graph_mode else partition.pairs
  i, j = fn(tf.constant(positions, tf.float32), tf.constant(box, tf.float32), CUTOFF)
  i, j = i.numpy(), j.numpy()
  assert np.all(i < j)
  got = set(zip(i.tolist(), j.tolist()))
  assert len(got) == len(i)                                 # no pair twice
  ref = {(a, b) for a, row in enumerate(brute_force_neighbors(positions, box, CUTOFF))
         for b in row if a < b}
  d = positions[:, None] - positions[None]
  d -= box * np.round(d / box)
  r = np.sqrt((d ** 2).sum(-1))
  for a, b in got ^ ref:      # float32 vs float64 only at r = cutoff
    assert abs(r[a, b] - CUTOFF) < 1e-4, (a, b, r[a, b])


def test_forced_overflow_is_reported():
  _, positions, box = _configs()[1]
  spec, _ = partition.allocate(positions, box, CUTOFF)
  small = spec._replace(max_neighbors=spec.max_neighbors // 2)
  nl = partition.build(tf.constant(positions), tf.constant(box), small)
  assert bool(nl.overflow)
  assert int(tf.reduce_max(nl.counts)) > small.max_neighbors  # true count kept
  with pytest.raises(errors.NeighborListOverflowError, match="max neighbors"):
    partition.raise_if_overflow(nl, small)
  grown = partition.grow(small, nl)
  nl2 = partition.build(tf.constant(positions), tf.constant(box), grown)
  assert not bool(nl2.overflow)
  assert _as_sets(nl2, len(positions)) == brute_force_neighbors(positions, box, CUTOFF)


def test_cell_overflow_is_reported():
  _, positions, box = _configs()[2]
  spec, _ = partition.allocate(positions, box, CUTOFF)
  nl = partition.build(tf.constant(positions), tf.constant(box),
                       spec._replace(cell_capacity=2))
  assert bool(nl.overflow)
  assert int(nl.max_cell_occupancy) > 2


def test_box_too_small_and_nan_are_clear_errors():
  rng = np.random.default_rng(3)
  q = rng.uniform(0, 12, (50, 3))
  with pytest.raises(errors.InputError, match=r"box edge 12 Å < 2 × cutoff 7 Å"):
    partition.allocate(q, np.array([12.0, 20.0, 20.0]), CUTOFF)
  with pytest.raises(errors.InputError, match="box edge .* < 2 × cutoff 8"):
    partition.allocate(q, np.array([15.0, 20.0, 20.0]), CUTOFF, skin=1.0)
  q[7] = np.nan
  with pytest.raises(errors.InputError, match="non-finite.*index 7"):
    partition.allocate(q, np.array([20.0, 20.0, 20.0]), CUTOFF)


def test_skin_list_stays_complete_until_rebuild():
  rng = np.random.default_rng(4)
  box = np.full(3, 25.0)
  q = rng.uniform(0, 25, (250, 3))
  spec, nl = partition.allocate(q, box, CUTOFF, skin=1.0)
  moved = q + rng.uniform(-0.25, 0.25, q.shape)   # |move| < skin / 2 per atom
  nl2 = partition.update(tf.constant(moved), tf.constant(box), nl, spec)
  assert not bool(partition.needs_rebuild(tf.constant(moved), tf.constant(box), nl, spec))
  for got, ref in zip(_as_sets(nl2, len(q)), brute_force_neighbors(moved, box, CUTOFF)):
    assert ref <= got   # a superset within cutoff + skin
  far = q + 0.6
  assert bool(partition.needs_rebuild(tf.constant(far), tf.constant(box), nl, spec))
