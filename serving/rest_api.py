"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest).

  GET  /v1/models/<name>[/versions/<v>]            model status
  GET  /v1/models/<name>[/versions/<v>]/metadata   signature_def (+ mdnet_metadata)
  POST /v1/models/<name>[/versions/<v>]:predict    {"signature_name": ...,
       "instances": [...]} (row format) or {"inputs": {...}} (columnar)
  GET  <prometheus path>                           metrics, if enabled

Row format stacks the instances along a new first axis (every named input
needs one value per instance); the answer is {"predictions": [...]} with the
outputs split along that axis. Columnar inputs are taken as they are and
answered as {"outputs": {...}} (or the bare value for a single output).
Errors answer {"error": "..."} with the real server's HTTP codes: 400 invalid
argument / failed precondition, 404 not found, 429 resource exhausted, 503
unavailable, 504 deadline exceeded, 500 otherwise. A request runs at most
`timeout_ms` (then it is cancelled: 504).
"""

import http.server
import json
import re
import threading
import time

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import get_model_metadata_pb2

from serving import cancel
from serving import grpc_api
from serving import servable

_ROUTE = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                    r"(?P<what>/metadata|:predict)?$")
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
               grpc.StatusCode.NOT_FOUND: 404, grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
               grpc.StatusCode.UNAVAILABLE: 503, grpc.StatusCode.DEADLINE_EXCEEDED: 504,
               grpc.StatusCode.CANCELLED: 499}


def _bad(message):
  return servable.ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def parse_predict_body(body):
  """(signature_name, {input: ndarray}, row_format) of a :predict JSON body."""
  try:
    request = json.loads(body or b"{}")
  except json.JSONDecodeError as e:
    raise _bad(f"JSON Parse error: {e}") from e
  if not isinstance(request, dict):
    raise _bad("the request body must be a JSON object")
  signature = request.get("signature_name", "")
  if ("instances" in request) == ("inputs" in request):
    raise _bad('Missing \'inputs\' or \'instances\' key (exactly one of them is needed)')
  if "inputs" in request:
    inputs = request["inputs"]
    if not isinstance(inputs, dict):
      raise _bad("'inputs' must name the signature's inputs: {\"positions\": ..., ...}")
    return signature, {k: np.asarray(v) for k, v in inputs.items()}, False
  instances = request["instances"]
  if not isinstance(instances, list) or not instances:
    raise _bad("'instances' must be a non-empty list")
  if all(isinstance(i, dict) for i in instances):
    keys = set(instances[0])
    if any(set(i) != keys for i in instances):
      raise _bad("every instance must name the same inputs")
    return signature, {k: np.asarray([i[k] for i in instances]) for k in keys}, True
  raise _bad("instances must be JSON objects naming the signature's inputs")


def _jsonable(value):
  value = np.asarray(value)
  return value.tolist()


def predict_response(outputs, row_format):
  """The JSON answer of a predict call."""
  if row_format:
    sizes = {np.asarray(v).shape[0] if np.ndim(v) else None for v in outputs.values()}
    if len(sizes) != 1 or None in sizes:
      raise _bad("the outputs have no common first (batch) dimension; use the columnar "
                 "'inputs' format for this signature")
    n = sizes.pop()
    return {"predictions": [{k: _jsonable(v[i]) for k, v in outputs.items()}
                            for i in range(n)]}
  if len(outputs) == 1:
    return {"outputs": _jsonable(next(iter(outputs.values())))}
  return {"outputs": {k: _jsonable(v) for k, v in outputs.items()}}


def status_json(states):
  """GET /v1/models/<name> answer from manager.VersionState objects."""
  return {"model_version_status": [
      {"version": str(s.version), "state": s.state,
       "status": {"error_code": "UNKNOWN" if s.error else "OK",
                  "error_message": s.error or ""}} for s in states]}


def metadata_json(served, name):
  signature_map = get_model_metadata_pb2.SignatureDefMap()
  for key, value in served.signature_defs.items():
    signature_map.signature_def[key].CopyFrom(value)
  return {"model_spec": {"name": name, "signature_name": "", "version": str(served.version)},
          "metadata": {grpc_api.SIGNATURE_DEF: json_format.MessageToDict(signature_map),
                       grpc_api.MDNET_METADATA: served.metadata}}


class RestServer:
  """A threading HTTP server answering the REST API for a manager.ServerCore."""

  def __init__(self, core, host, port, timeout_ms=30000, metrics=None, metrics_path=None,
               max_num_steps=None):
    self.core, self.timeout_ms, self.metrics = core, timeout_ms, metrics
    self.metrics_path, self.max_num_steps = metrics_path, max_num_steps
    outer = self

    class Handler(http.server.BaseHTTPRequestHandler):
      protocol_version = "HTTP/1.1"

      def log_message(self, *args):   # quiet: no line per request
        del args

      def do_GET(self):  # noqa: N802
        outer.handle(self, "GET")

      def do_POST(self):  # noqa: N802
        outer.handle(self, "POST")

    self.httpd = http.server.ThreadingHTTPServer((host, port), Handler)
    self.httpd.daemon_threads = True
    self.port = self.httpd.server_address[1]
    self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
    self.thread.start()

  def stop(self):
    self.httpd.shutdown()
    self.httpd.server_close()

  def _send(self, handler, code, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    handler.send_response(code)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)

  def handle(self, handler, method):
    path = handler.path.split("?", 1)[0]
    if self.metrics is not None and method == "GET" and path == self.metrics_path:
      body, content_type = self.metrics.exposition()
      return self._send(handler, 200, body, content_type)
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else b""
    match = _ROUTE.match(path)
    started, name, status = time.perf_counter(), None, "OK"
    try:
      if match is None:
        raise servable.ServingError(grpc.StatusCode.NOT_FOUND, f"Malformed request: {method} "
                                    f"{path}")
      name, what = match["name"], match["what"]
      version = int(match["version"]) if match["version"] else None
      if method == "POST" and what == ":predict":
        answer = self._predict(name, version, body)
      elif method == "GET" and what == "/metadata":
        answer = metadata_json(self.core.get(name, version), name)
      elif method == "GET" and what is None:
        answer = status_json(self.core.manager(name).statuses(version))
      else:
        raise servable.ServingError(grpc.StatusCode.NOT_FOUND,
                                    f"Malformed request: {method} {path}")
      self._send(handler, 200, answer)
    except servable.ServingError as e:
      status = e.code.name
      self._send(handler, HTTP_STATUS.get(e.code, 500), {"error": e.message})
    finally:
      if self.metrics is not None and name is not None and match and match["what"]:
        api = "predict" if match["what"] == ":predict" else "metadata"
        self.metrics.observe(name, api, "REST", status, started)

  def _predict(self, name, version, body):
    served = self.core.get(name, version)
    signature, inputs, row_format = parse_predict_body(body)
    handle = cancel.Cancellable()
    timer = threading.Timer(self.timeout_ms / 1000.0, handle.cancel, args=("deadline",))
    timer.start()
    try:
      outputs = served.run(signature, inputs, handle, self.max_num_steps, from_json=True)
    finally:
      timer.cancel()
    return predict_response(outputs, row_format)
