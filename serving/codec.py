"""TensorProto <-> NumPy, shared by the server and the client.

The real tensorflow_model_server answers with typed value fields (`float_val`)
by default; clients may send `tensor_content`. `to_ndarray` reads both;
`from_ndarray(..., as_float_val=True)` writes what the real server writes.
"""

import numpy as np
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import tensor_shape_pb2
from tensorflow.core.framework import types_pb2

_DTYPES = {types_pb2.DT_FLOAT: np.float32, types_pb2.DT_DOUBLE: np.float64,
           types_pb2.DT_INT32: np.int32, types_pb2.DT_INT64: np.int64}
_VALUE_FIELDS = {types_pb2.DT_FLOAT: "float_val", types_pb2.DT_DOUBLE: "double_val",
                 types_pb2.DT_INT32: "int_val", types_pb2.DT_INT64: "int64_val"}
_ENUMS = {np.dtype(v): k for k, v in _DTYPES.items()}


class CodecError(ValueError):
  """A TensorProto that cannot be decoded (dtype, shape or size mismatch)."""


def to_ndarray(proto):
  """NumPy array of a TensorProto (tensor_content or the typed *_val field)."""
  if proto.dtype not in _DTYPES:
    raise CodecError(f"unsupported dtype {types_pb2.DataType.Name(proto.dtype)}")
  shape = [d.size for d in proto.tensor_shape.dim]
  dtype = _DTYPES[proto.dtype]
  if proto.tensor_content:
    values = np.frombuffer(proto.tensor_content, dtype=dtype)
  else:
    values = np.asarray(getattr(proto, _VALUE_FIELDS[proto.dtype]), dtype=dtype)
  size = int(np.prod(shape)) if shape else 1
  if values.size == 1 and size != 1:          # a scalar broadcast, as TF allows
    values = np.full(size, values[0], dtype)
  if values.size != size:
    raise CodecError(f"tensor of shape {shape} carries {values.size} values")
  return values.reshape(shape)


def from_ndarray(array, as_float_val=False):
  """A TensorProto of `array` (tensor_content, or *_val like the real server)."""
  array = np.asarray(array)
  if array.dtype not in _ENUMS:
    raise CodecError(f"unsupported dtype {array.dtype}")
  proto = tensor_pb2.TensorProto(
      dtype=_ENUMS[array.dtype],
      tensor_shape=tensor_shape_pb2.TensorShapeProto(
          dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in array.shape]))
  if as_float_val:
    getattr(proto, _VALUE_FIELDS[proto.dtype]).extend(array.ravel().tolist())
  else:
    proto.tensor_content = np.ascontiguousarray(array).tobytes()
  return proto
