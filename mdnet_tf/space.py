"""Periodic space for orthorhombic boxes: minimum image, wrapping, validation.

All functions are pure TensorFlow and work eagerly, in `tf.function`, under XLA
and inside a SavedModel. Positions in trajectories are kept *unwrapped* (so the
mean-squared displacement can be computed); wrap only where a cell index is needed.

Shapes and units:
  positions: [num_atoms, 3] float, Å (wrapped or unwrapped)
  box:       [3] float, Å, edge lengths of the orthorhombic box
"""

import numpy as np
import tensorflow as tf

from mdnet_tf import errors


def displacement(r_a, r_b, box):
  """Minimum-image displacement r_a - r_b.

  Args:
    r_a, r_b: [..., 3] positions in Å (broadcastable against each other).
    box: [3] box edge lengths in Å.
  Returns:
    [..., 3] displacement in Å with every component in [-box/2, box/2].
  """
  return minimum_image(r_a - r_b, box)


def minimum_image(d, box):
  """The periodic image of difference vectors d [..., 3] closest to zero, Å."""
  return d - box * tf.math.round(d / box)


def wrap(positions, box):
  """Wraps positions into [0, box) per component. [N, 3] Å -> [N, 3] Å."""
  wrapped = positions - box * tf.math.floor(positions / box)
  # Rounding can give exactly `box`; fold it back to 0.
  return tf.where(wrapped >= box, wrapped - box, wrapped)


def check_box(box, cutoff, *, name="box"):
  """Host-side check that a minimum-image search with `cutoff` is valid.

  Args:
    box: [3] array-like of box edge lengths, Å.
    cutoff: the neighbor-search radius in Å (cutoff + skin).
  Raises:
    errors.InputError: if the box is not 3 positive finite numbers or any edge
      is shorter than 2 × cutoff (minimum image would miss or double neighbors).
  """
  box = np.asarray(box, dtype=np.float64)
  if box.shape != (3,):
    raise errors.InputError(
        f"{name} must have shape [3] (orthorhombic edge lengths in Å), got "
        f"shape {list(box.shape)}")
  if not np.all(np.isfinite(box)) or np.any(box <= 0):
    raise errors.InputError(f"{name} edges must be positive and finite, got {box}")
  too_small = box < 2.0 * cutoff
  if np.any(too_small):
    edge = float(box[np.argmax(too_small)])
    raise errors.InputError(
        f"box edge {edge:.4g} Å < 2 × cutoff {cutoff:.4g} Å; the minimum-image "
        f"neighbor search needs every edge ≥ {2 * cutoff:.4g} Å. Use a larger "
        f"system (more atoms at the same density) or a smaller cutoff.")


def check_state(positions, momenta=None, box=None, cutoff=None):
  """Host-side validation of a state; raises errors.InputError with details.

  Args:
    positions: [N, 3] Å.  momenta: optional [N, 3] g/mol·Å/fs.
    box: optional [3] Å.  cutoff: optional Å, checked against the box.
  """
  positions = np.asarray(positions)
  if positions.ndim != 2 or positions.shape[1] != 3 or positions.shape[0] < 2:
    raise errors.InputError(
        f"positions must have shape [num_atoms ≥ 2, 3], got {list(positions.shape)}")
  _check_finite(positions, "positions")
  if momenta is not None:
    momenta = np.asarray(momenta)
    if momenta.shape != positions.shape:
      raise errors.InputError(
          f"momenta shape {list(momenta.shape)} does not match positions shape "
          f"{list(positions.shape)}")
    _check_finite(momenta, "momenta")
  if box is not None:
    check_box(box, 0.0 if cutoff is None else cutoff)


def _check_finite(values, name):
  """Raises InputError naming how many atoms [N, 3] have NaN/inf, and the first."""
  bad = ~np.isfinite(values).all(axis=1)
  if bad.any():
    raise errors.InputError(
        f"{name} contain non-finite values for {int(bad.sum())} atom(s), "
        f"first at atom index {int(np.argmax(bad))}")
