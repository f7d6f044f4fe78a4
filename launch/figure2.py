"""Reproduces the paper's Figure 2 (RDF and MSD of long roll-outs vs LAMMPS)
and measures energy/temperature control and transfer to larger systems.

  python launch/figure2.py                       # small preset, all Δt, nve/rescale/nvt
  python launch/figure2.py --system=paper --data_dir=data/paper --variants=nve,rescale
  python launch/figure2.py --system=large --data_dir=data/large --dts=128

Roll-outs start from the first frame of the dataset's LAMMPS NVT reference
trajectory and run --time_fs (the paper: 40000 fs, then 8 RDF frames 128 fs
apart). They are cached and resumed under --runs_dir. The models are the ones
of --model's family found in --models_dir (Δt read from each model's config).
Results are merged into <out>.json (one entry per system) and <out>.md; the
trained system's plot is <out>.png, other systems get <out>_<system>.png.
"""

import os

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import errors  # noqa: E402
from mdnet_tf import io_utils  # noqa: E402
from mdnet_tf import plots  # noqa: E402
from mdnet_tf import reporting  # noqa: E402
from mdnet_tf import studies  # noqa: E402
from mdnet_tf.models import io as model_io  # noqa: E402

_SYSTEM = flags.DEFINE_string("system", "small", "Name of the system in the results.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Dataset with the LAMMPS roll-out "
                                "reference (default data/<system>).")
_MODELS = flags.DEFINE_string("models_dir", "pretrained", "Directory holding the models.")
_MODEL = flags.DEFINE_string("model", "mdnet", "Model family.")
_DTS = flags.DEFINE_list("dts", ["16", "32", "64", "128"], "Δt of the models, fs.")
_VARIANTS = flags.DEFINE_list("variants", ["nve", "rescale", "nvt"],
                              f"Roll-out variants: {sorted(studies.VARIANTS)}.")
_PRECISION = flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                               "Matmul precision of the models (bfloat16 runs are named "
                               "<model>+bfloat16 in the results).")
_TIME = flags.DEFINE_float("time_fs", 40960.0, "Simulated time of each roll-out, fs.")
_RUNS = flags.DEFINE_string("runs_dir", "runs/rollouts", "Roll-out cache.")
_OUT = flags.DEFINE_string("out", "results/figure2", "Results prefix (.json/.md/.png).")
_PLOT_AS = flags.DEFINE_string("plot_system", "small", "System drawn as <out>.png.")
_REPLACE = flags.DEFINE_bool("replace", False, "Drop these models' earlier results in "
                             "<out>.json (after republishing them) instead of keeping the "
                             "variants not run now.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  data_dir = _DATA_DIR.value or os.path.join("data", _SYSTEM.value)
  found = model_io.discover(_MODELS.value, _MODEL.value)
  wanted = [float(dt) for dt in _DTS.value]
  missing = [dt for dt in wanted if dt not in found]
  if missing:
    raise errors.InputError(f"no {_MODEL.value} model for Δt {missing} fs in {_MODELS.value} "
                            f"(found Δt {sorted(found)} fs)")
  suffix = "" if _PRECISION.value == "float32" else f"+{_PRECISION.value}"
  models = {model_io.read_config(found[dt]).name + suffix: found[dt] for dt in wanted}
  entry = studies.figure2(_SYSTEM.value, data_dir, models, _VARIANTS.value, _TIME.value,
                          _RUNS.value, precision=_PRECISION.value)
  result = studies.merge_json(_OUT.value + ".json", _SYSTEM.value, entry, _REPLACE.value)
  table = reporting.figure2_markdown(result, list(studies.VARIANTS))
  io_utils.write_text(_OUT.value + ".md", "# Figure 2 metrics (`python launch/figure2.py`)\n\n"
                      + table)
  png = (_OUT.value + ".png" if _SYSTEM.value == _PLOT_AS.value
         else f"{_OUT.value}_{_SYSTEM.value}.png")
  plots.figure2(result, _SYSTEM.value, png)
  print(table)
  print(f"wrote {_OUT.value}.json, {_OUT.value}.md, {png}")


if __name__ == "__main__":
  app.run(main)
