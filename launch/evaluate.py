"""One-step errors of Verlet and trained models: the paper's Table 1.

  python launch/evaluate.py --data_dir=data/small --models=pretrained
  python launch/evaluate.py --dump=my_run.dump --dt=16 --models=runs   # your own LAMMPS run
  python launch/evaluate.py --dump=t0.dump,t16.dump --dt=16             # a pair of dumps

Every model under --models (training workdirs, pretrained model directories or
SavedModels: mdnet, egnn, simple, tailored variants) is found by reading its
config; missing Δt show as "—". The Verlet column uses the dataset's mass and
potential (with --dump: --mass_amu, --lj_epsilon, --lj_sigma, --cutoff).
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
from mdnet_tf import units  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.models import io as model_io  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", "data/small", "Dataset directory.")
_SPLIT = flags.DEFINE_string("split", "test", "Split to evaluate.")
_DUMP = flags.DEFINE_list("dump", None, "Evaluate on frame pairs of these LAMMPS dumps instead "
                          "(one trajectory dump, or a pair: state at t, state at t + Δt).")
_TIMESTEP = flags.DEFINE_float("timestep_fs", 1.0, "Time step of --dump's timestep counter, fs.")
_MASS = flags.DEFINE_float("mass_amu", units.ARGON_MASS, "--dump: atom mass, g/mol.")
_EPSILON = flags.DEFINE_float("lj_epsilon", units.ARGON_EPSILON, "--dump: LJ ε, kcal/mol.")
_SIGMA = flags.DEFINE_float("lj_sigma", units.ARGON_SIGMA, "--dump: LJ σ, Å.")
_CUTOFF = flags.DEFINE_float("cutoff", units.ARGON_CUTOFF, "--dump: LJ cutoff, Å.")
_DTS = flags.DEFINE_list("dt", ["16", "32", "64", "128"], "Δt values, fs.")
_MODELS = flags.DEFINE_string("models", "pretrained", "Directory holding the models.")
_PRECISION = flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                               "Matmul precision of the models (Verlet is float64).")
_OUT_DIR = flags.DEFINE_string("out_dir", "results", "Where table1.md/json go.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if _DUMP.value:
    mass = _MASS.value
    lj = potentials.LennardJones(_EPSILON.value, _SIGMA.value, _CUTOFF.value)
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
  print(reporting.write_table1(results, _OUT_DIR.value, source))


if __name__ == "__main__":
  app.run(main)
