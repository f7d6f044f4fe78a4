"""One-step errors (the paper's Table 1) for Verlet and trained models.

RMSEs are over all atoms and Cartesian components of a split: positions in Å
(computed on displacements Δq, exact in float64 before any float32 cast) and
velocities in Å/fs.
"""

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import io_utils
from mdnet_tf import training
from mdnet_tf import units
from mdnet_tf import verlet
from mdnet_tf import models
from mdnet_tf.data import dataset
from mdnet_tf.data import dump
from mdnet_tf.models import mdnet

# Paper Table 1: (position RMSE Å, velocity RMSE Å/fs); None where the paper is blank.
PAPER_TABLE1 = {
    "Verlet": {16: (8.44e-5, 8.42e-7), 32: (6.68e-4, 6.58e-6), 64: (5.24e-3, 5.74e-5),
               128: (3.88e-2, 1.75e-3)},
    "EGNN": {16: (2.51e-4, 3.13e-5), 32: None, 64: None, 128: (1.34e-2, 1.86e-4)},
    "MDNet": {16: (1.80e-5, 2.32e-6), 32: None, 64: (3.05e-4, 1.22e-5),
              128: (2.29e-3, 5.66e-5)},
}


def verlet_rmse(pairs, mass=units.ARGON_MASS):
  """RMSE of one velocity-Verlet step of pairs.dt_fs (float64) against the targets."""
  sim = verlet.VerletSimulator(pairs.dt_fs, mass=mass, dtype=tf.float64)
  sq_q = sq_v = 0.0
  for k in range(len(pairs)):
    out = sim.run(pairs.positions[k], pairs.momenta[k], pairs.box[k], 1)
    sq_q += np.mean((out.positions[-1] - pairs.next_positions[k]) ** 2)
    sq_v += np.mean(((out.momenta[-1] - pairs.next_momenta[k]) / mass) ** 2)
  return math.sqrt(sq_q / len(pairs)), math.sqrt(sq_v / len(pairs))


def restore_model(workdir, which="best", **overrides):
  """An MDNet with the weights of `workdir`'s best (or latest) checkpoint.

  overrides: config fields to change for prediction, e.g. tailor="energy",
  tailor_lr=1e-4 to tailor a model at prediction time only.
  """
  config_path = os.path.join(workdir, "model_config.json")
  if not os.path.exists(config_path):
    raise errors.InputError(f"{workdir} has no model_config.json: not a training "
                            f"run or pretrained model directory")
  config = mdnet.MDNetConfig.from_json(dataset.read_json(config_path))
  if overrides:
    config = dataclasses.replace(config, **overrides)
  model = models.build(config)
  order = ["best", "checkpoints"] if which == "best" else ["checkpoints", "best"]
  for sub in order:
    path = tf.train.latest_checkpoint(os.path.join(workdir, sub))
    if path:
      tf.train.Checkpoint(model=model).restore(path).expect_partial()
      return model, path
  raise errors.InputError(f"{workdir} has no checkpoint under best/ or checkpoints/")


def model_rmse(model, pairs):
  """RMSE of a trained model (TF-native message passing, XLA) on FramePairs."""
  model.config.check_dt(pairs.dt_fs)
  data = training.prepare(pairs, model.config.cutoff_angstrom)
  from mdnet_tf.models import segment_ops  # pylint: disable=import-outside-toplevel
  predict = tf.function(lambda q, p, b, g: models.forward(model, q, p, b, g, segment_ops),
                        jit_compile=True)
  metrics = training.evaluate(predict, data, model.config)
  return metrics["rmse_positions"], metrics["rmse_velocities"]


def pairs_from_dump(paths, dt_fs, timestep_fs=1.0, mass=units.ARGON_MASS):
  """FramePairs (t, t + dt) from LAMMPS dumps (real units).

  `paths` is one dump or a list (e.g. a pair of files, the state at t and the
  state at t + dt); frames are matched by timestep × timestep_fs.
  """
  paths = [paths] if isinstance(paths, str) else list(paths)
  frames = [f for path in paths for f in dump.read_dump(path)]
  path = ", ".join(paths)
  if any(f.velocities is None for f in frames):
    raise errors.DumpFormatError(f"{path}: velocities (vx vy vz) are needed")
  by_time = {round(f.timestep * timestep_fs, 6): f for f in frames}
  starts = [t for t in sorted(by_time) if round(t + dt_fs, 6) in by_time]
  if not starts:
    raise errors.InputError(f"{path} has no two frames {dt_fs} fs apart "
                            f"(timestep {timestep_fs} fs)")
  a = [by_time[t] for t in starts]
  b = [by_time[round(t + dt_fs, 6)] for t in starts]
  return dataset.FramePairs(
      int(dt_fs), np.stack([f.positions for f in a]),
      np.stack([f.velocities * mass for f in a]), np.stack([f.positions for f in b]),
      np.stack([f.velocities * mass for f in b]), np.stack([f.box for f in a]),
      np.zeros(len(a), np.int64), np.array(starts), np.zeros(len(a), bool))


def _fmt(cell):
  return "—" if cell is None else f"{cell[0]:.2e} / {cell[1]:.2e}"


def write_table1(results, out_dir, source):
  """results: {method: {dt: (pos, vel) or None}} -> table1.md and table1.json."""
  dts = sorted({dt for r in results.values() for dt in r})
  methods = list(results)
  lines = [f"# Table 1: one-step RMSE, positions Å / velocities Å/fs ({source})", "",
           "| Δt [fs] | " + " | ".join(f"{m} (ours)" for m in methods)
           + " | " + " | ".join(f"{m} (paper)" for m in PAPER_TABLE1) + " |",
           "|---" * (1 + len(methods) + len(PAPER_TABLE1)) + "|"]
  for dt in dts:
    ours = [_fmt(results[m].get(dt)) for m in methods]
    paper = [_fmt(PAPER_TABLE1[m].get(dt)) for m in PAPER_TABLE1]
    lines.append(f"| {dt} | " + " | ".join(ours) + " | " + " | ".join(paper) + " |")
  io_utils.write_text(os.path.join(out_dir, "table1.md"), "\n".join(lines) + "\n")
  io_utils.write_json(os.path.join(out_dir, "table1.json"), {
      "source": source, "units": {"positions": "angstrom", "velocities": "angstrom/fs"},
      "ours": {m: {str(dt): v for dt, v in r.items()} for m, r in results.items()},
      "paper": {m: {str(dt): v for dt, v in r.items()} for m, r in PAPER_TABLE1.items()}})
  return "\n".join(lines)
