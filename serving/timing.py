"""Serving speed for the benchmark: a SavedModel in-process and through this
repository's TF Serving compatible server, measured side by side.

`measure_served` exports a model to a temporary base path, times its `rollout`
signature in-process, then starts serving/model_server.py on a free port and
times single steps and roll-outs through the gRPC client (medians after
warm-up; seconds per learned step).
"""

import os
import socket
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from mdnet_tf import benchmarking
from mdnet_tf import exporting
from serving import rollout_client

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model_server.py")


def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def start_server(base, name="mdnet"):
  """serving/model_server.py in a subprocess; returns (process, client)."""
  port = free_port()
  proc = subprocess.Popen(
      [sys.executable, SERVER, f"--port={port}", f"--model_name={name}",
       f"--model_base_path={base}"],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  client = rollout_client.RolloutClient(f"127.0.0.1:{port}", name, deadline_s=600,
                                        max_retries=60)
  return proc, client


def measure_served(model_dir, state, steps_per_call, repeats):
  """s per step: SavedModel rollout in-process, served single steps, served rollout."""
  q, p, box = (np.asarray(x, np.float32) for x in state)
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    path = exporting.export(model_dir, tmp, 1)
    fn = tf.saved_model.load(path).signatures["rollout"]
    args = dict(positions=tf.constant(q), momenta=tf.constant(p), box=tf.constant(box),
                num_steps=tf.constant(steps_per_call))
    out["savedmodel_in_process_rollout"] = benchmarking.median_seconds(
        lambda: fn(**args)["positions"].numpy(), repeats, warmup=1)[0] / steps_per_call
    proc, client = start_server(tmp)
    try:
      client.advance(q, p, box, 1)   # waits for the server (retries UNAVAILABLE)
      out["served_single_step"] = benchmarking.median_seconds(
          lambda: client.advance(q, p, box, 1), repeats, warmup=1)[0]
      out["served_rollout"] = benchmarking.median_seconds(
          lambda: client.advance(q, p, box, steps_per_call), repeats,
          warmup=1)[0] / steps_per_call
    finally:
      client.close()
      proc.kill()
      proc.wait()
  return out
