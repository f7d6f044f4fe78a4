"""Quiet start-up: TensorFlow's start-up notices are dropped from stderr, every
other line (warnings, errors, progress bars) passes through."""

import subprocess
import sys

from mdnet_tf import quiet

SCRIPT = """
import sys
from mdnet_tf import quiet
quiet.install()
import tensorflow as tf
tf.constant(1.0).numpy()
sys.stderr.write("real warning: keep me\\n")
sys.stderr.write("progress 50%\\r")
sys.stderr.flush()
"""


def _run(env_extra):
  import os  # pylint: disable=import-outside-toplevel
  env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",
                                                         "MDNET_TF_VERBOSE")}
  env.update(env_extra)
  return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                        env=env, check=True).stderr


def test_startup_notices_are_dropped_and_the_rest_kept():
  verbose = _run({"MDNET_TF_VERBOSE": "1"})
  quiet_err = _run({})
  noisy = [line for line in verbose.splitlines() if quiet.is_noise(line)]
  assert noisy, "TensorFlow printed no start-up notice here; nothing to check"
  assert not any(quiet.is_noise(line) for line in quiet_err.splitlines()), quiet_err
  assert "real warning: keep me" in quiet_err
  assert "progress 50%" in quiet_err


def test_is_noise_matches_only_known_lines():
  assert quiet.is_noise("I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. ...")
  assert quiet.is_noise("WARNING: All log messages before absl::InitializeLog() is called "
                        "are written to STDERR")
  assert not quiet.is_noise("E0000 00:00:1.0 1 op.cc:1] INVALID_ARGUMENT: box edge < 2 × cutoff")
  assert not quiet.is_noise("Traceback (most recent call last):")
