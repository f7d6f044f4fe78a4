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

import json
import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import mdnet_tf  # noqa: E402
from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf import partition  # noqa: E402
from mdnet_tf import signatures  # noqa: E402
from mdnet_tf import units  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Training run or pretrained model dir.",
                               required=True)
_BASE = flags.DEFINE_string("export_base", "models/mdnet", "Model base path.")
_VERSION = flags.DEFINE_integer("version", 1, "Integer version directory.")
_DATA_DIR = flags.DEFINE_string("data_dir", None,
                                "Dataset whose first test frame sizes the capacities "
                                "and the warm-up request (default: the run's dataset).")
_MULTIPLIER = flags.DEFINE_float("capacity_multiplier", 1.5,
                                 "Neighbor/cell capacity head-room over the reference frame.")


def warmup_record(positions, momenta, box):
  """One serialized PredictionLog (serving_default) for assets.extra."""
  from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2  # noqa
  request = predict_pb2.PredictRequest(
      model_spec=model_pb2.ModelSpec(signature_name="serving_default"))
  for name, value in (("positions", positions), ("momenta", momenta), ("box", box)):
    request.inputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value, np.float32)))
  log = prediction_log_pb2.PredictionLog(
      predict_log=prediction_log_pb2.PredictLog(request=request))
  return log.SerializeToString()


def export(workdir, export_base, version, data_dir=None, multiplier=1.5):
  """Writes <export_base>/<version>/ and returns its path."""
  model, checkpoint = evaluation.restore_model(workdir)
  run_path = os.path.join(workdir, "run.json")
  run = dataset.read_json(run_path) if os.path.exists(run_path) else {}
  data_dir = data_dir or run.get("data_dir")
  pairs = dataset.load_pairs(data_dir, "test", int(model.config.dt_fs))
  q, p, box = (pairs.positions[0].astype(np.float32), pairs.momenta[0].astype(np.float32),
               pairs.box[0].astype(np.float32))
  spec, _ = partition.allocate(q, box, model.config.cutoff_angstrom,
                               capacity_multiplier=multiplier)
  module = signatures.StepModule(model, spec.max_neighbors, spec.cell_capacity)
  final = os.path.join(export_base, str(version))
  staging = os.path.join(export_base, f".{version}.tmp")
  shutil.rmtree(staging, ignore_errors=True)
  tf.saved_model.save(module, staging, signatures=module.signatures())
  extra = os.path.join(staging, "assets.extra")
  os.makedirs(extra)
  metadata = {
      "dt_fs": model.config.dt_fs, "cutoff_angstrom": model.config.cutoff_angstrom,
      "mass_amu": model.config.mass_amu, "unit_style": units.UNIT_STYLE,
      "units": units.UNITS, "model": model.config.model,
      "model_config": model.config.to_json(),
      "normalization": model.config.stats.to_json(),
      "neighbor_capacity": {"max_neighbors": spec.max_neighbors,
                            "cell_capacity": spec.cell_capacity,
                            "sized_from": f"{data_dir} test frame 0 × {multiplier}"},
      "export_version": version, "mdnet_tf_version": mdnet_tf.__version__,
      "checkpoint": checkpoint, "training_command": run.get("command"),
      "signatures": {
          "serving_default": "positions[N,3], momenta[N,3], box[3] -> positions, momenta",
          "rollout": "+ num_steps[] int32",
          "rollout_nvt": "+ num_steps, target_temperature[] K, tau_fs[] fs, seed[] int32"}}
  with open(os.path.join(extra, "mdnet_metadata.json"), "w") as f:
    json.dump(metadata, f, indent=2, sort_keys=True)
  with tf.io.TFRecordWriter(os.path.join(extra, "tf_serving_warmup_requests")) as w:
    w.write(warmup_record(q, p, box))
  if os.path.exists(final):
    raise FileExistsError(f"{final} exists; choose another --version")
  os.replace(staging, final)
  return final


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  path = export(_WORKDIR.value, _BASE.value, _VERSION.value, _DATA_DIR.value,
                _MULTIPLIER.value)
  print(f"exported {path}: signatures serving_default, rollout, rollout_nvt; "
        f"metadata in {path}/assets.extra/mdnet_metadata.json")


if __name__ == "__main__":
  app.run(main)
