"""Rolls out a trajectory through a TF Serving gRPC endpoint (this repo's server
or the official tensorflow_model_server), writing extended XYZ as it goes.

  python serving/rollout_client.py --server=127.0.0.1:8500 --model_name=mdnet \
      --start=data/small --num_steps=200 --steps_per_call=10 --dt_fs=16 \
      --output=runs/rollout.extxyz

Uses only the official PredictionServiceStub; every call has a deadline;
UNAVAILABLE is retried with exponential backoff; outputs are decoded from
float_val or tensor_content. An existing --output is resumed from its last
complete frame. --start is a LAMMPS dump (its first frame; needs --mass_amu),
an extended XYZ file (its last frame) or a dataset directory (the first frame
of its roll-out trajectory, with the dataset's mass).
"""

import os
import sys
import time

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tqdm  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

from mdnet_tf import extxyz  # noqa: E402
from mdnet_tf import stepping  # noqa: E402
from mdnet_tf import units  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.data import states  # noqa: E402
from serving import codec  # noqa: E402

_SERVER = flags.DEFINE_string("server", "127.0.0.1:8500", "host:port of the gRPC server.")
_MODEL = flags.DEFINE_string("model_name", "mdnet", "Model name on the server.")
_START = flags.DEFINE_string("start", None, "LAMMPS dump or dataset directory.")
_STEPS = flags.DEFINE_integer("num_steps", 100, "Learned steps in total.")
_PER_CALL = flags.DEFINE_integer("steps_per_call", 10,
                                 "Steps per request (rollout signature); 1 = serving_default.")
_OUTPUT = flags.DEFINE_string("output", "rollout.extxyz", "Extended XYZ trajectory.")
_DT = flags.DEFINE_float("dt_fs", None, "The model's Δt in fs (for times in the output).")
_DEADLINE = flags.DEFINE_float("deadline_s", 60.0, "Deadline of each call, s.")
_RETRIES = flags.DEFINE_integer("max_retries", 8, "Retries of UNAVAILABLE per call.")
_MASS = flags.DEFINE_float("mass_amu", None, "Atom mass, g/mol (default: the dataset's, "
                           "when --start is a dataset directory).")

MAX_MESSAGE = 2047 * 1024 * 1024


def load_start(path, mass=None):
  """(positions [N,3], momenta [N,3], box [3]) float32 from a dump, extended XYZ
  or dataset directory (see mdnet_tf.data.states.load_start)."""
  return tuple(np.asarray(x, np.float32) for x in states.load_start(path, mass=mass))


class RolloutClient:
  """Calls the server's rollout / serving_default signature with retries."""

  def __init__(self, server, model_name, deadline_s=60.0, max_retries=8):
    options = [("grpc.max_send_message_length", MAX_MESSAGE),
               ("grpc.max_receive_message_length", MAX_MESSAGE)]
    self.channel = grpc.insecure_channel(server, options=options)
    self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
    self.model_name, self.deadline_s, self.max_retries = model_name, deadline_s, max_retries

  def advance(self, positions, momenta, box, num_steps):
    """(positions, momenta, steps done, failure code) after up to `num_steps`
    learned steps (one gRPC call). A served roll-out that hit a physical failure
    returns its last good state with fewer steps done and a failure code
    (mdnet_tf.stepping.FAILURES); single steps and older exports report none."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = self.model_name
    request.model_spec.signature_name = "serving_default" if num_steps == 1 else "rollout"
    inputs = {"positions": positions, "momenta": momenta, "box": box}
    if num_steps != 1:
      inputs["num_steps"] = np.int32(num_steps)
    for key, value in inputs.items():
      request.inputs[key].CopyFrom(codec.from_ndarray(value))
    delay = 0.5
    for attempt in range(self.max_retries + 1):
      try:
        response = self.stub.Predict(request, timeout=self.deadline_s)
        out = response.outputs
        done = int(codec.to_ndarray(out["steps_done"])) if "steps_done" in out else num_steps
        failure = int(codec.to_ndarray(out["failure"])) if "failure" in out else 0
        return (codec.to_ndarray(out["positions"]), codec.to_ndarray(out["momenta"]), done,
                failure)
      except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.UNAVAILABLE or attempt == self.max_retries:
          raise
        time.sleep(delay)
        delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")

  def close(self):
    self.channel.close()


def rollout(client, start, num_steps, steps_per_call, output, dt_fs=None, mass=None,
            progress=True):
  """Rolls out to `num_steps`, appending frames to `output`; resumes if it exists.

  Returns a summary dict (steps, wall time, final temperature in K, None
  without a mass, and `failure`: None, or the reason a served roll-out stopped
  early; its last good state is the trajectory's last frame).
  """
  positions, momenta, box = start
  done = 0
  last = extxyz.last_frame(output) if os.path.exists(output) else None
  if last is not None:
    done, positions, momenta, box = last
  else:
    extxyz.append_frame(output, 0, positions, momenta, box, dt_fs)
  started = time.time()
  bar = tqdm.tqdm(total=num_steps, initial=done, unit="step", disable=not progress)
  failure = None
  while done < num_steps:
    n = min(steps_per_call, num_steps - done)
    positions, momenta, taken, code = client.advance(positions, momenta, box, n)
    if taken:
      done += taken
      extxyz.append_frame(output, done, positions, momenta, box, dt_fs)
      bar.update(taken)
    if code:
      failure = (f"served roll-out stopped at step {done + 1}: "
                 f"{stepping.FAILURES[code]} (the last good state, step {done}, is the "
                 f"last frame of {output})")
      break
  bar.close()
  temperature = None
  if mass is not None:
    kinetic = units.kinetic_energy_from_momenta_sq(np.sum(momenta.astype(np.float64) ** 2), mass)
    temperature = units.temperature_from_kinetic(kinetic, 3 * len(positions) - 3)
  return {"steps": done, "wall_seconds": time.time() - started, "temperature": temperature,
          "simulated_fs": None if dt_fs is None else done * dt_fs, "failure": failure}



def main(argv):
  del argv
  if not _START.value:
    raise app.UsageError("--start is required (a LAMMPS dump or a dataset directory)")
  mass = _MASS.value
  if mass is None and os.path.isdir(_START.value):
    mass = dataset.load_manifest(_START.value)["mass_amu"]
  client = RolloutClient(_SERVER.value, _MODEL.value, _DEADLINE.value, _RETRIES.value)
  try:
    summary = rollout(client, load_start(_START.value, mass), _STEPS.value, _PER_CALL.value,
                      _OUTPUT.value, _DT.value, mass)
  finally:
    client.close()
  simulated = (f"{summary['simulated_fs'] / 1000:.3f} ps simulated, "
               if summary["simulated_fs"] is not None else "")
  temperature = ("n/a (no --mass_amu)" if summary["temperature"] is None
                 else f"{summary['temperature']:.1f} K")
  print(f"{summary['steps']} steps, {simulated}{summary['wall_seconds']:.1f} s wall time "
        f"this run, final temperature {temperature} -> {_OUTPUT.value}")
  if summary["failure"]:
    print(f"FAILED: {summary['failure']}")
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
