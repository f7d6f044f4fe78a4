"""Periodic space vs explicit image sums, and input validation."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import space


def test_displacement_is_shortest_image():
  rng = np.random.default_rng(1)
  box = np.array([15.0, 17.0, 21.0])
  a, b = rng.uniform(-40, 60, (2, 200, 3))
  d = space.displacement(tf.constant(a), tf.constant(b), tf.constant(box)).numpy()
  shifts = np.array(list(itertools.product(range(-7, 8), repeat=3))) * box
  # Brute force: shortest vector among explicit images (|a − b| < 100 Å, images up to ±7 boxes).
  cand = (a - b)[:, None, :] + shifts[None]
  best = cand[np.arange(len(a)), np.argmin((cand ** 2).sum(-1), axis=1)]
  np.testing.assert_allclose(d, best, atol=1e-10)
  assert np.all(np.abs(d) <= box / 2 + 1e-12)


def test_wrap_range_and_equivalence():
  box = np.array([10.0, 11.0, 12.0])
  q = np.array([[-0.0, 10.0, 24.0], [-1e-9, -35.5, 11.999999], [5.0, 5.0, 5.0]])
  w = space.wrap(tf.constant(q), tf.constant(box)).numpy()
  assert np.all(w >= 0) and np.all(w < box)
  np.testing.assert_allclose(np.round((q - w) / box), (q - w) / box, atol=1e-6)


@pytest.mark.parametrize("box,msg", [
    ([13.9, 20.0, 20.0], "box edge 13.9 Å < 2 × cutoff 7 Å"),
    ([20.0, 20.0], "shape [3]"),
    ([20.0, -1.0, 20.0], "positive and finite"),
    ([20.0, np.nan, 20.0], "positive and finite"),
])
def test_check_box_errors(box, msg):
  with pytest.raises(errors.InputError, match=msg.replace("[", r"\[").replace("]", r"\]")):
    space.check_box(box, 7.0)


def test_check_state_errors():
  q = np.zeros((4, 3))
  with pytest.raises(errors.InputError, match="shape"):
    space.check_state(np.zeros((4, 2)))
  bad = q.copy()
  bad[2, 1] = np.nan
  with pytest.raises(errors.InputError, match="non-finite values for 1 atom.*index 2"):
    space.check_state(bad)
  with pytest.raises(errors.InputError, match="momenta shape"):
    space.check_state(q, np.zeros((3, 3)))
