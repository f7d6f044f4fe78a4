"""One loaded SavedModel version: its signatures, metadata, warm-up and runs.

Shared by the gRPC and REST front ends. Errors are `ServingError(code,
message)` with the gRPC status code and text the real tensorflow_model_server
uses; TensorFlow's own errors keep their status code.
"""

import json
import os

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

from serving import codec

METADATA_FILE = os.path.join("assets.extra", "mdnet_metadata.json")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
  """A request the server answers with a gRPC status (REST maps it to HTTP)."""

  def __init__(self, code, message):
    super().__init__(message)
    self.code, self.message = code, message


def tf_error(e):
  """A ServingError with a TensorFlow error's own status code and its message."""
  code = _CODES.get(getattr(e, "error_code", 2), grpc.StatusCode.UNKNOWN)
  return ServingError(code, _tf_error_text(getattr(e, "message", str(e))))


def _tf_error_text(message):
  """The human part of a TF error message (drops graph/stack boilerplate)."""
  skip = ("Graph execution error", "Detected at node", "<stack traces", "\t", "[[")
  for line in message.splitlines():
    line = line.strip()
    if line and not line.startswith(skip):
      return line.split("assertion failed:", 1)[-1].strip()[:2000]
  return message[:2000]


class ServedVersion:
  """A loaded SavedModel version (path .../<version>/)."""

  def __init__(self, path, version):
    self.path, self.version = path, int(version)
    self.model = tf.saved_model.load(path)
    self.signatures = dict(self.model.signatures)
    meta = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
      meta.ParseFromString(f.read())
    self.signature_defs = meta.meta_graphs[0].signature_def
    metadata = os.path.join(path, METADATA_FILE)
    self.metadata_json = open(metadata).read() if os.path.exists(metadata) else None

  @property
  def metadata(self):
    return json.loads(self.metadata_json) if self.metadata_json else {}

  def warm_up(self):
    """Replays assets.extra/tf_serving_warmup_requests; returns how many ran."""
    path = os.path.join(self.path, WARMUP_FILE)
    if not os.path.exists(path):
      return 0
    count = 0
    for record in tf.data.TFRecordDataset(path):
      request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
      inputs = {k: codec.to_ndarray(v) for k, v in request.inputs.items()}
      self.run(request.model_spec.signature_name, inputs)
      count += 1
    return count

  def input_spec(self, signature_name):
    """{input name: tf.TensorSpec} of a signature (FAILED_PRECONDITION if unknown)."""
    name = signature_name or "serving_default"
    if name not in self.signatures:
      raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                         f'Serving signature key "{name}" not found.')
    return self.signatures[name].structured_input_signature[1]

  def run(self, signature_name, inputs, cancellable=None, max_num_steps=None,
          from_json=False):
    """Runs a signature on {name: ndarray}; returns {name: ndarray}.

    cancellable: a cancel.Cancellable that can stop the call from another
    thread. max_num_steps: refuse a larger `num_steps` input (INVALID_ARGUMENT).
    from_json: inputs parsed from JSON (REST), which has no dtypes: numbers are
    converted to the signature's dtype where that is exact. gRPC tensors must
    come with the signature's dtype, as in the real server.
    """
    spec = self.input_spec(signature_name)
    missing = sorted(set(spec) - set(inputs))
    extra = sorted(set(inputs) - set(spec))
    if missing or extra:
      raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                         f"signature {signature_name or 'serving_default'!r} needs inputs "
                         f"{sorted(spec)}; missing {missing}, unexpected {extra}")
    args = {}
    for key, tensor_spec in spec.items():
      value = np.asarray(inputs[key])
      want = tensor_spec.dtype.as_numpy_dtype
      if value.dtype != want:
        if (from_json and value.dtype.kind in "iuf"
            and np.all(np.asarray(value, want) == value)):
          value = value.astype(want)          # JSON numbers: exact conversions only
        else:
          raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                             f"input {key!r} has dtype {value.dtype}, expected "
                             f"{tensor_spec.dtype.name}")
      if not tensor_spec.shape.is_compatible_with(value.shape):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"input {key!r} has shape {list(value.shape)}, expected "
                           f"{tensor_spec.shape}")
      args[key] = tf.constant(value)
    if max_num_steps is not None and "num_steps" in args:
      steps = int(args["num_steps"])
      if steps > max_num_steps:
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT,
                           f"num_steps {steps} exceeds this server's limit of {max_num_steps} "
                           f"steps per request (--max_num_steps); split the roll-out into "
                           f"several requests")
    fn = self.signatures[signature_name or "serving_default"]
    try:
      if cancellable is None:
        outputs = fn(**args)
      else:
        with cancellable:
          outputs = fn(**args)
    except tf.errors.CancelledError as e:
      reason = cancellable.reason if cancellable is not None else None
      if reason == "deadline":
        raise ServingError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded") from e
      raise ServingError(grpc.StatusCode.CANCELLED, "Cancelled") from e
    except tf.errors.OpError as e:
      raise tf_error(e) from e
    return {k: v.numpy() for k, v in outputs.items()}
