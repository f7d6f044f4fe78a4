"""The server as TF Serving users drive it: a model config with several models and
version policies, REST next to gRPC, Prometheus metrics, health, limits,
cancellation, load retries, and the client learning Δt and mass from the server.
One server process on free ports serves the pretrained 16 fs model under two
names (and a second version of one of them)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2
from grpc_health.v1 import health_pb2_grpc
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

from conftest import predict_request
from mdnet_tf import extxyz
from serving import codec
from serving import rollout_client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_STEPS = 100000


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _cpu_seconds(pid):
  """User + system CPU seconds of a process (from /proc)."""
  with open(f"/proc/{pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture(scope="module")
def server(smoke_dir, tmp_path_factory, pretrained16_export):
  root = tmp_path_factory.mktemp("serving")
  version = str(root / "dt16" / "1")
  shutil.copytree(pretrained16_export, version)
  shutil.copytree(version, root / "copy" / "1")
  shutil.copytree(version, root / "copy" / "2")
  os.makedirs(root / "late")            # a model whose version arrives later
  os.makedirs(root / "broken" / "1")    # a version that cannot load
  (root / "broken" / "1" / "saved_model.pb").write_bytes(b"not a SavedModel")
  config = root / "models.config"
  config.write_text(f"""
model_config_list {{
  config {{ name: "dt16" base_path: "{root / 'dt16'}" model_platform: "tensorflow" }}
  config {{ name: "copy" base_path: "{root / 'copy'}" model_platform: "tensorflow"
           model_version_policy {{ all {{}} }} }}
  config {{ name: "late" base_path: "{root / 'late'}" model_platform: "tensorflow" }}
  config {{ name: "broken" base_path: "{root / 'broken'}" model_platform: "tensorflow" }}
}}
""")
  monitoring = root / "monitoring.config"
  monitoring.write_text('prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n')
  port, rest = _free_port(), _free_port()
  proc = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, "serving", "model_server.py"), f"--port={port}",
       f"--rest_api_port={rest}", f"--model_config_file={config}",
       f"--monitoring_config_file={monitoring}", "--file_system_poll_wait_seconds=0.5",
       f"--max_num_steps={MAX_STEPS}", "--max_num_load_retries=1",
       "--rest_api_timeout_in_ms=5000",
       "--load_retry_interval_micros=200000", "--workers=2"],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=ROOT))
  channel = grpc.insecure_channel(f"127.0.0.1:{port}")
  deadline = time.time() + 180
  while True:
    try:
      health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
      break
    except grpc.RpcError:
      assert proc.poll() is None and time.time() < deadline, "server did not come up"
      time.sleep(0.5)
  start = rollout_client.load_start(smoke_dir)
  yield {"proc": proc, "port": port, "rest": rest, "root": root, "channel": channel,
         "start": start, "data": smoke_dir}
  proc.kill()
  proc.wait()


_request = predict_request   # (name, inputs, signature, version)


def _status(server, name):
  stub = model_service_pb2_grpc.ModelServiceStub(server["channel"])
  request = get_model_status_pb2.GetModelStatusRequest()
  request.model_spec.name = name
  return stub.GetModelStatus(request, timeout=10).model_version_status


def _http(server, path, body=None):
  """(HTTP status, JSON answer) of the REST API."""
  data = None if body is None else json.dumps(body).encode()
  request = urllib.request.Request(f"http://127.0.0.1:{server['rest']}{path}", data=data)
  try:
    with urllib.request.urlopen(request, timeout=60) as r:
      return r.status, json.loads(r.read())
  except urllib.error.HTTPError as e:
    return e.code, json.loads(e.read())


def test_model_config_serves_several_models_and_version_policies(server):
  q, p, box = server["start"]
  stub = prediction_service_pb2_grpc.PredictionServiceStub(server["channel"])
  inputs = {"positions": q, "momenta": p, "box": box}
  answers = {}
  for name, version in (("dt16", None), ("copy", 1), ("copy", 2)):
    r = stub.Predict(_request(name, inputs, version=version), timeout=60)
    answers[(name, version)] = codec.to_ndarray(r.outputs["positions"])
    assert r.model_spec.version.value == (version or 1)
  np.testing.assert_array_equal(answers[("copy", 2)], answers[("dt16", None)])
  assert [(s.version, s.state) for s in _status(server, "copy")] == [
      (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
      (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE)]
  health = health_pb2_grpc.HealthStub(server["channel"])
  # Not every configured model is available ("broken" never loads): NOT_SERVING.
  assert (health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
          == health_pb2.HealthCheckResponse.NOT_SERVING)


def test_a_failing_version_is_retried_then_reported(server):
  deadline = time.time() + 30
  while time.time() < deadline:
    (status,) = _status(server, "broken")
    if status.state == get_model_status_pb2.ModelVersionStatus.END:
      break
    time.sleep(0.3)
  assert status.state == get_model_status_pb2.ModelVersionStatus.END
  assert status.status.error_message and status.status.error_code != 0
  with pytest.raises(grpc.RpcError) as info:
    prediction_service_pb2_grpc.PredictionServiceStub(server["channel"]).Predict(
        _request("broken", {}), timeout=10)
  assert info.value.code() == grpc.StatusCode.NOT_FOUND
  assert "Servable not found for request: Latest(broken)" in info.value.details()


def test_rest_predict_equals_grpc_and_errors_look_like_the_real_server(server):
  q, p, box = server["start"]
  stub = prediction_service_pb2_grpc.PredictionServiceStub(server["channel"])
  inputs = {"positions": q, "momenta": p, "box": box, "num_steps": np.int32(5)}
  grpc_out = stub.Predict(_request("dt16", inputs, "rollout"), timeout=60).outputs
  code, answer = _http(server, "/v1/models/dt16:predict", {
      "signature_name": "rollout",
      "inputs": {k: np.asarray(v).tolist() for k, v in inputs.items()}})
  assert code == 200, answer
  np.testing.assert_array_equal(np.float32(answer["outputs"]["positions"]),
                                codec.to_ndarray(grpc_out["positions"]))
  assert answer["outputs"]["steps_done"] == 5
  assert answer["outputs"]["temperature"] == pytest.approx(
      float(codec.to_ndarray(grpc_out["temperature"])), rel=1e-12)
  code, answer = _http(server, "/v1/models/copy/versions/2")
  assert code == 200 and answer["model_version_status"][0]["state"] == "AVAILABLE"
  code, answer = _http(server, "/v1/models/dt16/metadata")
  assert code == 200 and answer["metadata"]["mdnet_metadata"]["dt_fs"] == 16.0
  assert "rollout_rescaled" in answer["metadata"]["signature_def"]["signatureDef"]
  for path, body, want, text in [
      ("/v1/models/nope:predict", {"inputs": {}}, 404, "Servable not found"),
      ("/v1/models/dt16/versions/7:predict", {"inputs": {}}, 404, "Specific(dt16, 7)"),
      ("/v1/models/dt16:predict", {"signature_name": "x", "inputs": {}}, 400,
       'Serving signature key "x" not found.'),
      ("/v1/models/dt16:predict", {"instances": [{"box": box.tolist()}]}, 400, "needs inputs"),
      ("/v1/models/dt16:predict", {"signature_name": "rollout", "inputs": {
          **{k: np.asarray(v).tolist() for k, v in inputs.items()},
          "num_steps": MAX_STEPS + 1}}, 400, "exceeds"),
  ]:
    code, answer = _http(server, path, body)
    assert code == want and text in answer["error"], (path, code, answer)


def test_metrics_count_requests_by_model_and_status(server):
  q, p, box = server["start"]
  stub = prediction_service_pb2_grpc.PredictionServiceStub(server["channel"])
  for _ in range(3):
    stub.Predict(_request("copy", {"positions": q, "momenta": p, "box": box}), timeout=60)
  with pytest.raises(grpc.RpcError):
    stub.Predict(_request("copy", {"positions": q}), timeout=60)
  with urllib.request.urlopen(
      f"http://127.0.0.1:{server['rest']}/monitoring/prometheus/metrics", timeout=10) as r:
    text = r.read().decode()
  counts = {}
  for line in text.splitlines():
    if line.startswith(":tensorflow:serving:request_count_total{"):
      labels, value = line.rsplit(" ", 1)
      counts[labels] = float(value)
  ok = ':tensorflow:serving:request_count_total{model_name="copy",status="OK"}'
  bad = ':tensorflow:serving:request_count_total{model_name="copy",status="INVALID_ARGUMENT"}'
  assert counts[ok] >= 3 and counts[bad] >= 1, counts
  assert ':tensorflow:serving:request_latency_bucket{API="predict",entrypoint="GRPC"' in text


def test_step_limit_and_cancelled_rollouts_free_the_server(server):
  q, p, box = server["start"]
  stub = prediction_service_pb2_grpc.PredictionServiceStub(server["channel"])
  state = {"positions": q, "momenta": p, "box": box}
  with pytest.raises(grpc.RpcError) as info:
    stub.Predict(_request("dt16", {**state, "num_steps": np.int32(2 * 10 ** 9)}, "rollout"),
                 timeout=10)
  assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
  assert "exceeds this server's limit" in info.value.details()
  # Hours of work at this size; the deadline (2 s) cancels it inside TensorFlow.
  long = _request("dt16", {**state, "num_steps": np.int32(MAX_STEPS)}, "rollout")
  with pytest.raises(grpc.RpcError) as info:
    stub.Predict(long, timeout=2)
  assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
  # A client that cancels: the same.
  future = stub.Predict.future(long, timeout=600)
  time.sleep(2)
  future.cancel()
  # REST: --rest_api_timeout_in_ms (5 s here; the other REST calls take < 1 s)
  # cancels it, answered as 504.
  started = time.time()
  code, answer = _http(server, "/v1/models/dt16:predict", {
      "signature_name": "rollout", "inputs": {
          "positions": q.tolist(), "momenta": p.tolist(), "box": box.tolist(),
          "num_steps": MAX_STEPS}})
  assert code == 504 and "Deadline" in answer["error"] and time.time() - started < 60
  # All three roll-outs stopped: the server's CPU is back to idle within seconds.
  pid = server["proc"].pid
  deadline = time.time() + 10
  while time.time() < deadline:
    before = _cpu_seconds(pid)
    time.sleep(1.0)
    busy = _cpu_seconds(pid) - before
    if busy < 0.2:
      break
  assert busy < 0.2, f"server still computing: {busy:.2f} CPU s per s"
  r = stub.Predict(_request("dt16", state), timeout=30)      # and it answers at once
  assert r.outputs["positions"].float_val


def test_client_waits_for_a_loading_model_and_learns_physics_from_the_server(server,
                                                                              tmp_path):
  q, p, box = server["start"]
  client = rollout_client.RolloutClient(f"127.0.0.1:{server['port']}", "late",
                                        max_retries=40, ensemble="nve_rescaled")
  copier = threading.Timer(2.0, shutil.copytree,
                           args=(server["root"] / "dt16" / "1", server["root"] / "late" / "1"))
  copier.start()
  try:
    positions, _, done, failure, thermo = client.advance(q, p, box, 4)   # NOT_FOUND, retried
  finally:
    copier.join()
    client.close()
  assert done == 4 and failure == 0 and positions.shape == q.shape
  assert set(thermo) == set(rollout_client.THERMO_KEYS)
  out = tmp_path / "client.extxyz"
  run = subprocess.run(
      [sys.executable, os.path.join(ROOT, "serving", "rollout_client.py"),
       f"--rest=127.0.0.1:{server['rest']}", "--model_name=late",
       f"--start={server['data']}",
       "--num_steps=8", "--steps_per_call=4", "--ensemble=nve_rescaled", f"--output={out}"],
      capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT), check=False)
  assert run.returncode == 0, run.stdout + run.stderr
  assert "Δt 16.0 fs, mass 39.948 g/mol, ensemble nve_rescaled over REST" in run.stdout
  steps, _, _, _ = extxyz.read_frames(str(out))
  assert steps.tolist() == [0, 4, 8]
  with open(str(out)) as f:
    assert "time_fs=128" in f.read()                           # 8 steps × Δt from the server
  rows = np.loadtxt(str(out) + ".thermo")
  assert rows.shape == (2, 6) and np.all(rows[:, 2] > 10)      # temperatures in K


class _FakeServable:
  """Stands in for a SavedModel version in the manager tests (instant load)."""

  def __init__(self, path, version):
    if "bad" in path:
      raise OSError(f"cannot read {path}")
    self.path, self.version = path, version

  def warm_up(self):
    return 0


def test_config_reload_and_version_policies_in_process(tmp_path):
  from serving import config as config_lib  # pylint: disable=import-outside-toplevel
  from serving import manager as manager_lib  # pylint: disable=import-outside-toplevel
  from serving import servable  # pylint: disable=import-outside-toplevel
  for rel in ("a/1", "a/2", "b/1", "bad/1"):
    os.makedirs(tmp_path / rel)
    (tmp_path / rel / "saved_model.pb").write_bytes(b"")
  text = {"now": f'model_config_list {{ config {{ name: "a" base_path: "{tmp_path / "a"}" }} }}'}
  path = tmp_path / "models.config"

  def load():
    path.write_text(text["now"])
    return config_lib.model_configs(str(path))

  core = manager_lib.ServerCore(load, poll_seconds=3600, max_retries=2, retry_seconds=0.0,
                                on_change=lambda line: None, loader=_FakeServable)
  try:
    assert core.get("a").version == 2                       # latest: the highest only
    assert [s.version for s in core.manager("a").statuses()] == [2]
    text["now"] = f"""model_config_list {{
      config {{ name: "a" base_path: "{tmp_path / 'a'}"
               model_version_policy {{ specific {{ versions: 1 }} }} }}
      config {{ name: "b" base_path: "{tmp_path / 'b'}" model_version_policy {{ all {{}} }} }}
      config {{ name: "bad" base_path: "{tmp_path / 'bad'}" }} }}"""
    core.reload_config()
    for _ in range(4):                                       # retries of "bad" included
      core.poll()
    assert [(s.version, s.state) for s in core.manager("a").statuses()] == [
        (1, "AVAILABLE"), (2, "END")]
    assert core.get("b").version == 1 and core.get("a", 1).version == 1
    (bad,) = core.manager("bad").statuses()
    assert bad.state == "END" and bad.attempts == 3 and "cannot read" in bad.error
    assert not core.all_available()
    text["now"] = f'model_config_list {{ config {{ name: "b" base_path: "{tmp_path / "b"}" }} }}'
    core.reload_config()
    with pytest.raises(servable.ServingError, match=r"Latest\(a\)"):
      core.get("a")
    assert core.all_available()
  finally:
    core.stop()
