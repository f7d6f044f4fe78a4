"""How long each Δt model rolls out before a failure criterion trips, with and
without energy rescaling and thermostat (target: 1 ns at 80 K).

  python launch/stability.py --dts=64,128 --variants=nve,rescale,nvt --time_fs=1e6

Failure criteria (mdnet_tf/rollout.py): non-finite values, temperature outside
[T_ref / 3, 3 T_ref], two atoms closer than 2.5 Å. Each run is resumable; with
--max_minutes a run stops (checkpointed) after that much wall time and is
reported as "no failure within t" — re-run the command to extend it.
Writes <out>.json and <out>.md.
"""

import os

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import errors  # noqa: E402
from mdnet_tf import io_utils  # noqa: E402
from mdnet_tf import reporting  # noqa: E402
from mdnet_tf import studies  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.data import states  # noqa: E402
from mdnet_tf.models import io as model_io  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", "data/small", "Dataset (start state).")
_MODELS = flags.DEFINE_string("models_dir", "pretrained", "Directory holding the models.")
_MODEL = flags.DEFINE_string("model", "mdnet", "Model family.")
_DTS = flags.DEFINE_list("dts", ["16", "32", "64", "128"], "Δt of the models, fs.")
_VARIANTS = flags.DEFINE_list("variants", ["nve", "rescale", "nvt"], "Roll-out variants.")
_TIME = flags.DEFINE_float("time_fs", 1e6, "Target simulated time, fs (1 ns).")
_MAX_MIN = flags.DEFINE_float("max_minutes", None, "Wall-time budget per run (resumable).")
_FRAME = flags.DEFINE_float("frame_fs", 8192.0, "Frame interval, fs.")
_RUNS = flags.DEFINE_string("runs_dir", "runs/stability", "Run cache.")
_OUT = flags.DEFINE_string("out", "results/stability", "Results prefix (.json/.md).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  start = states.reference(_DATA_DIR.value).start
  found = model_io.discover(_MODELS.value, _MODEL.value)
  path = _OUT.value + ".json"
  results = dataset.read_json(path) if os.path.exists(path) else {}
  budget = None if _MAX_MIN.value is None else 60 * _MAX_MIN.value
  for dt in (float(d) for d in _DTS.value):
    if dt not in found:
      raise errors.InputError(f"no {_MODEL.value} model for Δt {dt:g} fs in {_MODELS.value}")
    name = model_io.read_config(found[dt]).name
    for variant in _VARIANTS.value:
      results.setdefault(name, {})[variant] = studies.stability(
          found[dt], start, variant, _TIME.value, os.path.join(_RUNS.value, f"{name}_{variant}"),
          _FRAME.value, budget)
      io_utils.write_json(path, results)
  md = reporting.stability_markdown(results)
  io_utils.write_text(_OUT.value + ".md", md)
  print(md)


if __name__ == "__main__":
  app.run(main)
