"""gRPC serving: this repo's TF Serving compatible server and the roll-out client."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from conftest import predict_request
from serving import codec
from mdnet_tf import extxyz
from serving import rollout_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Server:
  """serving/model_server.py in a subprocess on a free port."""

  def __init__(self, base, port=None):
    self.base, self.port = base, port or _free_port()
    self.proc = None

  def start(self):
    self.proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "serving", "model_server.py"),
         f"--port={self.port}", "--model_name=mdnet", f"--model_base_path={self.base}",
         "--file_system_poll_wait_seconds=0.5", "--max_message_mb=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    stub = model_service_pb2_grpc.ModelServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{self.port}"))
    deadline = time.time() + 120
    while time.time() < deadline:
      try:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "mdnet"
        stub.GetModelStatus(request, timeout=2)
        return self
      except grpc.RpcError:
        assert self.proc.poll() is None, "server exited"
        time.sleep(0.3)
    raise TimeoutError("server did not come up")

  def stop(self):
    self.proc.kill()
    self.proc.wait()


@pytest.fixture(scope="module")
def served(smoke_dir, tmp_path_factory, pretrained16_export):
  """The pretrained 16 fs model, exported with the default failure criteria and
  served; its roll-outs of the smoke liquid are physical (a barely trained
  network lets atoms pass through each other within ~30 steps, which the
  served roll-outs now correctly refuse)."""
  base = str(tmp_path_factory.mktemp("models"))
  path = os.path.join(base, "1")
  shutil.copytree(pretrained16_export, path)      # the test adds versions next to it
  server = Server(base).start()
  yield server, tf.saved_model.load(path), rollout_client.load_start(smoke_dir)
  server.stop()


def _request(inputs, signature="serving_default", name="mdnet", version=None):
  return predict_request(name, inputs, signature, version)


def _stub(server):
  return prediction_service_pb2_grpc.PredictionServiceStub(
      grpc.insecure_channel(f"127.0.0.1:{server.port}"))


def test_fifty_step_rollout_through_grpc_equals_in_process(served, tmp_path):
  server, loaded, start = served
  client = rollout_client.RolloutClient(f"127.0.0.1:{server.port}", "mdnet")
  out = str(tmp_path / "traj.extxyz")
  summary = rollout_client.rollout(client, start, 50, 10, out, dt_fs=16.0, progress=False)
  assert summary["steps"] == 50 and summary["simulated_fs"] == 800.0
  q, p, box = start
  for _ in range(5):   # the same chunks in process: bit-identical
    r = loaded.signatures["rollout"](positions=tf.constant(q), momenta=tf.constant(p),
                                     box=tf.constant(box), num_steps=tf.constant(10))
    q, p = r["positions"].numpy(), r["momenta"].numpy()
  step, q_served, p_served, _ = extxyz.last_frame(out)
  assert step == 50
  np.testing.assert_array_equal(q_served, q)
  np.testing.assert_array_equal(p_served, p)
  # One 50-step call (float64 carried throughout) agrees to float32 rounding of
  # the restarts (≤ 4e-6 Å at q ≈ 24 Å), grown by the liquid's chaos over 800 fs
  # (a physical model: its pair dynamics amplify perturbations ~e^4 here).
  r = loaded.signatures["rollout"](positions=tf.constant(start[0]),
                                   momenta=tf.constant(start[1]), box=tf.constant(box),
                                   num_steps=tf.constant(50))
  np.testing.assert_allclose(q_served, r["positions"].numpy(), atol=1e-3)


def test_malformed_requests_get_the_right_status(served):
  server, _, (q, p, box) = served
  stub = _stub(server)
  nan_q = q.copy()
  nan_q[0, 0] = np.nan
  good = {"positions": q, "momenta": p, "box": box}
  cases = [
      ({"positions": q, "momenta": p}, {}, grpc.StatusCode.INVALID_ARGUMENT, "missing"),
      ({**good, "positions": q.astype(np.float64)}, {}, grpc.StatusCode.INVALID_ARGUMENT,
       "dtype"),
      ({**good, "positions": q[:, :2].copy()}, {}, grpc.StatusCode.INVALID_ARGUMENT, "shape"),
      ({**good, "positions": nan_q}, {}, grpc.StatusCode.INVALID_ARGUMENT, "NaN"),
      ({**good, "box": np.float32([10, 40, 40])}, {}, grpc.StatusCode.INVALID_ARGUMENT,
       "2 × cutoff"),
      (good, {"name": "other"}, grpc.StatusCode.NOT_FOUND, "other"),
      (good, {"version": 99}, grpc.StatusCode.NOT_FOUND, "99"),
      (good, {"signature": "nope"}, grpc.StatusCode.FAILED_PRECONDITION,
       'Serving signature key "nope" not found.'),
      ({**good, "positions": np.zeros((200000, 3), np.float32)}, {},
       grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
  ]
  for inputs, spec, code, text in cases:
    with pytest.raises(grpc.RpcError) as info:
      stub.Predict(_request(inputs, **spec), timeout=30)
    assert info.value.code() == code, (spec, info.value.details())
    assert text in (info.value.details() or ""), info.value.details()
    # ... and the server keeps serving.
    assert stub.Predict(_request(good), timeout=30).outputs["positions"].float_val


def test_concurrent_clients_get_their_own_answers(served):
  server, loaded, (q, p, box) = served
  stub = _stub(server)
  results, errors = {}, []

  def worker(k):
    try:
      shifted = q + np.float32(0.1 * k)
      r = stub.Predict(_request({"positions": shifted, "momenta": p, "box": box}), timeout=60)
      results[k] = codec.to_ndarray(r.outputs["positions"])
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors
  for k, got in results.items():
    ref = loaded.signatures["serving_default"](
        positions=tf.constant(q + np.float32(0.1 * k)), momenta=tf.constant(p),
        box=tf.constant(box))["positions"].numpy()
    np.testing.assert_array_equal(got, ref)


def test_new_version_is_picked_up(served):
  server, _, (q, p, box) = served
  staging = os.path.join(server.base, ".2.tmp")
  shutil.copytree(os.path.join(server.base, "1"), staging)
  os.replace(staging, os.path.join(server.base, "2"))
  stub = _stub(server)
  deadline = time.time() + 60
  version = 1
  while time.time() < deadline and version != 2:
    r = stub.Predict(_request({"positions": q, "momenta": p, "box": box}), timeout=30)
    version = r.model_spec.version.value
    time.sleep(0.3)
  assert version == 2


def test_client_resumes_across_a_server_restart(served, tmp_path):
  server, loaded, start = served
  reference = str(tmp_path / "ref.extxyz")
  client = rollout_client.RolloutClient(f"127.0.0.1:{server.port}", "mdnet",
                                        max_retries=30)
  rollout_client.rollout(client, start, 40, 4, reference, progress=False)
  out = str(tmp_path / "killed.extxyz")
  # First part, then the server dies; the output also ends in a torn frame.
  rollout_client.rollout(client, start, 12, 4, out, progress=False)
  with open(out, "a") as f:
    f.write("256\nLattice=\"1 0 0 0 1 0 0 0 1\" step=16\nAr 1 2 3\n")
  server.stop()
  restarter = threading.Timer(3.0, server.start)
  restarter.start()
  try:
    rollout_client.rollout(client, start, 40, 4, out, progress=False)
  finally:
    restarter.join()
  with open(out) as f:
    steps = [int(l.split("step=")[1].split()[0]) for l in f if "step=" in l]
  assert steps == list(range(0, 41, 4))            # every frame exactly once
  np.testing.assert_array_equal(extxyz.last_frame(out)[1], extxyz.last_frame(reference)[1])


def test_client_stops_at_a_served_failure_with_the_last_good_state(served, tmp_path):
  """A planted 2 Å pair (< 0.73 σ): the server stops the roll-out at its first
  step, the client reports it and keeps frame 0. Which criterion trips first
  depends on the model: a direct MDNet step leaves the pair too close, the
  pretrained 16 fs model's Verlet baseline kicks it apart with the LJ force at
  2 Å, heating the 256-atom smoke liquid past 3 T_ref in one step."""
  server, _, start = served
  q, p, box = (x.copy() for x in start)
  q[1] = q[0] + np.float32([2.0, 0.0, 0.0])
  client = rollout_client.RolloutClient(f"127.0.0.1:{server.port}", "mdnet")
  out = str(tmp_path / "failed.extxyz")
  summary = rollout_client.rollout(client, (q, p, box), 20, 5, out, progress=False)
  client.close()
  assert summary["steps"] == 0 and "stopped at step 1" in summary["failure"]
  assert ("atoms too close" in summary["failure"]
          or "temperature out of range" in summary["failure"]), summary["failure"]
  steps, q_written, _, _ = extxyz.read_frames(out)
  assert steps.tolist() == [0]
  np.testing.assert_allclose(q_written[0], q, atol=1e-5)   # extxyz keeps 9 digits
