"""Writing a trained model as a TF Serving SavedModel (<export_base>/<version>/).

Used by export/export_savedmodel.py and the tests. The graph holds the neighbor
search (capacities fixed from a reference frame with capacity.py's head-room;
an overflow is an InvalidArgument error), the model and the update; see
signatures.py. assets.extra/ holds mdnet_metadata.json (Δt, cutoff, mass,
potential, units, model config, normalization, capacities, version, training
command: what models/io.py and clients read back) and the warm-up requests.
The export is written to a temporary directory and renamed into place, so a
server never sees a half-written version.
"""

import json
import os
import shutil

import numpy as np
import tensorflow as tf

import mdnet_tf
from mdnet_tf import capacity as capacity_lib
from mdnet_tf import errors
from mdnet_tf import signatures
from mdnet_tf import stepping
from mdnet_tf import units
from mdnet_tf.data import dataset
from mdnet_tf.models import io as model_io
from mdnet_tf.models import symplectic


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


def reference_state(workdir, data_dir, dt_fs):
  """((positions, momenta, box) float32, description) sizing capacities and warm-up.

  The dataset's first test frame if the dataset is at hand, else the
  reference_state.npz that pretrained model directories carry.
  """
  stored = os.path.join(workdir, model_io.REFERENCE_FILE)
  if data_dir and os.path.exists(os.path.join(data_dir, "manifest.json")):
    pairs = dataset.load_pairs(data_dir, "test", dt_fs)
    state = (pairs.positions[0], pairs.momenta[0], pairs.box[0])
    source = f"{data_dir} test frame 0"
  elif os.path.exists(stored):
    with np.load(stored) as f:
      state = (f["positions"], f["momenta"], f["box"])
    source = stored
  else:
    raise FileNotFoundError(
        f"no reference state: dataset {data_dir!r} is missing and {workdir} has no "
        f"{model_io.REFERENCE_FILE}; pass --data_dir=<a dataset of the same system>")
  return tuple(np.asarray(x, np.float32) for x in state), source


# Failure criteria of served roll-outs (those of launch/rollout.py): temperature
# outside [T₀/3, 3 T₀]; a pair closer than 0.73 σ (2.5 Å for argon).
TEMPERATURE_FACTOR = 3.0
MIN_DISTANCE_SIGMA = stepping.MIN_DISTANCE_SIGMA


def export(workdir, export_base, version, data_dir=None, multiplier=capacity_lib.HEADROOM,
           mode="graph", precision="float32", temperature_factor=TEMPERATURE_FACTOR,
           min_distance_sigma=MIN_DISTANCE_SIGMA):
  """Writes <export_base>/<version>/ and returns its path.

  mode: 'graph' (default: plain graph execution, runs on the stock TF Serving)
  or 'xla' (one XLA program per step loop; the server must enable XLA).
  precision: 'float32' or 'bfloat16' matmuls. temperature_factor,
  min_distance_sigma: failure criteria of the roll-out signatures (T outside
  [T₀/f, T₀·f]; a pair closer than this fraction of the model's LJ σ).
  multiplier: xla mode's neighbor-list head-room over the reference state
  (the graph gets capacity.EDGE_HEADROOM at most); a state that needs more is
  refused. Graph mode has no capacity to exceed.
  """
  model, checkpoint = model_io.restore(workdir)
  config = model.config
  if config.model == symplectic.FAMILY and (mode != "graph" or precision != "float32"):
    raise errors.InputError(f"{symplectic.FAMILY} exports in graph mode and float32 only "
                            f"(its solve searches compact pairs), got {mode}/{precision}")
  run = model_io.read_run(workdir)
  (q, p, box), source = reference_state(workdir, data_dir or run.get("data_dir"),
                                        int(config.dt_fs))
  capacity, _ = capacity_lib.Capacity.fit(q, box, config.cutoff_angstrom, headroom=multiplier)
  min_distance = min_distance_sigma * config.lj_sigma
  module = signatures.StepModule(model, capacity, mode, precision, temperature_factor,
                                 min_distance)
  final = os.path.join(export_base, str(version))
  if os.path.exists(final):
    raise FileExistsError(f"{final} exists; choose another --version")
  staging = os.path.join(export_base, f".{version}.tmp")
  shutil.rmtree(staging, ignore_errors=True)
  tf.saved_model.save(module, staging, signatures=module.signatures())
  extra = os.path.join(staging, "assets.extra")
  os.makedirs(extra)
  metadata = {
      "dt_fs": config.dt_fs, "cutoff_angstrom": config.cutoff_angstrom,
      "mass_amu": config.mass_amu, "potential": config.lj()._asdict(),
      "unit_style": units.UNIT_STYLE, "units": units.UNITS, "model": config.model,
      "model_config": config.to_json(), "normalization": config.stats.to_json(),
      "execution": {"mode": mode, "precision": precision, "xla_must_compile": mode == "xla",
                    "server_flags": ("--xla_cpu_compilation_enabled=true" if mode == "xla"
                                     else "")},
      "neighbor_capacity": {"max_neighbors": capacity.spec.max_neighbors,
                            "cell_capacity": capacity.spec.cell_capacity,
                            "edges_per_atom": capacity.edges_per_atom,
                            "sized_from": f"{source} × {multiplier} (edges × "
                                          f"{min(multiplier, capacity_lib.EDGE_HEADROOM)})"},
      "solver": (symplectic.Solver()._asdict() if config.model == symplectic.FAMILY
                 else None),
      "export_version": version, "mdnet_tf_version": mdnet_tf.__version__,
      "checkpoint": checkpoint, "training_command": run.get("command"),
      "failure_criteria": {"temperature_factor": temperature_factor,
                           "min_distance_angstrom": min_distance,
                           "min_distance_sigma": min_distance_sigma,
                           "codes": list(stepping.FAILURES)},
      "signatures": {
          "serving_default": "positions[N,3], momenta[N,3], box[3] -> positions, momenta",
          "rollout": "+ num_steps[] int32 -> positions, momenta, temperature K, "
                     "potential_energy, kinetic_energy kcal/mol, min_distance A, "
                     "steps_done, failure",
          "rollout_rescaled": "as rollout, momenta rescaled to the initial total energy; "
                              "+ infeasible_rescales, clipped_rescales",
          "rollout_nvt": "+ num_steps, target_temperature[] K, tau_fs[] fs, seed[] int32; "
                         "outputs as rollout"}}
  with open(os.path.join(extra, "mdnet_metadata.json"), "w") as f:
    json.dump(metadata, f, indent=2, sort_keys=True)
  with tf.io.TFRecordWriter(os.path.join(extra, "tf_serving_warmup_requests")) as w:
    w.write(warmup_record(q, p, box))
  os.replace(staging, final)
  return final
