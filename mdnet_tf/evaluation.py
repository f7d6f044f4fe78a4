"""One-step errors (the paper's Table 1) of Verlet and trained models.

RMSEs are over all atoms and Cartesian components of a split: positions in Å
(computed on displacements Δq, exact in float64 before any float32 cast) and
velocities in Å/fs. The Verlet baseline uses the system's own mass and
Lennard-Jones potential (from the model config or the dataset manifest).
"""

import math

from absl import logging
import numpy as np
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import models
from mdnet_tf import training
from mdnet_tf import verlet
from mdnet_tf.models import mlp
from mdnet_tf.models import segment_ops
from mdnet_tf.models import symplectic


def verlet_rmse(pairs, mass, lj):
  """RMSE of one velocity-Verlet step of pairs.dt_fs (float64) against the targets.

  mass: g/mol.  lj: potentials.LennardJones of the system.
  """
  sim = verlet.VerletSimulator(pairs.dt_fs, mass=mass, lj=lj, dtype=tf.float64)
  sq_q = sq_v = 0.0
  for k in range(len(pairs)):
    out = sim.run(pairs.positions[k], pairs.momenta[k], pairs.box[k], 1)
    sq_q += np.mean((out.positions[-1] - pairs.next_positions[k]) ** 2)
    sq_v += np.mean(((out.momenta[-1] - pairs.next_momenta[k]) / mass) ** 2)
  return math.sqrt(sq_q / len(pairs)), math.sqrt(sq_v / len(pairs))


def model_rmse(model, pairs, precision="float32"):
  """RMSE of a trained model (TF-native message passing, XLA) on FramePairs,
  its matmuls in `precision` ('float32' or 'bfloat16'); a symplectic model's
  steps are solved (symplectic.predict), as roll-outs do."""
  model.config.check_dt(pairs.dt_fs)
  data = training.prepare(pairs, model.config.cutoff_angstrom)
  if model.config.model == symplectic.FAMILY:     # solved as in roll-outs (graph mode)
    if precision != "float32":
      raise errors.InputError(f"{symplectic.FAMILY} runs in float32 only")
    predict = tf.function(lambda q, p, b, g: symplectic.predict(model, q, p, b))
    metrics = training.evaluate(predict, data, model.config)
    if metrics["unconverged"]:
      logging.warning("%s: %d of %d solves did not converge (their last iterates are scored)",
                      model.config.name, metrics["unconverged"], len(data))
    return metrics["rmse_positions"], metrics["rmse_velocities"]

  def forward(q, p, b, g):
    with mlp.precision(mlp.PRECISIONS[precision]):
      return models.forward(model, q, p, b, g, segment_ops)

  predict = tf.function(forward, jit_compile=True)
  metrics = training.evaluate(predict, data, model.config)
  return metrics["rmse_positions"], metrics["rmse_velocities"]
