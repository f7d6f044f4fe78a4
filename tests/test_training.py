"""Training: loss goes down, both backends take the same step, resume after a kill."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import training
from mdnet_tf.data import dataset
from mdnet_tf.models import mdnet
from mdnet_tf.models import normalization

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def smoke_setup(smoke_dir):
  pairs = dataset.load_pairs(smoke_dir, "train", 16)
  stats = normalization.NormStats.from_pairs(pairs, 39.948, 7.0)
  config = mdnet.MDNetConfig(dt_fs=16.0, stats=stats)
  train = training.prepare(pairs, 7.0)
  val = training.prepare(dataset.load_pairs(smoke_dir, "validation", 16), 7.0)
  return config, train, val


def _trainer(smoke_setup, workdir, steps, backend="xla", init_seed=0, lr=5e-3,
             checkpoint_every=2, **options):
  config, train, val = smoke_setup
  options = training.TrainOptions(steps=steps, seed=0, learning_rate=lr, graph_backend=backend,
                                  checkpoint_every=checkpoint_every, **options)
  return training.Trainer(mdnet.MDNet(config, seed=init_seed), train, val, options,
                          str(workdir))


def test_loss_decreases_when_fitting(smoke_setup, tmp_path):
  trainer = _trainer(smoke_setup, tmp_path, steps=60, lr=2e-3, checkpoint_every=60,
                     validate_every=60)
  train = smoke_setup[1]
  before = trainer.validate(train)["loss"]
  trainer.fit(progress=False)
  after = trainer.validate(train)["loss"]
  assert after < 0.8 * before, (before, after)


def test_dgl_and_xla_take_the_same_step(smoke_setup, tmp_path):
  a = _trainer(smoke_setup, tmp_path / "a", steps=2, backend="xla")
  b = _trainer(smoke_setup, tmp_path / "b", steps=2, backend="dgl")
  la = a.fit(progress=False)["losses"]
  lb = b.fit(progress=False)["losses"]
  np.testing.assert_allclose(la, lb, rtol=1e-4)
  for va, vb in zip(a.model.trainable_variables, b.model.trainable_variables):
    np.testing.assert_allclose(va.numpy(), vb.numpy(), atol=1e-5)


def test_resume_continues_the_same_trajectory(smoke_setup, tmp_path):
  full = _trainer(smoke_setup, tmp_path / "full", steps=8).fit(progress=False)
  first = _trainer(smoke_setup, tmp_path / "split", steps=8).fit(progress=False, stop_after=3)
  # A fresh process builds a fresh model (other initial weights) and optimizer.
  second = _trainer(smoke_setup, tmp_path / "split", steps=8, init_seed=123).fit(
      progress=False)
  assert (first["start_step"], first["end_step"]) == (0, 3)
  assert (second["start_step"], second["end_step"]) == (3, 8)
  np.testing.assert_allclose(first["losses"] + second["losses"], full["losses"], rtol=1e-5)


def _train_cmd(smoke_dir, workdir, steps):
  return [sys.executable, os.path.join(ROOT, "launch", "train.py"), "--dt=32",
          f"--data_dir={smoke_dir}", f"--workdir={workdir}", f"--steps={steps}",
          "--graph_backend=xla", "--checkpoint_every=3", "--seed=1"]


def _final_weights(workdir):
  config = mdnet.MDNetConfig.from_json(
      dataset.read_json(os.path.join(workdir, "model_config.json")))
  model = mdnet.MDNet(config)
  ckpt = tf.train.Checkpoint(model=model)
  ckpt.restore(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))).expect_partial()
  return [v.numpy() for v in model.trainable_variables]


def test_train_py_resumes_after_sigkill(smoke_dir, tmp_path):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  steps = 40
  subprocess.run(_train_cmd(smoke_dir, tmp_path / "ref", steps), check=True, env=env,
                 capture_output=True)
  killed = tmp_path / "killed"
  proc = subprocess.Popen(_train_cmd(smoke_dir, killed, steps), env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  ckpt_dir = killed / "checkpoints"
  while time.time() < deadline:   # kill as soon as a mid-run checkpoint exists
    latest = tf.train.latest_checkpoint(str(ckpt_dir)) if ckpt_dir.exists() else None
    if latest and int(latest.rsplit("-", 1)[1]) >= 6:
      break
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  latest = tf.train.latest_checkpoint(str(ckpt_dir))
  assert latest is not None and int(latest.rsplit("-", 1)[1]) < steps, latest
  out = subprocess.run(_train_cmd(smoke_dir, killed, steps), check=True, env=env,
                       capture_output=True, text=True).stdout
  assert f"→ {steps}" in out and "done: steps 0 →" not in out
  for a, b in zip(_final_weights(tmp_path / "ref"), _final_weights(killed)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_mirrored_strategy_on_two_logical_cpus_equals_one_device(smoke_dir, tmp_path):
  """MirroredStrategy over 2 logical CPUs, global batch 2 = one device, batch 2."""
  import json  # pylint: disable=import-outside-toplevel
  out = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tests", "distributed_check.py"), smoke_dir,
       str(tmp_path)], check=True, capture_output=True, text=True,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert result["replicas"] == 2
  np.testing.assert_allclose(result["mirrored"][0], result["single"][0], rtol=1e-4)
  for a, b in zip(result["mirrored"][1], result["single"][1]):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_train_py_symplectic_flags_are_stored_and_a_resume_cannot_change_them(smoke_dir,
                                                                             tmp_path):
  """--model=mdnet_symplectic --generating_function=composition --dt=64
  --density_channels=2 --symplectic_width=8: the run's config carries the form,
  the many-body channels, the width and the default switched baseline; a
  composition trains on the pairs 32 fs apart (its half steps; the statistics
  are theirs) and validates the solved 64 fs step; resuming the run with other
  channels is refused with a usage message (the other refusals:
  test_run_config_refuses_what_a_run_cannot_change)."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
  cmd = [sys.executable, os.path.join(ROOT, "launch", "train.py"), "--dt=64",
         "--model=mdnet_symplectic", "--graph_backend=graph", f"--data_dir={smoke_dir}",
         f"--workdir={tmp_path}", "--steps=2", "--checkpoint_every=2", "--seed=0"]
  out = subprocess.run(cmd + ["--density_channels=2", "--symplectic_width=8",
                              "--generating_function=composition"],
                       check=True, env=env, capture_output=True, text=True)
  assert "× 32 fs" in out.stdout and "Δt = 64 fs" in out.stdout, out.stdout[-800:]
  config = mdnet.MDNetConfig.from_json(
      dataset.read_json(os.path.join(tmp_path, "model_config.json")))
  assert (config.density_channels, config.lj_switch_angstrom, config.symplectic_width,
          config.generating_function, config.dt_fs) == (2, 0.5, 8, "composition", 64.0)
  half = dataset.load_pairs(smoke_dir, "train", 32)
  expected = normalization.NormStats.from_pairs(half, config.mass_amu, config.cutoff_angstrom)
  assert config.stats.dp_scale == pytest.approx(expected.dp_scale, rel=1e-12)
  out = subprocess.run(cmd + ["--density_channels=3", "--steps=4"], env=env,
                       capture_output=True, text=True)
  assert out.returncode != 0 and "density_channels=2" in out.stderr, out.stderr[-500:]
  assert "Traceback" not in out.stderr, out.stderr[-500:]


def test_run_config_refuses_what_a_run_cannot_change(smoke_dir, tmp_path):
  """run_config.resolve, as train.py calls it: a new composition model takes
  its statistics from the pairs Δt/2 apart and the switched baseline; the
  resumed run gets the stored config; resuming with other δS fields or
  another Δt, or starting a model of another width, form or family from its
  weights, is refused with the conflicting values; so are δS fields for
  another family, a zero width and a composition of odd Δt."""
  from mdnet_tf import run_config  # pylint: disable=import-outside-toplevel
  from mdnet_tf.models import symplectic  # pylint: disable=import-outside-toplevel
  work = str(tmp_path / "run")
  config = run_config.resolve(work, smoke_dir, 64, symplectic.FAMILY,
                              {"density_channels": 2, "symplectic_width": 8,
                               "generating_function": "composition"})
  half = dataset.load_pairs(smoke_dir, "train", 32)
  expected = normalization.NormStats.from_pairs(half, config.mass_amu, config.cutoff_angstrom)
  assert config.stats.dp_scale == pytest.approx(expected.dp_scale, rel=1e-12)
  assert config.lj_switch_angstrom == symplectic.LJ_SWITCH
  training.save_config(work, config, {})
  resumed = run_config.resolve(work, smoke_dir, 64, symplectic.FAMILY, {"density_channels": 2})
  assert resumed.to_json() == config.to_json()
  new = lambda name: str(tmp_path / name)
  refusals = [
      ((work, smoke_dir, 64, symplectic.FAMILY, {"density_channels": 3}),
       "density_channels=2"),
      ((work, smoke_dir, 64, symplectic.FAMILY, {"generating_function": "midpoint"}),
       "generating_function=composition"),
      ((work, smoke_dir, 32, symplectic.FAMILY), "Δt = 64 fs"),
      ((new("b"), smoke_dir, 64, symplectic.FAMILY, {"symplectic_width": 16}, work),
       "width 8"),
      ((new("c"), smoke_dir, 64, symplectic.FAMILY, {"generating_function": "midpoint"}, work),
       "composition model"),
      ((new("d"), smoke_dir, 64, "mdnet", {}, work), "is a mdnet_symplectic model"),
      ((new("e"), smoke_dir, 64, "mdnet", {"density_channels": 1}), "not --model=mdnet's"),
      ((new("f"), smoke_dir, 16, symplectic.FAMILY, {"symplectic_width": 0}),
       "--symplectic_width ≥ 1"),
      ((new("g"), smoke_dir, 33, symplectic.FAMILY, {"generating_function": "composition"}),
       "even --dt"),
  ]
  for args, message in refusals:
    with pytest.raises(errors.InputError, match=re.escape(message)):
      run_config.resolve(*args)


def test_a_new_splitting_model_scales_what_verlet_substeps_miss(smoke_dir, tmp_path):
  """run_config.resolve for --generating_function=splitting: the output scales
  are the RMS of b − a, a = Verlet over Δt/2 from the true start and b = Verlet
  back over Δt/2 from the true end, here recomputed with MDNet's Verlet
  baseline code (baseline.verlet_delta, truncated force: --lj_switch=0) at
  Δt = 64 fs in one 32 fs substep per half; the substep defaults to
  symplectic.SPLITTING_SUBSTEP with the truncated force, and is refused for
  other forms or ≤ 0."""
  from mdnet_tf import run_config  # pylint: disable=import-outside-toplevel
  from mdnet_tf.models import baseline  # pylint: disable=import-outside-toplevel
  from mdnet_tf.models import symplectic  # pylint: disable=import-outside-toplevel
  default = run_config.resolve(str(tmp_path / "d"), smoke_dir, 64, symplectic.FAMILY,
                               {"generating_function": "splitting"})
  assert default.splitting_substep_fs == symplectic.SPLITTING_SUBSTEP
  assert default.lj_switch_angstrom == 0.0          # the data's truncated force
  config = run_config.resolve(str(tmp_path / "s"), smoke_dir, 64, symplectic.FAMILY,
                              {"generating_function": "splitting", "lj_switch_angstrom": 0.0,
                               "splitting_substep_fs": 32.0})
  pairs = dataset.load_pairs(smoke_dir, "train", 64)
  lj, mass = config.lj(), config.mass_amu
  sq_q, sq_p = [], []
  for k in range(min(len(pairs), 32)):
    box = tf.constant(pairs.box[k], tf.float64)

    def half(q, p):
      q, p = tf.constant(q, tf.float64), tf.constant(p, tf.float64)
      dq, dp = baseline.verlet_delta(q, p, box, baseline.forces_at(q, box, lj), 32.0, mass, lj)
      return (q + dq).numpy(), (p + dp).numpy()

    qa, pa = half(pairs.positions[k], pairs.momenta[k])
    qb, pb = half(pairs.next_positions[k], -pairs.next_momenta[k])
    sq_q.append(np.mean(np.square(qb - qa)))
    sq_p.append(np.mean(np.square(-pb - pa)))
  assert config.stats.dq_scale == pytest.approx(np.sqrt(np.mean(sq_q)), rel=1e-9)
  assert config.stats.dp_scale == pytest.approx(np.sqrt(np.mean(sq_p)), rel=1e-9)
  full = normalization.NormStats.from_pairs(pairs, mass, config.cutoff_angstrom)
  assert config.stats.dq_scale < 0.5 * full.dq_scale        # C is smaller than the step
  for overrides, message in (({"splitting_substep_fs": 16.0}, "--generating_function=split"),
                             ({"generating_function": "splitting", "splitting_substep_fs": 0.0},
                              "--splitting_substep > 0")):
    with pytest.raises(errors.InputError, match=re.escape(message)):
      run_config.resolve(str(tmp_path / "x"), smoke_dir, 64, symplectic.FAMILY, overrides)
