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
  """RMSE of a trained model (compiled as training.predictor does) on FramePairs,
  its matmuls in `precision` ('float32' or 'bfloat16'); a symplectic model's
  steps are solved (symplectic.predict), as roll-outs do."""
  model.config.check_dt(pairs.dt_fs)
  if model.config.model == symplectic.FAMILY and precision != "float32":
    raise errors.InputError(f"{symplectic.FAMILY} runs in float32 only")
  data = training.prepare(pairs, model.config.cutoff_angstrom)
  predict = training.predictor(model, mlp.PRECISIONS[precision])
  metrics = training.evaluate(predict, data, model.config)
  if metrics.get("unconverged"):
    logging.warning("%s: %d of %d solves did not converge (their last iterates are scored)",
                    model.config.name, metrics["unconverged"], len(data))
  return metrics["rmse_positions"], metrics["rmse_velocities"]


# Bins of cos(p, p′), the cosine between an atom's momentum before and after the
# step: below 0 the step reverses the atom's motion (a collision completed
# within Δt), above 0.9 it barely bends it.
REVERSAL_BINS = (-1.0, -0.5, 0.0, 0.5, 0.9, 1.0)


def momentum_predictions(model, pairs, solved=False):
  """Predicted Δp [P, N, 3] g/mol·Å/fs of each pair's start state: MDNet's
  forward pass, or a symplectic model's flow at the true midpoints (what its
  training fits; solved=True: the solved step, what roll-outs use; a
  composition, whose training pairs are half steps, only solved)."""
  model.config.check_dt(pairs.dt_fs)
  if (model.config.model == symplectic.FAMILY and not solved
      and model.config.generating_function == symplectic.COMPOSITION):
    raise errors.InputError(f"{model.config.name} composes two half steps: its fitted flow "
                            f"needs the state Δt/2 in, which pairs Δt apart do not hold; "
                            f"score its solved step (--solved)")
  data = training.prepare(pairs, model.config.cutoff_angstrom)
  out = []
  for k in range(len(data)):
    q, p, box, graph, dq, dp = data.pair(k)
    if model.config.model != symplectic.FAMILY:
      dp_pred = models.forward(model, q, p, box, graph, segment_ops)[1]
    elif solved:
      dp_pred = symplectic.predict(model, q, p, box)[1]
    else:
      dp_pred = symplectic.teacher_forced(model, q, p, dq, dp, box)[1]
    out.append(dp_pred.numpy())
  return np.stack(out)


def momentum_error_anatomy(dp_predicted, pairs, bins=REVERSAL_BINS):
  """Where a one-step momentum error sits, binned by cos(p, p′) of each atom.

  dp_predicted: [P, N, 3] predicted Δp of pairs (FramePairs).
  Returns (RMS of all atoms' error norms |δΔp| g/mol·Å/fs, rows): one dict per
  bin [lo, hi) with the fraction of atoms, the RMS of their |δΔp| over the
  overall RMS, and the bin's share of the summed squared error (shares add to 1).
  """
  p0 = pairs.momenta.reshape(-1, 3).astype(np.float64)
  p1 = pairs.next_momenta.reshape(-1, 3).astype(np.float64)
  err = np.linalg.norm(dp_predicted.reshape(-1, 3) - (p1 - p0), axis=1)
  cos = np.clip(np.sum(p0 * p1, axis=1)
                / (np.linalg.norm(p0, axis=1) * np.linalg.norm(p1, axis=1)), -1.0, 1.0)
  total, rms = np.sum(err ** 2), np.sqrt(np.mean(err ** 2))
  rows = []
  for lo, hi in zip(bins[:-1], bins[1:]):
    sel = (cos >= lo) & ((cos < hi) if hi < bins[-1] else (cos <= hi))
    rows.append({"lo": lo, "hi": hi, "atoms": float(np.mean(sel)),
                 "rms_ratio": float(np.sqrt(np.mean(err[sel] ** 2)) / rms) if sel.any()
                 else float("nan"),
                 "mse_share": float(np.sum(err[sel] ** 2) / total)})
  return float(rms), rows
