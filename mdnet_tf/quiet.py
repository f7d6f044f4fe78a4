"""Quiet start-up: drop TensorFlow's known start-up notices from stderr, keep the rest.

TensorFlow 2.21 writes a handful of informational lines straight to file
descriptor 2 while it is imported, before its own log settings apply (the
oneDNN notice, "failed call to cuInit" on machines without a GPU, the CPU
feature notice; TF_CPP_MIN_LOG_LEVEL does not silence them, see
tensorflow/tensorflow#100442). `install()` — called by the entry points
before they import TensorFlow — sets the usual log level and routes fd 2
through a filter thread that drops exactly those lines (matched by their
text) and passes every other byte through unchanged, so real warnings and
errors still show. Importing this module does nothing.
"""

import atexit
import os
import sys
import threading

NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions:",
    "Unable to register cuDNN factory", "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory", "computation placer already registered",
    "TF-TRT Warning: Could not find TensorRT",
)
_LOG_PREFIXES = (b"I0000", b"W0000", b"E0000", b"WARNING: All", b"To enable")
_installed = False


def is_noise(line):
  """Whether a stderr line is one of TensorFlow's known start-up notices."""
  return any(pattern in line for pattern in NOISE)


def install():
  """Routes fd 2 through the noise filter (idempotent; no-op if disabled).

  Set MDNET_TF_VERBOSE=1 to see everything TensorFlow prints.
  """
  global _installed
  if _installed or os.environ.get("MDNET_TF_VERBOSE") == "1":
    return
  _installed = True
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  real = os.dup(2)
  read_end, write_end = os.pipe()
  os.dup2(write_end, 2)
  os.close(write_end)

  def pump():
    pending = b""
    while True:
      chunk = os.read(read_end, 65536)
      if not chunk:
        break
      pending += chunk
      *lines, pending = pending.split(b"\n")
      for line in lines:
        if not is_noise(line.decode("utf-8", "replace")):
          os.write(real, line + b"\n")
      # Progress bars redraw with \r and no newline: pass such partial lines on at
      # once, unless they may be the start of a TensorFlow log line.
      if pending and not pending.startswith(_LOG_PREFIXES):
        os.write(real, pending)
        pending = b""
    if pending and not is_noise(pending.decode("utf-8", "replace")):
      os.write(real, pending)
    os.close(read_end)

  thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
  thread.start()

  def restore():
    try:
      sys.stderr.flush()
    except (OSError, ValueError):
      pass
    os.dup2(real, 2)          # closes the pipe's last write end: the pump reaches EOF
    thread.join(timeout=2.0)

  atexit.register(restore)
