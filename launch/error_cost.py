"""Error against cost: velocity Verlet at Δt = 1 fs … beyond its stability
limit and MDNet at 16–128 fs, against wall time per simulated ps, all measured
here in one run on the same system (the small preset's 80 K liquid).

  python launch/error_cost.py                      # ~10 min
  python launch/error_cost.py --starts=1 --stability_ps=5   # quicker

Errors against LAMMPS at 1 fs (the ground truth) from --starts states of the
LAMMPS NVT reference trajectory:
  one-step — position RMSE after one step of Δt;
  roll-out — position RMSE after --horizon_fs (768 fs: a multiple of every Δt).
Stability — each Verlet Δt runs --stability_ps in NVE: "stable" if it neither
blows up (non-finite, T > 10⁴ K) nor drifts more than --drift_tol kcal/mol per
atom per ns. Mass and potential come from the dataset. Writes <out>.json,
<out>.md and <out>.png.
"""


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

_DATA = flags.DEFINE_string("data_dir", "data/small", "Dataset with the LAMMPS reference.")
_MODELS = flags.DEFINE_string("models_dir", "pretrained", "Directory holding the models.")
_MODEL = flags.DEFINE_string("model", "mdnet", "Model family.")
_VERLET_DTS = flags.DEFINE_list("verlet_dts", ["1", "2", "4", "8", "16", "32", "48", "64"],
                                "Verlet Δt, fs.")
_MDNET_DTS = flags.DEFINE_list("mdnet_dts", ["16", "32", "64", "128"], "Learned model Δt, fs.")
_STARTS = flags.DEFINE_integer("starts", 3, "Start states (frames 12.8 ps apart).")
_HORIZON = flags.DEFINE_float("horizon_fs", 768.0, "Roll-out error horizon, fs.")
_STAB_PS = flags.DEFINE_float("stability_ps", 20.0, "Verlet NVE stability run, ps.")
_DRIFT = flags.DEFINE_float("drift_tol", 1.0, "Stable if |drift| below, kcal/mol/atom/ns.")
_OUT = flags.DEFINE_string("out", "results/error_cost", "Results prefix.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  found = model_io.discover(_MODELS.value, _MODEL.value)
  wanted = [float(d) for d in _MDNET_DTS.value]
  missing = [dt for dt in wanted if dt not in found]
  if missing:
    raise errors.InputError(f"no {_MODEL.value} model for Δt {missing} fs in {_MODELS.value}")
  result = studies.error_cost(_DATA.value, {dt: found[dt] for dt in wanted},
                              [float(d) for d in _VERLET_DTS.value], _STARTS.value,
                              _HORIZON.value, _STAB_PS.value, _DRIFT.value)
  io_utils.write_json(_OUT.value + ".json", result)
  md = reporting.error_cost_markdown(result)
  io_utils.write_text(_OUT.value + ".md", md)
  plots.error_cost(result, _OUT.value + ".png")
  print(md)


if __name__ == "__main__":
  app.run(main)
