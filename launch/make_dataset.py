"""Builds a training dataset from your own LAMMPS dumps (or extended XYZ files).

  python launch/make_dataset.py --dumps=run1.dump,run2.dump,run3.dump \
      --timestep_fs=1 --dts=16,32,64,128 --mass_amu=83.798 \
      --lj_epsilon=0.3254 --lj_sigma=3.627 --cutoff=7.4 --out_dir=data/krypton

One file = one trajectory of one species at fixed volume, with velocities
(`dump custom ... id type x y z vx vy vz`, or xu yu zu, or x y z ix iy iz;
extended XYZ with pos and vel or momenta). The dataset has the layout of
`launch/generate_data.py`, so `train.py --data_dir=...`, `evaluate.py`,
`rollout.py` and export work on it; its manifest records mass, potential,
units and the source files with their SHA-256.
"""

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from mdnet_tf import errors  # noqa: E402
from mdnet_tf import potentials  # noqa: E402
from mdnet_tf.data import ingest  # noqa: E402

_DUMPS = flags.DEFINE_list("dumps", None, "Trajectory files (LAMMPS text dumps or .xyz/.extxyz), "
                           "one trajectory each.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "New dataset directory.")
_TIMESTEP = flags.DEFINE_float("timestep_fs", 1.0, "fs per dump timestep (LAMMPS `timestep`).")
_DTS = flags.DEFINE_list("dts", ["16", "32", "64", "128"], "Δt of the pairs, fs (multiples "
                         "of the frame spacing).")
_MASS = flags.DEFINE_float("mass_amu", None, "Atom mass, g/mol.")
_EPSILON = flags.DEFINE_float("lj_epsilon", None, "LJ ε of the simulation, kcal/mol.")
_SIGMA = flags.DEFINE_float("lj_sigma", None, "LJ σ of the simulation, Å.")
_CUTOFF = flags.DEFINE_float("cutoff", None, "LJ cutoff of the simulation, Å (also the "
                             "model's graph radius).")
_SHIFT = flags.DEFINE_bool("lj_shift", False, "The simulation used `pair_modify shift yes`.")
_SPLIT = flags.DEFINE_list("split", None, "Explicit split per file (train/test/validation), "
                           "in the order of --dumps.")
_FRACTIONS = flags.DEFINE_list("split_fractions", ["0.7", "0.15", "0.15"],
                               "train,test,validation fractions of the files (without --split).")
_FRAMES = flags.DEFINE_string("frames_per_trajectory", "all", "Pair starts per trajectory: "
                              "'all' frames, or a number sampled with --seed (paper: 10).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split and the frame sample.")
_REFERENCE = flags.DEFINE_string("reference_dump", None, "Optional long trajectory: the "
                                 "RDF/MSD reference and roll-out start of figure2.py.")

flags.mark_flags_as_required(["dumps", "out_dir", "mass_amu", "lj_epsilon", "lj_sigma",
                              "cutoff"])


def main(argv):
  del argv
  frames = None if _FRAMES.value == "all" else int(_FRAMES.value)
  lj = potentials.LennardJones(_EPSILON.value, _SIGMA.value, _CUTOFF.value, _SHIFT.value)
  try:
    manifest = ingest.make_dataset(
        _DUMPS.value, _OUT_DIR.value, timestep_fs=_TIMESTEP.value,
        dts_fs=[int(d) for d in _DTS.value], mass_amu=_MASS.value, lj=lj,
        splits=_SPLIT.value, split_fractions=[float(f) for f in _FRACTIONS.value],
        frames_per_trajectory=frames, seed=_SEED.value, reference=_REFERENCE.value,
        progress=print)
  except errors.MDNetError as e:
    raise SystemExit(f"make_dataset: {e}") from None
  preset = manifest["preset"]
  print(f"dataset: {_OUT_DIR.value}: {manifest['num_atoms']} atoms of {manifest['mass_amu']} "
        f"g/mol, LJ ε {lj.epsilon} kcal/mol, σ {lj.sigma} Å, cutoff {lj.cutoff} Å; frames "
        f"every {preset['dump_every_fs']:g} fs, T ≈ {preset['temperature']:.1f} K")
  for split, entry in manifest["pairs"].items():
    print(f"  {split}: {len(manifest['split'][split])} trajectories, "
          f"{entry['pairs_per_dt']} pairs per Δt {preset['dts_fs']} fs")


if __name__ == "__main__":
  app.run(main)
