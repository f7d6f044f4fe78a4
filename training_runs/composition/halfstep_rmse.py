"""Solved one-step RMSE of a composition model's half step A on the validation
pairs Δt/2 apart, next to a midpoint model of Δt/2 on the same pairs.

  python training_runs/composition/halfstep_rmse.py \
      training_runs/symplectic_dt128_composition pretrained/mdnet_symplectic_dt64
"""
import math
import sys

from mdnet_tf import quiet

quiet.install()   # before TensorFlow: its start-up notices

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.models import io  # noqa: E402
from mdnet_tf.models import symplectic  # noqa: E402


def main(composition_dir, midpoint_dir, data_dir="data/small"):
  comp, _ = io.restore(composition_dir)
  mid, _ = io.restore(midpoint_dir)
  pairs = dataset.load_pairs(data_dir, "validation", int(comp.config.dt_fs // 2))
  mid.config.check_dt(pairs.dt_fs)
  steps = {"composition, half step A": tf.function(
               lambda q, p, b: symplectic.first_half(comp, q, p, b)),
           f"midpoint {mid.config.dt_fs:g} fs": tf.function(
               lambda q, p, b: symplectic.solve(mid, q, p, b))}
  print(f"{len(pairs)} validation pairs {pairs.dt_fs:g} fs apart from {data_dir}")
  for name, step in steps.items():
    sq = sv = 0.0
    for k in range(len(pairs)):
      f64 = lambda x: tf.constant(x, tf.float64)
      out = step(f64(pairs.positions[k]), f64(pairs.momenta[k]), f64(pairs.box[k]))
      sq += np.mean((out.positions.numpy() - pairs.next_positions[k]) ** 2)
      sv += np.mean(((out.momenta.numpy() - pairs.next_momenta[k]) / comp.config.mass_amu) ** 2)
    print(f"{name}: {math.sqrt(sq / len(pairs)):.3e} Å, {math.sqrt(sv / len(pairs)):.3e} Å/fs")


if __name__ == "__main__":
  main(*sys.argv[1:])
