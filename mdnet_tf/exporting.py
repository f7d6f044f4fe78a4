"""Writing a trained model as a TF Serving SavedModel (<export_base>/<version>/).

Used by export/export_savedmodel.py and the tests. The graph holds the neighbor
search (capacity fixed from a reference frame × multiplier; overflow is an
InvalidArgument error), the model and the update; see signatures.py. The export
is written to a temporary directory and renamed into place, so a server never
sees a half-written version.
"""

import json
import os
import shutil

import numpy as np
import tensorflow as tf

import mdnet_tf
from mdnet_tf import evaluation
from mdnet_tf import partition
from mdnet_tf import signatures
from mdnet_tf import units
from mdnet_tf.data import dataset


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


REFERENCE_FILE = "reference_state.npz"


def reference_state(workdir, data_dir, dt_fs):
  """((positions, momenta, box) float32, description) sizing capacities and warm-up.

  The dataset's first test frame if the dataset is at hand, else the
  reference_state.npz that publish_model.py stores with pretrained models.
  """
  if data_dir and os.path.exists(os.path.join(data_dir, "manifest.json")):
    pairs = dataset.load_pairs(data_dir, "test", dt_fs)
    state = (pairs.positions[0], pairs.momenta[0], pairs.box[0])
    source = f"{data_dir} test frame 0"
  elif os.path.exists(os.path.join(workdir, REFERENCE_FILE)):
    with np.load(os.path.join(workdir, REFERENCE_FILE)) as f:
      state = (f["positions"], f["momenta"], f["box"])
    source = os.path.join(workdir, REFERENCE_FILE)
  else:
    raise FileNotFoundError(
        f"no reference state: dataset {data_dir!r} is missing and {workdir} has no "
        f"{REFERENCE_FILE}; pass --data_dir=<a dataset of the same system>")
  return tuple(np.asarray(x, np.float32) for x in state), source


# Edges per atom fluctuate by about 1 % in the liquid, far less than the per-atom
# neighbor maximum or the fullest cell, and every padded edge costs a full φ_o
# evaluation: the graph gets a smaller head-room than the neighbor list.
EDGE_HEADROOM = 1.2


def export(workdir, export_base, version, data_dir=None, multiplier=1.5):
  """Writes <export_base>/<version>/ and returns its path."""
  model, checkpoint = evaluation.restore_model(workdir)
  run_path = os.path.join(workdir, "run.json")
  run = dataset.read_json(run_path) if os.path.exists(run_path) else {}
  (q, p, box), source = reference_state(workdir, data_dir or run.get("data_dir"),
                                        int(model.config.dt_fs))
  spec, nl = partition.allocate(q, box, model.config.cutoff_angstrom,
                                capacity_multiplier=multiplier)
  pairs = int(tf.reduce_sum(tf.cast(nl.indices < len(q), tf.int32))) // 2
  edges_per_atom = pairs / len(q) * min(multiplier, EDGE_HEADROOM)
  module = signatures.StepModule(model, spec.max_neighbors, spec.cell_capacity, edges_per_atom)
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
                            "edges_per_atom": edges_per_atom,
                            "sized_from": f"{source} × {multiplier} (edges × "
                                          f"{min(multiplier, EDGE_HEADROOM)})"},
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
