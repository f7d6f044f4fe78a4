"""Generates LAMMPS ground-truth data following the paper's protocol.

  python launch/generate_data.py --preset=small --out_dir=data/small

Presets: paper (4000 atoms, exactly the paper), small (default), smoke (seconds).
Re-running with the same flags resumes an interrupted generation. The species
and its potential default to the paper's argon; another LJ liquid:

  python launch/generate_data.py --preset=smoke --out_dir=data/krypton_lammps \
      --mass_amu=83.798 --lj_epsilon=0.3254 --lj_sigma=3.627 --cutoff=7.4 \
      --temperature=115 --density=0.0175
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
_MASS = flags.DEFINE_float("mass_amu", None, "Override: atom mass, g/mol (default argon).")
_EPSILON = flags.DEFINE_float("lj_epsilon", None, "Override: LJ ε, kcal/mol.")
_SIGMA = flags.DEFINE_float("lj_sigma", None, "Override: LJ σ, Å.")
_CUTOFF = flags.DEFINE_float("cutoff", None, "Override: LJ cutoff, Å.")
_TEMPERATURE = flags.DEFINE_float("temperature", None, "Override: NPT/NVT temperature, K.")
_DENSITY = flags.DEFINE_float("density", None, "Override: density of the random start, "
                              "atoms/Å³ (NPT then finds the liquid's own).")


def main(argv):
  del argv
  out_dir = _OUT_DIR.value or os.path.join("data", _PRESET.value)
  manifest = generate.generate(
      _PRESET.value, out_dir, _SEED.value, _WORKERS.value, mass_amu=_MASS.value,
      lj_epsilon=_EPSILON.value, lj_sigma=_SIGMA.value, cutoff=_CUTOFF.value,
      temperature=_TEMPERATURE.value, density=_DENSITY.value)
  boxes = [t["box"][0] for t in manifest["trajectories"]]
  temps = [t["thermo"]["temp"] for t in manifest["trajectories"]]
  print(f"dataset: {out_dir} (preset {_PRESET.value}, seed {_SEED.value}, "
        f"LAMMPS {manifest['lammps_version']})")
  lj = manifest["potential"]
  print(f"  {manifest['num_atoms']} atoms of {manifest['mass_amu']} g/mol; LJ ε {lj['epsilon']} "
        f"kcal/mol, σ {lj['sigma']} Å, cutoff {lj['cutoff']} Å")
  print(f"  box edge {min(boxes):.3f}–{max(boxes):.3f} Å; "
        f"final T {min(temps):.1f}–{max(temps):.1f} K")
  for split, entry in manifest["pairs"].items():
    print(f"  {split}: {len(manifest['split'][split])} trajectories, "
          f"{entry['pairs_per_dt']} pairs per Δt {manifest['preset']['dts_fs']} fs")
  print(f"  generation time this run: {manifest['generation_seconds_this_run']:.1f} s")


if __name__ == "__main__":
  app.run(main)
