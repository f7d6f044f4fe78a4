"""TF Serving's gRPC services (tensorflow_serving.apis) over a manager.ServerCore.

PredictionService.Predict / GetModelMetadata and ModelService.GetModelStatus
with the real server's method paths, status codes and messages. A Predict call
runs under a cancel.Cancellable that gRPC's termination callback fires: a
client that cancels, or whose deadline passes, stops its roll-out within one
step and frees the worker thread.
"""

import contextlib
import json
import time

import grpc
from google.protobuf import wrappers_pb2
from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.apis import get_model_status_pb2
from tensorflow_serving.apis import model_service_pb2_grpc
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import cancel
from serving import codec
from serving import servable

# GetModelMetadata fields: the real server's, and the model's mdnet_metadata.json
# (a StringValue holding the JSON text: Δt, mass, units, potential, criteria).
SIGNATURE_DEF, MDNET_METADATA = "signature_def", "mdnet_metadata"
_STATE_ENUM = get_model_status_pb2.ModelVersionStatus.State


def _version(model_spec):
  return model_spec.version.value if model_spec.HasField("version") else None


def _abort(context, error):
  context.abort(error.code, error.message)


def deadline_watch(context, cancellable):
  """Cancels `cancellable` when the RPC ends early (client cancel or deadline)."""

  def on_done():
    if context.time_remaining() is not None and context.time_remaining() <= 0:
      cancellable.cancel("deadline")
    else:
      cancellable.cancel("cancelled")

  context.add_callback(on_done)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):

  def __init__(self, core, metrics=None, max_num_steps=None):
    self.core, self.metrics, self.max_num_steps = core, metrics, max_num_steps

  @contextlib.contextmanager
  def _answering(self, model_spec, api, context):
    """Runs a request body: a ServingError aborts the RPC with its status; the
    request is counted in the metrics either way."""
    started, status = time.perf_counter(), "OK"
    try:
      yield
    except servable.ServingError as e:
      status = e.code.name
      _abort(context, e)
    finally:
      if self.metrics is not None:
        self.metrics.observe(model_spec.name, api, "GRPC", status, started)

  def Predict(self, request, context):  # noqa: N802  (gRPC method name)
    with self._answering(request.model_spec, "predict", context):
      served = self.core.get(request.model_spec.name, _version(request.model_spec))
      try:
        inputs = {k: codec.to_ndarray(v) for k, v in request.inputs.items()}
      except codec.CodecError as e:
        raise servable.ServingError(grpc.StatusCode.INVALID_ARGUMENT, str(e)) from e
      handle = cancel.Cancellable()
      deadline_watch(context, handle)
      outputs = served.run(request.model_spec.signature_name, inputs, handle,
                           self.max_num_steps)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = served.version
    response.model_spec.signature_name = request.model_spec.signature_name or "serving_default"
    for key, value in outputs.items():
      response.outputs[key].CopyFrom(codec.from_ndarray(value, as_float_val=True))
    return response

  def GetModelMetadata(self, request, context):  # noqa: N802
    with self._answering(request.model_spec, "metadata", context):
      served = self.core.get(request.model_spec.name, _version(request.model_spec))
      fields = list(request.metadata_field)
      unknown = [f for f in fields if f not in (SIGNATURE_DEF, MDNET_METADATA)]
      if not fields or unknown:
        raise servable.ServingError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Metadata field(s) {unknown or fields} not supported; supported: "
            f"{SIGNATURE_DEF}, {MDNET_METADATA}")
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = served.version
    if SIGNATURE_DEF in fields:
      signature_map = get_model_metadata_pb2.SignatureDefMap()
      for key, value in served.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(value)
      response.metadata[SIGNATURE_DEF].Pack(signature_map)
    if MDNET_METADATA in fields:
      response.metadata[MDNET_METADATA].Pack(
          wrappers_pb2.StringValue(value=served.metadata_json or json.dumps({})))
    return response


def version_status_protos(states):
  """ModelVersionStatus protos of manager.VersionState objects."""
  out = []
  for s in states:
    status = get_model_status_pb2.ModelVersionStatus(
        version=s.version, state=_STATE_ENUM.Value(s.state))
    if s.error:
      status.status.error_code = grpc.StatusCode.UNKNOWN.value[0]
      status.status.error_message = s.error
    out.append(status)
  return out


class ModelService(model_service_pb2_grpc.ModelServiceServicer):

  def __init__(self, core):
    self.core = core

  def GetModelStatus(self, request, context):  # noqa: N802
    try:
      states = self.core.manager(request.model_spec.name).statuses(
          _version(request.model_spec))
    except servable.ServingError as e:
      _abort(context, e)
    return get_model_status_pb2.GetModelStatusResponse(
        model_version_status=version_status_protos(states))
