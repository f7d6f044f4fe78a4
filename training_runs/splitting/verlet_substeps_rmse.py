"""One-step RMSE of the splitting's baseline alone (δS = 0: velocity Verlet over
Δt in substeps, truncated LJ force as the models use) on the test split, next to
the trained splitting models: what the learned map C adds to its Verlet
substeps; and the same substeps with the switched LJ force of the other forms
(what a switched baseline would leave the network to learn).

  python training_runs/splitting/verlet_substeps_rmse.py data/small 128 \
      training_runs/symplectic_dt128_splitting32 training_runs/symplectic_dt128_splitting16
  # → training_runs/splitting/verlet_substeps_rmse.txt
"""

import dataclasses
import sys

from mdnet_tf import quiet

quiet.install()

from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.models import io as model_io  # noqa: E402
from mdnet_tf.models import symplectic  # noqa: E402


def main(data_dir, dt, *model_dirs):
  pairs = dataset.load_pairs(data_dir, "test", int(dt))
  lines = [f"{data_dir} test split, {len(pairs)} pairs of {dt} fs; one-step RMSE "
           f"positions Å / velocities Å/fs"]
  for path in model_dirs:
    model, checkpoint = model_io.restore(path, "best")
    c = model.config
    baseline = symplectic.GeneratingFunction(c)        # last layers zero: δS = 0
    for name, m in ((f"Verlet in {c.splitting_substep_fs:g} fs substeps (δS = 0)", baseline),
                    (f"splitting model {checkpoint}", model)):
      q, v = evaluation.model_rmse(m, pairs)
      lines.append(f"{name}: {q:.3e} / {v:.3e}")
      print(lines[-1], flush=True)
  # Other substeps from the last model's config (δS = 0: only Δt, mass and LJ matter).
  for h, switch in ((64.0, 0.0), (8.0, 0.0), (16.0, symplectic.LJ_SWITCH)):
    config = dataclasses.replace(c, splitting_substep_fs=h, lj_switch_angstrom=switch)
    q, v = evaluation.model_rmse(symplectic.GeneratingFunction(config), pairs)
    force = f"LJ force switched over {switch:g} Å" if switch else "truncated LJ force"
    lines.append(f"Verlet in {h:g} fs substeps (δS = 0), {force}: {q:.3e} / {v:.3e}")
    print(lines[-1], flush=True)
  with open("training_runs/splitting/verlet_substeps_rmse.txt", "w") as f:
    f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
  main(*sys.argv[1:])
