"""Exports a trained model as a TF Serving SavedModel: <export_base>/<version>/.

  python export/export_savedmodel.py --workdir=pretrained/mdnet_dt16 \
      --export_base=models/mdnet --version=1

The graph holds the neighbor search, the model and the update: signatures
serving_default, rollout, rollout_rescaled and rollout_nvt (see
mdnet_tf/signatures.py), in plain graph execution by default (runs on the stock
TF Serving, which disables XLA) or with --xla as XLA programs (capacities fixed
from a reference frame × --capacity_multiplier; an overflow is an
InvalidArgument error). assets.extra/ holds mdnet_metadata.json and
tf_serving_warmup_requests. The export is written to a temporary directory and
renamed into place, so a server never sees a half-written version.
"""


from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import capacity  # noqa: E402
from mdnet_tf import exporting  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Training run or pretrained model dir.",
                               required=True)
_BASE = flags.DEFINE_string("export_base", "models/mdnet", "Model base path.")
_VERSION = flags.DEFINE_integer("version", 1, "Integer version directory.")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Dataset whose first test frame sizes the capacities "
                                "and the warm-up request (default: the run's dataset).")
_XLA = flags.DEFINE_bool("xla", False, "Compile each step loop as one XLA program. The "
                         "stock tensorflow_model_server disables XLA unless started with "
                         "--xla_cpu_compilation_enabled=true; the default export runs anywhere.")
_PRECISION = flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                               "Matmul precision of the network (bfloat16: ~1.2x faster on "
                               "AVX-512 BF16 CPUs, see README for its accuracy cost).")
_T_FACTOR = flags.DEFINE_float("temperature_factor", exporting.TEMPERATURE_FACTOR,
                               "Served roll-outs fail if T leaves [T0/f, T0*f].")
_MIN_SIGMA = flags.DEFINE_float("min_distance_sigma", exporting.MIN_DISTANCE_SIGMA,
                                "Served roll-outs fail if a pair comes closer than this "
                                "fraction of the model's LJ sigma.")
_MULTIPLIER = flags.DEFINE_float("capacity_multiplier", capacity.HEADROOM,
                                 "Neighbor/cell capacity head-room over the reference frame "
                                 f"(graph edges: at most × {capacity.EDGE_HEADROOM}).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  path = exporting.export(_WORKDIR.value, _BASE.value, _VERSION.value, _DATA_DIR.value,
                          _MULTIPLIER.value, "xla" if _XLA.value else "graph", _PRECISION.value,
                          _T_FACTOR.value, _MIN_SIGMA.value)
  print(f"exported {path} ({'XLA' if _XLA.value else 'graph mode, no XLA'}): signatures "
        f"serving_default, rollout, rollout_rescaled, rollout_nvt; metadata in "
        f"{path}/assets.extra/mdnet_metadata.json")


if __name__ == "__main__":
  app.run(main)
