"""Run by test_export.py in a subprocess: loads SavedModels the way the stock
tensorflow_model_server does, with XLA compilation disabled in TensorFlow's C++
runtime (model_servers/main.cc calls tensorflow::DisableXlaCompilation()), and
replays their warm-up requests.

  python tests/xla_disabled_check.py <default export> <xla export>

Prints "DISABLED", then "DEFAULT_WARMED <n>" (or the error), then
"XLA_REFUSED <message>" or "XLA_RAN" for the --xla export.
"""

import ctypes
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

SYMBOL = "_ZN10tensorflow21DisableXlaCompilationEv"   # tensorflow::DisableXlaCompilation()


def main():
  default, xla = sys.argv[1:3]
  lib = os.path.join(os.path.dirname(tf.__file__), "libtensorflow_cc.so.2")
  try:
    getattr(ctypes.CDLL(lib), SYMBOL)()
  except (OSError, AttributeError) as e:
    print(f"UNAVAILABLE {e}")
    return
  print("DISABLED", flush=True)
  from serving.servable import ServedVersion  # pylint: disable=import-outside-toplevel
  try:
    print(f"DEFAULT_WARMED {ServedVersion(default, 1).warm_up()}", flush=True)
  except Exception as e:  # pylint: disable=broad-except
    print(f"DEFAULT_FAILED {str(e)[:500]}", flush=True)
  try:
    ServedVersion(xla, 1).warm_up()
    print("XLA_RAN", flush=True)
  except Exception as e:  # pylint: disable=broad-except
    print(f"XLA_REFUSED {str(e)[:500]}", flush=True)


if __name__ == "__main__":
  main()
