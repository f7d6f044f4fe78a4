"""One-step errors of Verlet and trained MDNet models: the paper's Table 1.

  python launch/evaluate.py --data_dir=data/small --models=pretrained
  python launch/evaluate.py --dump=my_run.dump --dt=16 --models=runs   # your own LAMMPS run
  python launch/evaluate.py --dump=t0.dump,t16.dump --dt=16             # a pair of dumps

Models are found as <models>/<name>_dt<Δt>/ (training workdirs or pretrained
model directories: mdnet, egnn, simple, mdnet_tailor_energy, ...); missing ones
show as "—". Writes <out_dir>/table1.md and table1.json.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", "data/small", "Dataset directory.")
_SPLIT = flags.DEFINE_string("split", "test", "Split to evaluate.")
_DUMP = flags.DEFINE_list("dump", None, "Evaluate on frame pairs of these LAMMPS dumps instead "
                          "(one trajectory dump, or a pair: state at t, state at t + Δt).")
_TIMESTEP = flags.DEFINE_float("timestep_fs", 1.0, "Time step of --dump's timestep counter, fs.")
_DTS = flags.DEFINE_list("dt", ["16", "32", "64", "128"], "Δt values, fs.")
_MODELS = flags.DEFINE_string("models", "pretrained", "Directory with mdnet_dt<Δt>/ models.")
_OUT_DIR = flags.DEFINE_string("out_dir", "results", "Where table1.md/json go.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  labels = {"egnn": "EGNN", "simple": "SIMPLE", "mdnet": "MDNet"}
  found = ({d.rsplit("_dt", 1)[0] for d in os.listdir(_MODELS.value) if "_dt" in d}
           if os.path.isdir(_MODELS.value) else set())
  prefixes = list(labels) + sorted(found - set(labels))
  names = {p: labels.get(p, p.replace("_tailor_", "+tailor:")) for p in prefixes}
  results = {"Verlet": {}, **{names[p]: {} for p in prefixes}}
  source = (f"dump {', '.join(_DUMP.value)}" if _DUMP.value
            else f"{_DATA_DIR.value}, {_SPLIT.value} split")
  for dt in (int(x) for x in _DTS.value):
    if _DUMP.value:
      pairs = evaluation.pairs_from_dump(_DUMP.value, dt, _TIMESTEP.value)
    else:
      pairs = dataset.load_pairs(_DATA_DIR.value, _SPLIT.value, dt)
    results["Verlet"][dt] = evaluation.verlet_rmse(pairs)
    for prefix, name in names.items():
      model_dir = os.path.join(_MODELS.value, f"{prefix}_dt{dt}")
      if os.path.exists(os.path.join(model_dir, "model_config.json")):
        model, path = evaluation.restore_model(model_dir)
        results[name][dt] = evaluation.model_rmse(model, pairs)
        print(f"Δt {dt} fs: {len(pairs)} pairs; {name} from {path}")
      else:
        results[name][dt] = None
        print(f"Δt {dt} fs: {len(pairs)} pairs; no {name} model at {model_dir}")
  print(evaluation.write_table1(results, _OUT_DIR.value, source))


if __name__ == "__main__":
  app.run(main)
