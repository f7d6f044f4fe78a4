"""A plain multilayer perceptron as a tf.Module (checkpointable, exportable).

`substitute({variable.ref(): tensor})` makes every MLP use the given tensors in
place of those variables while the context is open: this is how tailoring
(tailoring.py) evaluates a model at adapted weights θ' = θ − α∇L and still
differentiates through θ'. The substitutes live in a context variable holding
an immutable mapping: scoped to the `with` block and to the calling thread (or
task), so concurrent predictions never see each other's weights.

`precision(tf.bfloat16)` runs the matmuls (and the activations between them)
in bfloat16 while the context is open (read when a function is traced):
inputs are cast down, weights are cast from their float32 variables, and every
MLP's output is float32 again. oneDNN runs bfloat16 matmuls on CPUs with
AVX-512 BF16 about twice as fast as float32. `precision(tf.float64)` computes
(and returns) float64 from the same float32 weights: the reference for tests
that need derivatives beyond float32 resolution.
"""

import contextlib
import contextvars
import types

import numpy as np
import tensorflow as tf

_SUBSTITUTES = contextvars.ContextVar("mlp_substitutes", default=types.MappingProxyType({}))
_PRECISION = contextvars.ContextVar("mlp_precision", default=tf.float32)
PRECISIONS = {"float32": tf.float32, "bfloat16": tf.bfloat16}


@contextlib.contextmanager
def precision(dtype):
  """Within the context, MLP matmuls compute in `dtype` (float32, bfloat16 or float64)."""
  token = _PRECISION.set(tf.as_dtype(dtype))
  try:
    yield
  finally:
    _PRECISION.reset(token)


def compute_dtype():
  """The MLP compute precision of the current context (tf.DType)."""
  return _PRECISION.get()


def matmul(x, w):
  """x @ w in the compute precision (result in that dtype); w a tensor or variable."""
  dtype = compute_dtype()
  return tf.matmul(tf.cast(x, dtype), tf.cast(w, dtype))


@contextlib.contextmanager
def substitute(values):
  """Within the context, MLPs read `values[v.ref()]` instead of variable v."""
  token = _SUBSTITUTES.set(types.MappingProxyType({**_SUBSTITUTES.get(), **values}))
  try:
    yield
  finally:
    _SUBSTITUTES.reset(token)


def value(variable):
  """The variable, or its substitute inside `substitute(...)`."""
  return _SUBSTITUTES.get().get(variable.ref(), variable)

ACTIVATIONS = {"relu": tf.nn.relu, "swish": tf.nn.silu, "sigmoid": tf.nn.sigmoid}


def glorot(shape, rng, name):
  """Glorot-uniform initialized float32 variable from a NumPy Generator."""
  limit = np.sqrt(6.0 / (shape[0] + shape[1]))
  return tf.Variable(rng.uniform(-limit, limit, shape).astype(np.float32), name=name)


class MLP(tf.Module):
  """x [B, in] -> [B, sizes[-1]]; activation after every layer but the last."""

  def __init__(self, in_size, sizes, activation="relu", seed=0, name=None):
    super().__init__(name=name)
    rng = np.random.default_rng(seed)
    self.activation = ACTIVATIONS[activation]
    self.weights, self.biases = [], []
    for k, (a, b) in enumerate(zip([in_size] + list(sizes[:-1]), sizes)):
      self.weights.append(glorot((a, b), rng, f"w{k}"))
      self.biases.append(tf.Variable(tf.zeros([b]), name=f"b{k}"))

  def __call__(self, x, first_layer_done=False):
    """Applies the MLP; with first_layer_done, x is the first layer's pre-activation.

    Computes in the precision of `precision(...)`; the output is float32
    (float64 under precision(tf.float64)).
    """
    dtype = _PRECISION.get()
    x = tf.cast(x, dtype)
    for k, (w, b) in enumerate(zip(self.weights, self.biases)):
      if k == 0 and first_layer_done:
        pre = x
      else:   # MatMul + BiasAdd (+ ReLU): fused into one oneDNN call in graph mode
        pre = tf.nn.bias_add(matmul(x, value(w)), tf.cast(value(b), dtype))
      x = pre if k == len(self.weights) - 1 else self.activation(pre)
    return tf.cast(x, tf.float64 if dtype == tf.float64 else tf.float32)
