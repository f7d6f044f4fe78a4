"""One-step errors of Verlet and trained models: the paper's Table 1.

  python launch/evaluate.py --data_dir=data/small --models=pretrained
  python launch/evaluate.py --dump=my_run.dump --dt=16 --models=runs   # your own LAMMPS run
  python launch/evaluate.py --dump=t0.dump,t16.dump --dt=16             # a pair of dumps

Every model under --models (training workdirs, pretrained model directories or
SavedModels: mdnet, egnn, simple, tailored variants) is found by reading its
config; missing Δt show as "—". The Verlet column uses the dataset's mass and
potential; with --dump, the models' own (from their configs), or --mass_amu,
--lj_epsilon, --lj_sigma, --cutoff when given.
Writes <out_dir>/table1.md and table1.json.
"""


from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf import paper  # noqa: E402
from mdnet_tf import potentials  # noqa: E402
from mdnet_tf import reporting  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.models import io as model_io  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", "data/small", "Dataset directory.")
_SPLIT = flags.DEFINE_string("split", "test", "Split to evaluate.")
_DUMP = flags.DEFINE_list("dump", None, "Evaluate on frame pairs of these LAMMPS dumps instead "
                          "(one trajectory dump, or a pair: state at t, state at t + Δt).")
_TIMESTEP = flags.DEFINE_float("timestep_fs", 1.0, "Time step of --dump's timestep counter, fs.")
_MASS = flags.DEFINE_float("mass_amu", None, "--dump: atom mass, g/mol (default: the models').")
_EPSILON = flags.DEFINE_float("lj_epsilon", None, "--dump: LJ ε, kcal/mol (default: the models').")
_SIGMA = flags.DEFINE_float("lj_sigma", None, "--dump: LJ σ, Å (default: the models').")
_CUTOFF = flags.DEFINE_float("cutoff", None, "--dump: LJ cutoff, Å (default: the models').")
_DTS = flags.DEFINE_list("dt", ["16", "32", "64", "128"], "Δt values, fs.")
_MODELS = flags.DEFINE_string("models", "pretrained", "Directory holding the models.")
_PRECISION = flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                               "Matmul precision of the models (Verlet is float64).")
_OUT_DIR = flags.DEFINE_string("out_dir", "results", "Where table1.md/json go.")


def _dump_physics():
  """(mass, LJ) for --dump: the flags where given, else the models' configs."""
  found = set()
  for family, tailor in model_io.families(_MODELS.value):
    for path in model_io.discover(_MODELS.value, family, tailor).values():
      c = model_io.read_config(path)
      found.add((c.mass_amu, c.lj_epsilon, c.lj_sigma, c.cutoff_angstrom))
  flags_given = (_MASS.value, _EPSILON.value, _SIGMA.value, _CUTOFF.value)
  if len(found) > 1 and None in flags_given:
    raise app.UsageError(f"the models under {_MODELS.value} disagree on mass, ε, σ, cutoff "
                         f"({sorted(found)}); pass --mass_amu, --lj_epsilon, --lj_sigma, "
                         f"--cutoff")
  if not found and None in flags_given:
    raise app.UsageError("no model found to take the species from: pass --mass_amu, "
                         "--lj_epsilon, --lj_sigma and --cutoff for the Verlet baseline")
  models = next(iter(found)) if found else flags_given
  mass, eps, sigma, cutoff = (f if f is not None else m for f, m in zip(flags_given, models))
  if found and (mass, eps, sigma, cutoff) != models:
    print(f"warning: --dump physics (mass, ε, σ, cutoff) = {(mass, eps, sigma, cutoff)} "
          f"differs from the models' {models}")
  return mass, potentials.LennardJones(eps, sigma, cutoff)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if _DUMP.value:
    mass, lj = _dump_physics()
    source = f"dump {', '.join(_DUMP.value)}"
  else:
    manifest = dataset.load_manifest(_DATA_DIR.value)
    mass = manifest["mass_amu"]
    lj = potentials.LennardJones(**manifest["potential"])
    source = f"{_DATA_DIR.value}, {_SPLIT.value} split"
  if _PRECISION.value != "float32":
    source += f", models in {_PRECISION.value}"
  order = ["egnn", "simple", "mdnet"]
  kinds = sorted(model_io.families(_MODELS.value),
                 key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k))
  labels = {kind: paper.family_label(*kind) for kind in kinds}
  results = {"Verlet": {}, **{labels[k]: {} for k in kinds}}
  for dt in (int(x) for x in _DTS.value):
    if _DUMP.value:
      pairs = dataset.pairs_from_dump(_DUMP.value, dt, mass, _TIMESTEP.value)
    else:
      pairs = dataset.load_pairs(_DATA_DIR.value, _SPLIT.value, dt)
    results["Verlet"][dt] = evaluation.verlet_rmse(pairs, mass, lj)
    for (family, tailor), label in labels.items():
      path = model_io.discover(_MODELS.value, family, tailor).get(float(dt))
      if path is None:
        results[label][dt] = None
        print(f"Δt {dt} fs: {len(pairs)} pairs; no {label} model in {_MODELS.value}")
        continue
      if model_io.is_savedmodel(model_io.latest_version(path)):
        results[label][dt] = None
        print(f"Δt {dt} fs: {path} is a SavedModel; Table 1 evaluates checkpoints")
        continue
      model, checkpoint = model_io.restore(path)
      results[label][dt] = evaluation.model_rmse(model, pairs, _PRECISION.value)
      print(f"Δt {dt} fs: {len(pairs)} pairs; {label} from {checkpoint}")
  paper_system = paper.is_paper_system(mass, lj.epsilon, lj.sigma, lj.cutoff)
  if not paper_system:
    source += f"; mass {mass:g} g/mol, LJ ε {lj.epsilon:g} kcal/mol, σ {lj.sigma:g} Å"
  print(reporting.write_table1(results, _OUT_DIR.value, source, paper_columns=paper_system))


if __name__ == "__main__":
  app.run(main)
