"""Compares the TensorFlow velocity-Verlet baseline with LAMMPS on a dataset.

  python launch/compare_verlet.py --data_dir=data/small

1. From the first frame of a test trajectory, runs TF Verlet (float32, XLA) and
   LAMMPS for --steps steps of 1 fs and prints position/velocity differences and
   total energies side by side.
2. Runs one Verlet step of each large Δt on every test pair and prints the
   one-step RMSE against LAMMPS (1 fs steps): the "Verlet" column of Table 1.
"""

import os
import time

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # per-Δt simulators retrace by design

from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf import paper  # noqa: E402
from mdnet_tf import potentials  # noqa: E402
from mdnet_tf import verlet  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.data import dump  # noqa: E402
from mdnet_tf.data import lammps_driver  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", "data/small", "Dataset directory.")
_STEPS = flags.DEFINE_integer("steps", 256, "1 fs steps of the side-by-side run.")
_EVERY = flags.DEFINE_integer("record_every", 32, "Steps between printed rows.")
_SPLIT = flags.DEFINE_string("split", "test", "Split for the one-step errors.")

def side_by_side(frame, steps, every, mass, lj):
  """TF Verlet vs LAMMPS from one frame; prints a table, returns max |Δq|."""
  start = time.time()
  ref = lammps_driver.run_from_state(frame.positions, frame.velocities, frame.box,
                                     1.0, steps, every, lj=lj, mass=mass)
  lammps_s = time.time() - start
  sim = verlet.VerletSimulator(1.0, mass=mass, lj=lj, dtype=tf.float32)
  sim.run(frame.positions, frame.velocities * mass, frame.box, every, every)  # compile
  start = time.time()
  ours = sim.run(frame.positions, frame.velocities * mass, frame.box, steps, every)
  tf_s = time.time() - start
  print(f"TF Verlet (float32, XLA) vs LAMMPS (float64), {len(frame.ids)} atoms, "
        f"1 fs steps:")
  print(f"{'t [fs]':>7} {'max|Δq| [Å]':>12} {'RMS Δv [Å/fs]':>14} "
        f"{'E_tot LAMMPS':>13} {'E_tot TF':>13} {'ΔE/|E|':>9}")
  for i, t in enumerate(ours.time_fs):
    dq = np.abs(ours.positions[i] - ref["positions"][i]).max()
    dv = np.sqrt(np.mean((ours.momenta[i] / mass - ref["velocities"][i]) ** 2))
    e_ref, e_tf = ref["etotal"][i], ours.total[i]
    print(f"{t:7.0f} {dq:12.2e} {dv:14.2e} {e_ref:13.5f} {e_tf:13.5f} "
          f"{abs(e_tf - e_ref) / abs(e_ref):9.1e}")
  print(f"wall time for {steps} steps: LAMMPS {lammps_s:.2f} s (incl. setup), "
        f"TF {tf_s:.2f} s ({1e3 * tf_s / steps:.2f} ms/step)")
  return float(np.abs(ours.positions[-1] - ref["positions"][-1]).max())


def one_step_errors(data_dir, split, dts, mass, lj):
  """RMSE of one Verlet step of Δt against LAMMPS, over all pairs of a split."""
  print(f"\nOne Verlet step of Δt vs LAMMPS (1 fs steps), {split} split "
        f"(paper Table 1, Verlet column, for comparison):")
  print(f"{'Δt [fs]':>7} {'pairs':>5} {'pos RMSE [Å]':>13} {'vel RMSE [Å/fs]':>16}"
        f" {'paper pos':>10} {'paper vel':>10}")
  for dt in dts:
    pairs = dataset.load_pairs(data_dir, split, dt)
    rmse_q, rmse_v = evaluation.verlet_rmse(pairs, mass, lj)
    theirs = paper.TABLE1["Verlet"].get(dt, (float("nan"),) * 2)
    print(f"{dt:7d} {len(pairs):5d} {rmse_q:13.2e} {rmse_v:16.2e} "
          f"{theirs[0]:10.2e} {theirs[1]:10.2e}")


def main(argv):
  del argv
  manifest = dataset.load_manifest(_DATA_DIR.value)
  first_test = manifest["split"][_SPLIT.value][0]
  record = next(t for t in manifest["trajectories"] if t["name"] == first_test)
  frame = dump.read_dump(os.path.join(_DATA_DIR.value, record["dump"]))[0]
  mass, lj = manifest["mass_amu"], potentials.LennardJones(**manifest["potential"])
  side_by_side(frame, _STEPS.value, _EVERY.value, mass, lj)
  one_step_errors(_DATA_DIR.value, _SPLIT.value, manifest["preset"]["dts_fs"], mass, lj)


if __name__ == "__main__":
  app.run(main)
