"""A TensorFlow Serving compatible gRPC server for exported MDNet SavedModels.

  python serving/model_server.py --port=8500 --model_name=mdnet --model_base_path=models/mdnet

The real `tensorflow_model_server` cannot be installed from the registries this
project reaches, so this server registers TF Serving's own gRPC services from
`tensorflow_serving.apis` (PredictionService: Predict, GetModelMetadata;
ModelService: GetModelStatus): the method paths are those of the real server,
and a client written against `PredictionServiceStub` works with both.

Like the real server it serves the highest integer version under the base path
(and picks up new versions while running), replays
assets.extra/tf_serving_warmup_requests before a version goes live, answers
outputs in `float_val`, accepts large messages (--max_message_mb), answers bad
requests with INVALID_ARGUMENT / NOT_FOUND and keeps serving. It binds
127.0.0.1 unless --host says otherwise.
"""

import concurrent.futures
import os
import threading
import time

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_status_pb2  # noqa: E402
from tensorflow_serving.apis import model_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_log_pb2  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

from serving import codec  # noqa: E402

_PORT = flags.DEFINE_integer("port", 8500, "gRPC port.")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind (0.0.0.0 for all).")
_NAME = flags.DEFINE_string("model_name", "mdnet", "Name clients ask for.")
_BASE = flags.DEFINE_string("model_base_path", "models/mdnet", "Directory of versions.")
_POLL = flags.DEFINE_float("file_system_poll_wait_seconds", 2.0,
                           "How often to look for new versions.")
_MAX_MB = flags.DEFINE_integer("max_message_mb", 2047, "Largest gRPC message, MiB.")
_WORKERS = flags.DEFINE_integer("workers", 4, "Concurrent request threads.")


class ServedVersion:
  """One loaded SavedModel version and its signatures."""

  def __init__(self, path, version):
    self.path, self.version = path, version
    self.model = tf.saved_model.load(path)
    self.signatures = dict(self.model.signatures)
    meta = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
      meta.ParseFromString(f.read())
    self.signature_defs = meta.meta_graphs[0].signature_def

  def warm_up(self):
    """Replays assets.extra/tf_serving_warmup_requests; returns how many ran."""
    path = os.path.join(self.path, "assets.extra", "tf_serving_warmup_requests")
    if not os.path.exists(path):
      return 0
    count = 0
    for record in tf.data.TFRecordDataset(path):
      log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
      self.run(log.predict_log.request)
      count += 1
    return count

  def run(self, request):
    """Runs a PredictRequest; returns {name: ndarray}. Raises ValueError/KeyError."""
    name = request.model_spec.signature_name or "serving_default"
    if name not in self.signatures:
      raise KeyError(f"Serving signature name: \"{name}\" not found in signature def; "
                     f"available: {sorted(self.signatures)}")
    fn = self.signatures[name]
    spec = fn.structured_input_signature[1]
    missing = sorted(set(spec) - set(request.inputs))
    extra = sorted(set(request.inputs) - set(spec))
    if missing or extra:
      raise ValueError(f"signature {name!r} needs inputs {sorted(spec)}; missing "
                       f"{missing}, unexpected {extra}")
    args = {}
    for key, tensor_spec in spec.items():
      try:
        value = codec.to_ndarray(request.inputs[key])
      except codec.CodecError as e:
        raise ValueError(f"input {key!r}: {e}") from e
      if value.dtype != tensor_spec.dtype.as_numpy_dtype:
        raise ValueError(f"input {key!r} has dtype {value.dtype}, expected "
                         f"{tensor_spec.dtype.name}")
      if not tensor_spec.shape.is_compatible_with(value.shape):
        raise ValueError(f"input {key!r} has shape {list(value.shape)}, expected "
                         f"{tensor_spec.shape}")
      args[key] = tf.constant(value)
    return {k: v.numpy() for k, v in fn(**args).items()}


class ModelManager:
  """Watches the base path and keeps the highest version loaded and warm."""

  def __init__(self, name, base_path, poll_seconds):
    self.name, self.base_path, self.poll_seconds = name, base_path, poll_seconds
    self.current = None
    self.lock = threading.Lock()
    self._stop = threading.Event()
    self.poll()
    self._thread = threading.Thread(target=self._loop, daemon=True)
    self._thread.start()

  def _versions(self):
    if not os.path.isdir(self.base_path):
      return []
    return sorted(int(d) for d in os.listdir(self.base_path) if d.isdigit()
                  and os.path.exists(os.path.join(self.base_path, d, "saved_model.pb")))

  def poll(self):
    versions = self._versions()
    if not versions or (self.current and versions[-1] == self.current.version):
      return
    version = versions[-1]
    try:
      served = ServedVersion(os.path.join(self.base_path, str(version)), version)
      warmed = served.warm_up()
    except Exception as e:  # keep serving the old version   # pylint: disable=broad-except
      logging.error("could not load version %d: %s", version, e)
      return
    with self.lock:
      self.current = served
    print(f"serving {self.name} version {version} ({warmed} warm-up requests replayed)",
          flush=True)

  def _loop(self):
    while not self._stop.wait(self.poll_seconds):
      self.poll()

  def stop(self):
    self._stop.set()

  def get(self, model_spec, context):
    """The served version a ModelSpec asks for, or aborts with NOT_FOUND."""
    if model_spec.name != self.name:
      context.abort(grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Latest({model_spec.name})")
    with self.lock:
      current = self.current
    if current is None:
      context.abort(grpc.StatusCode.UNAVAILABLE, f"no version of {self.name} loaded yet")
    if model_spec.HasField("version") and model_spec.version.value != current.version:
      context.abort(grpc.StatusCode.NOT_FOUND,
                    f"Servable not found for request: Specific({self.name}, "
                    f"{model_spec.version.value})")
    if model_spec.version_label:
      context.abort(grpc.StatusCode.NOT_FOUND, "version labels are not configured")
    return current


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):

  def __init__(self, manager):
    self.manager = manager

  def Predict(self, request, context):  # noqa: N802  (gRPC method name)
    served = self.manager.get(request.model_spec, context)
    try:
      outputs = served.run(request)
    except KeyError as e:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e.args[0]))
    except ValueError as e:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
    except tf.errors.InvalidArgumentError as e:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT, _tf_error_text(e.message))
    response = predict_pb2.PredictResponse()
    response.model_spec.name = self.manager.name
    response.model_spec.version.value = served.version
    response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
    for key, value in outputs.items():
      response.outputs[key].CopyFrom(codec.from_ndarray(value, as_float_val=True))
    return response

  def GetModelMetadata(self, request, context):  # noqa: N802
    served = self.manager.get(request.model_spec, context)
    if list(request.metadata_field) != ["signature_def"]:
      context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                    "metadata_field must be exactly ['signature_def']")
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, value in served.signature_defs.items():
      signature_map.signature_def[key].CopyFrom(value)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = self.manager.name
    response.model_spec.version.value = served.version
    response.metadata["signature_def"].Pack(signature_map)
    return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):

  def __init__(self, manager):
    self.manager = manager

  def GetModelStatus(self, request, context):  # noqa: N802
    served = self.manager.get(request.model_spec, context)
    status = get_model_status_pb2.ModelVersionStatus(
        version=served.version, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
    return get_model_status_pb2.GetModelStatusResponse(model_version_status=[status])


def _tf_error_text(message):
  """The human part of a TF error message (drops graph/stack boilerplate)."""
  skip = ("Graph execution error", "Detected at node", "<stack traces", "\t", "[[")
  for line in message.splitlines():
    line = line.strip()
    if line and not line.startswith(skip):
      return line.split("assertion failed:", 1)[-1].strip()[:2000]
  return message[:2000]


def serve(name, base_path, host="127.0.0.1", port=8500, poll_seconds=2.0, max_mb=2047,
          workers=4):
  """Starts the server; returns (grpc server, manager)."""
  manager = ModelManager(name, base_path, poll_seconds)
  limit = max_mb * 1024 * 1024
  server = grpc.server(
      concurrent.futures.ThreadPoolExecutor(max_workers=workers),
      options=[("grpc.max_send_message_length", limit),
               ("grpc.max_receive_message_length", limit)])
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      PredictionService(manager), server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager), server)
  bound = server.add_insecure_port(f"{host}:{port}")
  if not bound:
    raise OSError(f"cannot bind {host}:{port}")
  server.start()
  return server, manager


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  server, manager = serve(_NAME.value, _BASE.value, _HOST.value, _PORT.value, _POLL.value,
                          _MAX_MB.value, _WORKERS.value)
  print(f"model server for {_NAME.value!r} on {_HOST.value}:{_PORT.value} "
        f"(base path {_BASE.value})", flush=True)
  try:
    while True:
      time.sleep(3600)
  except KeyboardInterrupt:
    pass
  finally:
    manager.stop()
    server.stop(grace=2).wait()


if __name__ == "__main__":
  app.run(main)
