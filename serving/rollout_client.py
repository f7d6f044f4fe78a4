"""Rolls out a trajectory through a TF Serving endpoint (this repo's server or
the official tensorflow_model_server), writing extended XYZ as it goes.

  python serving/rollout_client.py --server=127.0.0.1:8500 --model_name=mdnet_dt16 \
      --start=data/small --num_steps=200 --steps_per_call=10 --ensemble=nve_rescaled \
      --output=runs/rollout.extxyz
  python serving/rollout_client.py --rest=127.0.0.1:8501 ...      # the REST API instead

Uses only the official PredictionServiceStub (or the REST API); every call has
a deadline; UNAVAILABLE and NOT_FOUND while a model loads are retried with
exponential backoff. Δt and mass come from the served model's metadata
(--dt_fs/--mass_amu override, with a warning if they disagree). --ensemble
picks the signature: nve (rollout), nve_rescaled (rollout_rescaled: total
energy held), nvt (rollout_nvt: CSVR at --temperature, --tau_fs). Each call's
temperature, energies and closest pair go to <output>.thermo. An existing
--output is resumed from its last complete frame. A served failure (the
roll-out stopped at its last good state) is reported and exits with code 2.
--start is a LAMMPS dump (its first frame), an extended XYZ file (its last
frame) or a dataset directory (the first frame of its roll-out trajectory).
"""

import json
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
from google.protobuf import wrappers_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

from mdnet_tf import extxyz  # noqa: E402
from mdnet_tf import stepping  # noqa: E402
from mdnet_tf import units  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.data import states  # noqa: E402
from serving import codec  # noqa: E402
from serving import rest_client  # noqa: E402

_SERVER = flags.DEFINE_string("server", "127.0.0.1:8500", "host:port of the gRPC server.")
_REST = flags.DEFINE_string("rest", None, "host:port of the REST API: use it instead of gRPC.")
_ENSEMBLE = flags.DEFINE_enum("ensemble", "nve", ["nve", "nve_rescaled", "nvt"],
                              "nve, nve_rescaled (energy held) or nvt (CSVR).")
_TEMPERATURE = flags.DEFINE_float("temperature", None, "--ensemble=nvt: target, K.")
_TAU = flags.DEFINE_float("tau_fs", 1000.0, "--ensemble=nvt: coupling time, fs.")
_SEED = flags.DEFINE_integer("seed", 0, "--ensemble=nvt: thermostat seed.")
_MODEL = flags.DEFINE_string("model_name", "mdnet", "Model name on the server.")
_START = flags.DEFINE_string("start", None, "LAMMPS dump or dataset directory.")
_STEPS = flags.DEFINE_integer("num_steps", 100, "Learned steps in total.")
_PER_CALL = flags.DEFINE_integer("steps_per_call", 10,
                                 "Steps per request (rollout signature); 1 = serving_default.")
_OUTPUT = flags.DEFINE_string("output", "rollout.extxyz", "Extended XYZ trajectory.")
_DT = flags.DEFINE_float("dt_fs", None, "Override the served model's Δt, fs.")
_DEADLINE = flags.DEFINE_float("deadline_s", 60.0, "Deadline of each call, s.")
_RETRIES = flags.DEFINE_integer("max_retries", 8, "Retries of UNAVAILABLE per call.")
_MASS = flags.DEFINE_float("mass_amu", None, "Override the served model's atom mass, g/mol.")

MAX_MESSAGE = 2047 * 1024 * 1024


def load_start(path, mass=None):
  """(positions [N,3], momenta [N,3], box [3]) float32 from a dump, extended XYZ
  or dataset directory (see mdnet_tf.data.states.load_start)."""
  return tuple(np.asarray(x, np.float32) for x in states.load_start(path, mass=mass))


ENSEMBLES = {"nve": "rollout", "nve_rescaled": "rollout_rescaled", "nvt": "rollout_nvt"}
# Served while a model is still loading (this server: NOT_FOUND "Servable not
# found", as tensorflow_model_server) or while the server starts (UNAVAILABLE).
_RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)
THERMO_KEYS = ("temperature", "potential_energy", "kinetic_energy", "min_distance")


class ServingFailure(Exception):
  """A request the server refused (status code and message)."""

  def __init__(self, code, message):
    super().__init__(f"{code}: {message}")
    self.code, self.message = code, message


class RolloutClient:
  """Calls a served model's roll-out signatures over gRPC (or REST) with retries.

  ensemble: 'nve' (rollout), 'nve_rescaled' (rollout_rescaled) or 'nvt'
  (rollout_nvt, with temperature K, tau_fs, seed). rest: 'host:port' of the
  REST API to use instead of gRPC.
  """

  def __init__(self, server, model_name, deadline_s=60.0, max_retries=8, ensemble="nve",
               temperature=None, tau_fs=1000.0, seed=0, rest=None):
    if ensemble not in ENSEMBLES:
      raise ValueError(f"ensemble must be one of {sorted(ENSEMBLES)}, got {ensemble!r}")
    if ensemble == "nvt" and not temperature:
      raise ValueError("--ensemble=nvt needs --temperature (K)")
    options = [("grpc.max_send_message_length", MAX_MESSAGE),
               ("grpc.max_receive_message_length", MAX_MESSAGE)]
    self.channel = grpc.insecure_channel(server, options=options)
    self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
    self.model_name, self.deadline_s, self.max_retries = model_name, deadline_s, max_retries
    self.ensemble, self.temperature, self.tau_fs, self.seed = ensemble, temperature, tau_fs, seed
    self.rest = rest
    self.calls = 0

  def _retrying(self, call):
    delay = 0.5
    for attempt in range(self.max_retries + 1):
      try:
        return call()
      except grpc.RpcError as e:
        loading = e.code() in _RETRIED
        if not loading or attempt == self.max_retries:
          raise ServingFailure(e.code().name, e.details()) from e
      except rest_client.HTTPFailure as e:
        if e.status not in (404, 503) or attempt == self.max_retries:
          raise ServingFailure(f"HTTP {e.status}", e.message) from e
      time.sleep(delay)
      delay = min(delay * 2, 10.0)
    raise AssertionError("unreachable")

  def metadata(self):
    """The served model's mdnet_metadata.json (Δt, mass, potential) or {} when the
    server does not offer it (the official tensorflow_model_server)."""
    if self.rest:
      answer = self._retrying(lambda: rest_client.get(
          self.rest, f"/v1/models/{self.model_name}/metadata", self.deadline_s))
      return answer.get("metadata", {}).get("mdnet_metadata", {}) or {}
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = self.model_name
    request.metadata_field.extend(["signature_def", "mdnet_metadata"])
    try:
      response = self._retrying(lambda: self.stub.GetModelMetadata(request,
                                                                   timeout=self.deadline_s))
    except ServingFailure as e:
      if e.code == "INVALID_ARGUMENT":
        return {}
      raise
    if "mdnet_metadata" not in response.metadata:
      return {}
    value = wrappers_pb2.StringValue()
    response.metadata["mdnet_metadata"].Unpack(value)
    return json.loads(value.value)

  def _inputs(self, positions, momenta, box, num_steps):
    if num_steps == 1 and self.ensemble == "nve":
      return "serving_default", {"positions": positions, "momenta": momenta, "box": box}
    inputs = {"positions": positions, "momenta": momenta, "box": box,
              "num_steps": np.int32(num_steps)}
    if self.ensemble == "nvt":
      inputs.update(target_temperature=np.float32(self.temperature),
                    tau_fs=np.float32(self.tau_fs),
                    seed=np.int32((self.seed + self.calls) % 2 ** 31))
    return ENSEMBLES[self.ensemble], inputs

  def advance(self, positions, momenta, box, num_steps):
    """(positions, momenta, steps done, failure code, thermo) after up to
    `num_steps` learned steps (one call). A served roll-out that hit a physical
    failure returns its last good state with fewer steps done and a failure
    code (mdnet_tf.stepping.FAILURES); thermo: {temperature K, potential_energy,
    kinetic_energy kcal/mol, min_distance Å} of the returned state, or {} for a
    single step."""
    signature, inputs = self._inputs(positions, momenta, box, num_steps)
    self.calls += 1
    if self.rest:
      body = {"signature_name": signature,
              "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}}
      out = self._retrying(lambda: rest_client.post(
          self.rest, f"/v1/models/{self.model_name}:predict", body, self.deadline_s))["outputs"]
      out = {k: np.asarray(v) for k, v in out.items()}
    else:
      request = predict_pb2.PredictRequest()
      request.model_spec.name = self.model_name
      request.model_spec.signature_name = signature
      for key, value in inputs.items():
        request.inputs[key].CopyFrom(codec.from_ndarray(value))
      response = self._retrying(lambda: self.stub.Predict(request, timeout=self.deadline_s))
      out = {k: codec.to_ndarray(v) for k, v in response.outputs.items()}
    done = int(out["steps_done"]) if "steps_done" in out else num_steps
    failure = int(out["failure"]) if "failure" in out else 0
    thermo = {k: float(out[k]) for k in THERMO_KEYS if k in out}
    return (np.asarray(out["positions"], np.float32), np.asarray(out["momenta"], np.float32),
            done, failure, thermo)

  def close(self):
    self.channel.close()


def physics_from_server(client, dt_fs=None, mass=None, warn=print):
  """(Δt fs, mass g/mol) from the served metadata; flags override (with a
  warning where they disagree). Either may stay None if nobody knows it."""
  meta = client.metadata()
  served_dt, served_mass = meta.get("dt_fs"), meta.get("mass_amu")
  for flag, served, name in ((dt_fs, served_dt, "--dt_fs"), (mass, served_mass, "--mass_amu")):
    if flag is not None and served is not None and abs(flag - served) > 1e-9 * served:
      warn(f"warning: {name}={flag:g} disagrees with the served model's {served:g}; "
           f"using {flag:g}")
  return (dt_fs if dt_fs is not None else served_dt,
          mass if mass is not None else served_mass)


def _advance_all(client, positions, momenta, box, done, num_steps, steps_per_call, output,
                 dt_fs, thermo_path, bar):
  """The call loop of `rollout`; returns (steps done, failure text or None,
  positions, momenta)."""
  failure = None
  while done < num_steps:
    n = min(steps_per_call, num_steps - done)
    positions, momenta, taken, code, thermo = client.advance(positions, momenta, box, n)
    if taken:
      done += taken
      extxyz.append_frame(output, done, positions, momenta, box, dt_fs)
      bar.update(taken)
    if thermo:
      time_fs = "nan" if dt_fs is None else f"{done * dt_fs:g}"
      with open(thermo_path, "a") as f:
        f.write(f"{done} {time_fs} " + " ".join(f"{thermo.get(k, float('nan')):.10g}"
                                                for k in THERMO_KEYS) + "\n")
      bar.set_postfix(T=f"{thermo.get('temperature', float('nan')):.1f}K")
    if code:
      failure = (f"served roll-out stopped at step {done + 1}: "
                 f"{stepping.FAILURES[code]} (the last good state, step {done}, is the "
                 f"last frame of {output})")
      break
  return done, failure, positions, momenta


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
  thermo_path = output + ".thermo"
  if not os.path.exists(thermo_path):
    with open(thermo_path, "w") as f:
      f.write("# step time_fs " + " ".join(THERMO_KEYS) + "  (K, kcal/mol, kcal/mol, Å; "
              "one line per call)\n")
  try:
    done, failure, positions, momenta = _advance_all(
        client, positions, momenta, box, done, num_steps, steps_per_call, output, dt_fs,
        thermo_path, bar)
  finally:
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
    raise app.UsageError("--start is required (a LAMMPS dump, extended XYZ or dataset)")
  try:
    client = RolloutClient(_SERVER.value, _MODEL.value, _DEADLINE.value, _RETRIES.value,
                           _ENSEMBLE.value, _TEMPERATURE.value, _TAU.value, _SEED.value,
                           _REST.value)
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  try:
    dt_fs, mass = physics_from_server(client, _DT.value, _MASS.value)
    if mass is None and os.path.isdir(_START.value):
      mass = dataset.load_manifest(_START.value)["mass_amu"]
    print(f"{_MODEL.value}: Δt {dt_fs} fs, mass {mass} g/mol, ensemble {_ENSEMBLE.value}"
          f"{' over REST' if _REST.value else ''}")
    summary = rollout(client, load_start(_START.value, mass), _STEPS.value, _PER_CALL.value,
                      _OUTPUT.value, dt_fs, mass)
  except ServingFailure as e:
    print(f"FAILED: the server refused the request: {e}")
    sys.exit(2)
  finally:
    client.close()
  simulated = (f"{summary['simulated_fs'] / 1000:.3f} ps simulated, "
               if summary["simulated_fs"] is not None else "")
  temperature = ("n/a (no mass)" if summary["temperature"] is None
                 else f"{summary['temperature']:.1f} K")
  print(f"{summary['steps']} steps, {simulated}{summary['wall_seconds']:.1f} s wall time "
        f"this run, final temperature {temperature} -> {_OUTPUT.value} (thermo in "
        f"{_OUTPUT.value}.thermo)")
  if summary["failure"]:
    print(f"FAILED: {summary['failure']}")
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
