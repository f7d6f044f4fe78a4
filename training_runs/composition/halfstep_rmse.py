"""Solved one-step RMSE of a composition model's half step A on the validation
pairs Δt/2 apart, next to a midpoint model of Δt/2 on the same pairs.

  python training_runs/composition/halfstep_rmse.py \
      training_runs/symplectic_dt128_composition pretrained/mdnet_symplectic_dt64
"""
import sys

from mdnet_tf import quiet

quiet.install()   # before TensorFlow: its start-up notices

import tensorflow as tf  # noqa: E402

from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf import training  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.models import io  # noqa: E402
from mdnet_tf.models import symplectic  # noqa: E402


def main(composition_dir, midpoint_dir, data_dir="data/small"):
  comp, _ = io.restore(composition_dir)
  mid, _ = io.restore(midpoint_dir)
  pairs = dataset.load_pairs(data_dir, "validation", int(comp.config.dt_fs // 2))
  print(f"{len(pairs)} validation pairs {pairs.dt_fs:g} fs apart from {data_dir}")
  half = tf.function(lambda q, p, b, g: symplectic.predict(comp, q, p, b,
                                                            step=symplectic.first_half))
  metrics = training.evaluate(half, training.prepare(pairs, comp.config.cutoff_angstrom),
                              comp.config)
  rows = {"composition, half step A": (metrics["rmse_positions"], metrics["rmse_velocities"]),
          f"midpoint {mid.config.dt_fs:g} fs": evaluation.model_rmse(mid, pairs)}
  for name, (rmse_q, rmse_v) in rows.items():
    print(f"{name}: {rmse_q:.3e} Å, {rmse_v:.3e} Å/fs")


if __name__ == "__main__":
  main(*sys.argv[1:])
