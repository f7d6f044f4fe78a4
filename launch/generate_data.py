"""Generates LAMMPS ground-truth data following the paper's protocol.

  python launch/generate_data.py --preset=small --out_dir=data/small

Presets: paper (4000 atoms, exactly the paper), small (default), smoke (seconds).
Re-running with the same flags resumes an interrupted generation.
"""

import os

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from mdnet_tf.data import generate  # noqa: E402
from mdnet_tf.data import presets  # noqa: E402

_PRESET = flags.DEFINE_enum("preset", "small", sorted(presets.PRESETS), "Data preset.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Output directory (default data/<preset>).")
_SEED = flags.DEFINE_integer("seed", 0, "Master seed; per-trajectory seeds derive from it.")
_WORKERS = flags.DEFINE_integer("workers", None, "Parallel LAMMPS processes (default: cores).")


def main(argv):
  del argv
  out_dir = _OUT_DIR.value or os.path.join("data", _PRESET.value)
  manifest = generate.generate(_PRESET.value, out_dir, _SEED.value, _WORKERS.value)
  boxes = [t["box"][0] for t in manifest["trajectories"]]
  temps = [t["thermo"]["temp"] for t in manifest["trajectories"]]
  print(f"dataset: {out_dir} (preset {_PRESET.value}, seed {_SEED.value}, "
        f"LAMMPS {manifest['lammps_version']})")
  print(f"  {manifest['num_atoms']} atoms; box edge {min(boxes):.3f}–{max(boxes):.3f} Å; "
        f"final T {min(temps):.1f}–{max(temps):.1f} K")
  for split, entry in manifest["pairs"].items():
    print(f"  {split}: {len(manifest['split'][split])} trajectories, "
          f"{entry['pairs_per_dt']} pairs per Δt {manifest['preset']['dts_fs']} fs")
  print(f"  generation time this run: {manifest['generation_seconds_this_run']:.1f} s")


if __name__ == "__main__":
  app.run(main)
