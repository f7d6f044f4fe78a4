"""Cancel a running TensorFlow function from another thread (per request).

TensorFlow's eager runtime runs a function under a CancellationManager if one
is active when the call starts; `start_cancel()` then stops it at the next op
(a roll-out's while_loop ends with CancelledError "Loop execution was
cancelled" within one iteration). The active manager lives in one
process-global slot (tensorflow/python/eager/cancellation.py, read by
`context.call_function`), which would mix up concurrent requests; `install()`
makes that slot per thread, so each request thread cancels only its own call.
"""

import threading

from tensorflow.python.eager import cancellation  # pylint: disable=g-direct-tensorflow-import

_local = threading.local()
_installed = False


def install():
  """Makes TensorFlow's active-cancellation slot thread-local (idempotent)."""
  global _installed
  if not _installed:
    cancellation.context = lambda: getattr(_local, "manager", None)
    _installed = True


class Cancellable:
  """A per-call cancellation handle: `with handle: fn(...)`; `handle.cancel()`
  from any thread stops the call (it then raises tf.errors.CancelledError)."""

  def __init__(self):
    install()
    self.manager = cancellation.CancellationManager()
    self.reason = None

  def cancel(self, reason="cancelled"):
    if self.reason is None:
      self.reason = reason
    self.manager.start_cancel()

  @property
  def cancelled(self):
    return self.manager.is_cancelled

  def __enter__(self):
    _local.manager = self.manager
    return self

  def __exit__(self, *exc):
    _local.manager = None
