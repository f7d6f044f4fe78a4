"""Exports a trained model as a TF Serving SavedModel: <export_base>/<version>/.

  python export/export_savedmodel.py --workdir=pretrained/mdnet_dt16 \
      --export_base=models/mdnet --version=1

The graph holds the neighbor search (capacity fixed here from a reference
frame × --capacity_multiplier; overflow is an InvalidArgument error), the model
and the update; signatures serving_default, rollout and rollout_nvt (see
mdnet_tf/signatures.py). assets.extra/ holds mdnet_metadata.json and
tf_serving_warmup_requests. The export is written to a temporary directory and
renamed into place, so a server never sees a half-written version.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
_MULTIPLIER = flags.DEFINE_float("capacity_multiplier", capacity.HEADROOM,
                                 "Neighbor/cell capacity head-room over the reference frame "
                                 f"(graph edges: at most × {capacity.EDGE_HEADROOM}).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  path = exporting.export(_WORKDIR.value, _BASE.value, _VERSION.value, _DATA_DIR.value,
                          _MULTIPLIER.value)
  print(f"exported {path}: signatures serving_default, rollout, rollout_nvt; "
        f"metadata in {path}/assets.extra/mdnet_metadata.json")


if __name__ == "__main__":
  app.run(main)
