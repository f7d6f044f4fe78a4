"""Multi-worker training for real: two `launch/train.py` processes on 127.0.0.1
joined by TF_CONFIG (MultiWorkerMirroredStrategy), against one process with the
same global batch. Each worker gets its own --workdir, as on two machines, so
the test sees which worker wrote what."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

from mdnet_tf.data import dataset
from mdnet_tf.models import mdnet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 4


def _free_ports(count):
  socks = [socket.socket() for _ in range(count)]
  for s in socks:
    s.bind(("127.0.0.1", 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


def _cmd(smoke_dir, workdir, *extra):
  return [sys.executable, os.path.join(ROOT, "launch", "train.py"), "--dt=32",
          f"--data_dir={smoke_dir}", f"--workdir={workdir}", f"--steps={STEPS}",
          "--graph_backend=xla", "--batch_size=2", f"--checkpoint_every={STEPS}",
          "--seed=1", *extra]


def _weights(workdir):
  config = mdnet.MDNetConfig.from_json(
      dataset.read_json(os.path.join(workdir, "model_config.json")))
  model = mdnet.MDNet(config)
  latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
  tf.train.Checkpoint(model=model).restore(latest).expect_partial()
  return latest, [v.numpy() for v in model.trainable_variables]


def _run_pair(smoke_dir, workdirs, envs, *extra):
  """Starts two train.py workers, waits; returns their outputs (both must succeed)."""
  procs = [subprocess.Popen(_cmd(smoke_dir, w, "--distribute=multi_worker", *extra), env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for w, e in zip(workdirs, envs)]
  outputs = []
  for proc in procs:
    try:
      outputs.append(proc.communicate(timeout=600)[0])
    finally:
      if proc.poll() is None:
        proc.kill()
  for proc, out in zip(procs, outputs):
    assert proc.returncode == 0, out[-3000:]
    assert f"done: steps 0 → {STEPS}" in out
    assert "--distribute=multi_worker, 2 replicas" in out, out[-3000:]
  return outputs


def _check_chief_only(workdirs):
  """Only the chief writes checkpoints, TensorBoard and the run files users read."""
  chief_files = set(os.listdir(workdirs[0]))
  assert {"checkpoints", "best", "tensorboard", "model_config.json", "run.json"} <= chief_files
  assert os.listdir(workdirs[0] / "tensorboard")
  assert set(os.listdir(workdirs[1])) == {"worker_scratch_1"}


def test_two_workers_on_localhost_train_like_one_process(smoke_dir, tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
  env.pop("TF_CONFIG", None)
  subprocess.run(_cmd(smoke_dir, tmp_path / "single"), check=True, env=env,
                 capture_output=True)
  _, single = _weights(tmp_path / "single")

  # TF_CONFIG, one per worker (as on two hosts).
  cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
  workdirs = [tmp_path / "tf_config0", tmp_path / "tf_config1"]
  envs = [dict(env, TF_CONFIG=json.dumps({"cluster": cluster,
                                          "task": {"type": "worker", "index": k}}))
          for k in range(2)]
  _run_pair(smoke_dir, workdirs, envs)
  _check_chief_only(workdirs)
  chief_ckpt, chief = _weights(workdirs[0])
  assert chief_ckpt.endswith(f"ckpt-{STEPS}")
  for a, b in zip(chief, single):
    # float32: the all-reduce sums the two half-batch gradients in another order.
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)



def test_slurm_variables_give_the_same_two_worker_cluster(monkeypatch):
  """--cluster=slurm: inside `srun --ntasks=2` on one node, tf.distribute's
  SlurmClusterResolver (as train.py builds it) finds both workers and each its
  own task; training then runs the same MultiWorkerMirroredStrategy as above."""
  from mdnet_tf import training  # pylint: disable=import-outside-toplevel
  for rank in (0, 1):
    for key, value in dict(SLURM_PROCID=str(rank), SLURM_STEP_NUM_TASKS="2",
                           SLURM_STEP_NODELIST="node[07-07]",
                           SLURM_STEP_TASKS_PER_NODE="2(x1)").items():
      monkeypatch.setenv(key, value)
    resolver = training.slurm_resolver(23460)
    assert resolver.cluster_spec().as_dict() == {
        "worker": ["node07:23460", "node07:23461"]}
    assert resolver.get_task_info() == ("worker", rank)
