"""Cost of solved steps side by side (the monitored step loop roll-outs run,
graph mode, float32) on the 4000-atom `paper` start state: two interleaved
rounds over the models, each the median of 3 timed loops of 10 steps after a
warm-up (benchmarking.ModelTimer.time_solved_steps).

  python training_runs/composition/cost_side_by_side.py \
      pretrained/mdnet_symplectic_dt128 training_runs/symplectic_dt128_composition \
      pretrained/mdnet_symplectic_dt64
"""
import sys

from mdnet_tf import quiet

quiet.install()   # before TensorFlow: its start-up notices

import tensorflow as tf  # noqa: E402

from mdnet_tf import benchmarking  # noqa: E402
from mdnet_tf.data import states  # noqa: E402
from mdnet_tf.models import io  # noqa: E402


def main(paths, data_dir="data/paper"):
  tf.get_logger().setLevel("ERROR")   # each timer traces its own graph: not a retracing bug
  q, p, box = states.load_start(data_dir)
  print(f"{len(q)} atoms from {data_dir}; {benchmarking.machine_description()}")
  for round_ in range(2):
    for path in paths:
      model, _ = io.restore(path)
      seconds, evaluations = benchmarking.ModelTimer(model, q, p, box).time_solved_steps(10, 3)
      print(f"round {round_}: {path} ({model.config.generating_function}, "
            f"{model.config.dt_fs:g} fs): {seconds:.3e} s per step, {evaluations:.1f} "
            f"evaluations per step, {1000 * seconds / model.config.dt_fs:.2f} s per simulated ps",
            flush=True)


if __name__ == "__main__":
  main(sys.argv[1:])
