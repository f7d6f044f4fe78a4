"""Propagators: one step of Δt as a pure TF function, for any model or Verlet.

A Propagator's `delta(q, p, box, neighbors, capacity)` maps float32 positions
[N, 3] Å and momenta [N, 3] g/mol·Å/fs in a box [3] Å to (Δq [N, 3], Δp
[N, 3], overflow [] bool). `neighbors` is the partition.NeighborList of q
within `cutoff` built by the step loop (stepping.py) with capacity.spec, and
`capacity` (capacity.Capacity) sizes any graph the propagator builds; overflow
says a capacity was too small (the caller grows it or raises).

Sources:
  model_propagator      an in-process model (MDNet, EGNN, SIMPLE; Noether
                        tailoring included), TF-native message passing, XLA;
  savedmodel_propagator an exported SavedModel's serving_default (its own
                        in-graph neighbor search; graph mode);
  verlet_propagator     one velocity-Verlet step with the LJ forces.
`from_path` builds the right one from a training run, pretrained directory or
SavedModel (models/io.py reads Δt, mass and potential from the model).
"""

from typing import Callable, NamedTuple

import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import integrate
from mdnet_tf import models
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import io as model_io
from mdnet_tf.models import segment_ops

# Prediction-time Noether tailoring step (from a sweep {1e-3, 1e-2, 0.1, 1} on
# the 128 fs model: 0.1 cut the per-step |ΔE| most).
TAILOR_LR = 0.1


class Propagator(NamedTuple):
  """One learned (or Verlet) step; see the module doc for `delta`.

  dt_fs: the step, fs.  cutoff: neighbor-list radius the delta needs, Å.
  mass: g/mol.  lj: the system's potentials.LennardJones (for monitoring and
  energy rescaling).  jit_compile: whether the step loop can run under XLA.
  name: for reports.
  """
  delta: Callable
  dt_fs: float
  cutoff: float
  mass: float
  lj: potentials.LennardJones
  jit_compile: bool
  name: str


def num_atoms(positions):
  """N as a Python int when the shape is static, else a scalar tensor."""
  n = positions.shape[0]
  return n if n is not None else tf.shape(positions)[0]


def model_delta(model):
  """delta(q, p, box, neighbors, capacity) of an in-process model (graph + forward)."""
  cutoff = model.config.cutoff_angstrom

  def delta(q, p, box, nl, capacity):
    graph = graph_lib.from_neighbors(q, box, nl, cutoff, capacity.max_edges(num_atoms(q)))
    dq, dp = models.forward(model, q, p, box, graph, segment_ops)
    return dq, dp, graph.overflow

  return delta


def model_propagator(model, name=None):
  """An in-process model on the TF-native path (XLA)."""
  c = model.config
  return Propagator(model_delta(model), float(c.dt_fs), float(c.cutoff_angstrom),
                    float(c.mass_amu), c.lj(), True, name or c.name)


def savedmodel_propagator(loaded, signature="serving_default"):
  """An exported SavedModel (models.io.Loaded); graph mode, not XLA."""
  fn = loaded.savedmodel.signatures[signature]
  keep_alive = loaded.savedmodel   # the signature needs its variables alive

  def delta(q, p, box, nl, capacity):
    del nl, capacity
    assert keep_alive is not None
    out = fn(positions=q, momenta=p, box=box)  # overflow raises inside the SavedModel
    return out["positions"] - q, out["momenta"] - p, tf.constant(False)

  c = loaded.config
  return Propagator(delta, float(c.dt_fs), float(c.cutoff_angstrom), float(c.mass_amu),
                    c.lj(), False, f"savedmodel:{loaded.path}")


def verlet_propagator(dt_fs, lj, mass):
  """One velocity-Verlet step of dt_fs (forces at both ends) as a propagator."""
  def delta(q, p, box, nl, capacity):
    _, _, f0 = potentials.energy_and_forces(q, box, nl, lj)

    def forces(q1):
      nl1 = partition.build(q1, box, capacity.spec)
      return potentials.energy_and_forces(q1, box, nl1, lj)[2], nl1

    q1, p1, _, nl1 = integrate.verlet_step(q, p, f0, dt_fs, mass, forces)
    return q1 - q, p1 - p, nl1.overflow

  return Propagator(delta, float(dt_fs), float(lj.cutoff), float(mass), lj, True,
                    f"verlet:{dt_fs:g}fs")


def for_loaded(loaded):
  """The propagator of a models.io.Loaded model."""
  if loaded.savedmodel is not None:
    return savedmodel_propagator(loaded)
  return model_propagator(loaded.model)


def from_path(path, tailor="none", tailor_lr=TAILOR_LR):
  """The propagator of a training run, pretrained directory or SavedModel.

  tailor: 'none', or 'energy' / 'temperature' for Noether tailoring at
  prediction time (needs the checkpoint, not a SavedModel).
  """
  if tailor == "none":
    return for_loaded(model_io.load(path))
  if tailor not in ("energy", "temperature"):
    raise errors.InputError(f"prediction-time tailoring supports energy or temperature, "
                            f"got {tailor!r}")
  if model_io.is_savedmodel(model_io.latest_version(path)):
    raise errors.InputError("prediction-time tailoring needs the checkpoint, not a "
                            "SavedModel: pass the training or pretrained directory")
  name = model_io.read_config(path).name
  loaded = model_io.load(path, tailor=tailor, tailor_lr=tailor_lr)
  return model_propagator(loaded.model, f"{name}+tailor_{tailor}")
