"""Propagators: one step of Δt as a pure TF function, for any model or Verlet.

A Propagator's `delta(q, p, box, neighbors, capacity)` maps float32 positions
[N, 3] Å and momenta [N, 3] g/mol·Å/fs in a box [3] Å (float64 state for a
propagator with float64_inputs) to a Delta: Δq [N, 3], Δp [N, 3], overflow []
bool and, for an implicit step, the solver's iterations [] int32 and whether
it converged [] bool. `neighbors` comes from the step loop (stepping.py):
the partition.NeighborList of q within `cutoff` built with capacity.spec, or
for a `compact` propagator the pairs (i [E], j [E]) of partition.pairs.
`capacity` (capacity.Capacity) sizes any padded graph the propagator builds;
overflow says a capacity was too small (the caller grows it or raises).

Two execution modes of the same function (MODES):
  xla    — padded graph of static size, the whole loop one XLA program;
  graph  — compact graph (dynamic edge count, nothing padded), plain TF graph
           execution: big matmuls through oneDNN (fused MatMul+BiasAdd+ReLU),
           no XLA anywhere, so the stock TF Serving can run it.

Sources:
  model_propagator      an in-process model (MDNet, EGNN, SIMPLE; Noether
                        tailoring included), TF-native message passing;
  savedmodel_propagator an exported SavedModel's serving_default (its own
                        in-graph neighbor search; graph mode);
  verlet_propagator     one velocity-Verlet step with the LJ forces;
  symplectic_propagator the generating-function step (models/symplectic.py),
                        its implicit equations solved in float64 each step.
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
from mdnet_tf.models import compact_ops
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import io as model_io
from mdnet_tf.models import mlp
from mdnet_tf.models import segment_ops
from mdnet_tf.models import symplectic

MODES = ("graph", "xla")
# Graph mode is the default: on this project's CPU it runs a 4000-atom MDNet step
# 10–25 % faster than XLA (results/table2.md), and it is the only mode the stock
# TF Serving runs.
DEFAULT_MODE = "graph"

# Prediction-time Noether tailoring step (from a sweep {1e-3, 1e-2, 0.1, 1} on
# the 128 fs model: 0.1 cut the per-step |ΔE| most).
TAILOR_LR = 0.1


class Delta(NamedTuple):
  """What one step of a propagator returns (see the module doc)."""
  dq: tf.Tensor
  dp: tf.Tensor
  overflow: tf.Tensor
  iterations: object = 0        # explicit steps: no solve
  converged: object = True


class Propagator(NamedTuple):
  """One learned (or Verlet) step; see the module doc for `delta`.

  dt_fs: the step, fs.  cutoff: neighbor-list radius the delta needs, Å.
  mass: g/mol.  lj: the system's potentials.LennardJones (for monitoring and
  energy rescaling).  jit_compile: whether the step loop runs under XLA.
  name: for reports.  compact: the delta takes compact pairs, not a dense
  neighbor list (graph mode only).  implicit: the step is solved and may fail
  to converge.  float64_inputs: the delta takes the float64 state.
  """
  delta: Callable
  dt_fs: float
  cutoff: float
  mass: float
  lj: potentials.LennardJones
  jit_compile: bool
  name: str
  compact: bool = False
  implicit: bool = False
  float64_inputs: bool = False


def num_atoms(positions):
  """N as a Python int when the shape is static, else a scalar tensor."""
  n = positions.shape[0]
  return n if n is not None else tf.shape(positions)[0]


def model_delta(model, mode=DEFAULT_MODE, precision="float32"):
  """delta(q, p, box, neighbors, capacity) of an in-process model (graph + forward).

  precision: 'float32' or 'bfloat16' for the network's matmuls (mlp.precision).
  """
  if mode not in MODES:
    raise errors.InputError(f"mode must be one of {MODES}, got {mode!r}")
  if precision not in mlp.PRECISIONS:
    raise errors.InputError(f"precision must be one of {sorted(mlp.PRECISIONS)}, got "
                            f"{precision!r}")
  cutoff = model.config.cutoff_angstrom
  dtype = mlp.PRECISIONS[precision]

  def padded(q, p, box, nl, capacity):
    graph = graph_lib.from_neighbors(q, box, nl, cutoff, capacity.max_edges(num_atoms(q)))
    with mlp.precision(dtype):
      dq, dp = models.forward(model, q, p, box, graph, segment_ops)
    return Delta(dq, dp, graph.overflow)

  def compact(q, p, box, pairs, capacity):
    del capacity
    with mlp.precision(dtype):
      dq, dp = models.forward(model, q, p, box, graph_lib.from_pairs(*pairs), compact_ops)
    return Delta(dq, dp, tf.constant(False))

  return compact if mode == "graph" else padded


def model_propagator(model, name=None, mode=DEFAULT_MODE, precision="float32", solver=None):
  """An in-process model on the TF-native path, in execution mode `mode` (MODES)
  with its matmuls in `precision` (the symplectic family: symplectic_propagator
  with `solver`, default symplectic.Solver())."""
  c = model.config
  if c.model == symplectic.FAMILY:
    if mode != "graph":
      raise errors.InputError(f"{symplectic.FAMILY} runs in graph mode only (its solve "
                              f"searches compact pairs), got mode {mode!r}")
    return symplectic_propagator(model, solver or symplectic.Solver(), name, precision)
  if mode == "xla" and not models.runs_under_xla(c):
    raise errors.InputError(f"{c.name} searches pairs in its step (baseline {c.baseline!r}): "
                            f"it runs in graph mode, not xla")
  name = name or c.name + ("" if precision == "float32" else f"+{precision}")
  return Propagator(model_delta(model, mode, precision), float(c.dt_fs),
                    float(c.cutoff_angstrom), float(c.mass_amu), c.lj(), mode == "xla", name,
                    mode == "graph")


def symplectic_propagator(model, solver=symplectic.Solver(), name=None, precision="float32"):
  """The generating-function step of a models.symplectic model: each step
  solves its implicit equations (symplectic.solve) on the float64 state, in
  plain graph mode (its pair searches are compact); iterations and convergence
  go to the step loop, which stops (monitored) or raises on a failed solve."""
  if precision != "float32":
    raise errors.InputError(f"{symplectic.FAMILY} runs its network in float32 only, got "
                            f"precision {precision!r}")
  c = model.config
  # One traced function for every call site: a SavedModel's four signatures
  # (and a step loop's chunk paths) then share one copy of the solve's graph
  # instead of inlining seven (18 MB and 98k nodes for a 256-atom export).
  spec = tf.TensorSpec([None, 3], tf.float64)
  solve = tf.function(lambda q, p, box: symplectic.solve(model, q, p, box, solver),
                      input_signature=[spec, spec, tf.TensorSpec([3], tf.float64)])

  def delta(q, p, box, pairs, capacity):
    del pairs, capacity                   # the solve searches its own pairs
    out = solve(q, p, tf.cast(box, tf.float64))
    return Delta(out.positions - q, out.momenta - p, tf.constant(False), out.iterations,
                 out.converged)

  return Propagator(delta, float(c.dt_fs), float(c.cutoff_angstrom), float(c.mass_amu), c.lj(),
                    False, name or c.name, compact=True, implicit=True, float64_inputs=True)


def savedmodel_propagator(loaded, signature="serving_default"):
  """An exported SavedModel (models.io.Loaded); graph mode, not XLA."""
  fn = loaded.savedmodel.signatures[signature]
  keep_alive = loaded.savedmodel   # the signature needs its variables alive

  def delta(q, p, box, nl, capacity):
    del nl, capacity
    assert keep_alive is not None
    out = fn(positions=q, momenta=p, box=box)  # overflow raises inside the SavedModel
    return Delta(out["positions"] - q, out["momenta"] - p, tf.constant(False))

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
    return Delta(q1 - q, p1 - p, nl1.overflow)

  return Propagator(delta, float(dt_fs), float(lj.cutoff), float(mass), lj, True,
                    f"verlet:{dt_fs:g}fs")


def for_loaded(loaded, mode=DEFAULT_MODE, precision="float32", solver=None):
  """The propagator of a models.io.Loaded model (`mode`, `precision`, `solver`:
  in-process models)."""
  if loaded.savedmodel is not None:
    return savedmodel_propagator(loaded)
  return model_propagator(loaded.model, mode=mode, precision=precision, solver=solver)


def from_path(path, tailor="none", tailor_lr=TAILOR_LR, mode=DEFAULT_MODE,
              precision="float32", solver=None):
  """The propagator of a training run, pretrained directory or SavedModel.

  tailor: 'none', or 'energy' / 'temperature' for Noether tailoring at
  prediction time (needs the checkpoint, not a SavedModel).
  mode, precision: execution mode (MODES) and matmul precision of an
  in-process model.  solver: symplectic.Solver of a symplectic model.
  """
  if tailor == "none":
    return for_loaded(model_io.load(path), mode, precision, solver)
  if tailor not in ("energy", "temperature"):
    raise errors.InputError(f"prediction-time tailoring supports energy or temperature, "
                            f"got {tailor!r}")
  if model_io.is_savedmodel(model_io.latest_version(path)):
    raise errors.InputError("prediction-time tailoring needs the checkpoint, not a "
                            "SavedModel: pass the training or pretrained directory")
  name = model_io.read_config(path).name
  loaded = model_io.load(path, tailor=tailor, tailor_lr=tailor_lr)
  return model_propagator(loaded.model, f"{name}+tailor_{tailor}", mode, precision)
