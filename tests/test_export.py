"""SavedModel export: equals the in-process model (both paths), checks inputs,
runs without XLA (the default export) like the stock TF Serving."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mdnet_tf import capacity
from mdnet_tf import exporting
from mdnet_tf import models
from mdnet_tf import partition
from mdnet_tf import signatures
from mdnet_tf.data import dataset
from mdnet_tf.models import dgl_ops
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import io as model_io
from mdnet_tf.models import segment_ops



@pytest.fixture(scope="module")
def exported(smoke_dir, smoke_export):
  """A barely trained MDNet, its graph-mode SavedModel, the test pairs, its XLA SavedModel."""
  work, path, xla_path = smoke_export
  return model_io.restore(work)[0], path, dataset.load_pairs(smoke_dir, "test", 16), xla_path


def _in_process(model, q, p, box, steps, backend):
  """Eager reference roll-out: fresh cell list and graph each step, float64 state."""
  q64, p64 = q.astype(np.float64), p.astype(np.float64)
  for _ in range(steps):
    q32, p32 = q64.astype(np.float32), p64.astype(np.float32)
    _, nl = partition.allocate(q32, box, 7.0)
    g = graph_lib.from_neighbors(tf.constant(q32), tf.constant(box), nl, 7.0,
                                 int(tf.reduce_sum(nl.counts)) // 2)
    if backend is dgl_ops:
      g = dgl_ops.to_dgl(g, len(q32))
    dq, dp = models.forward(model, tf.constant(q32), tf.constant(p32), tf.constant(box),
                            g, backend)
    q64, p64 = q64 + dq.numpy(), p64 + dp.numpy()
  return q64, p64


@pytest.mark.parametrize("backend", [segment_ops, dgl_ops])
@pytest.mark.parametrize("steps", [1, 20])
def test_saved_model_equals_in_process(exported, backend, steps):
  model, path, pairs, _ = exported
  loaded = tf.saved_model.load(path)
  q, p, box = (pairs.positions[0].astype(np.float32), pairs.momenta[0].astype(np.float32),
               pairs.box[0].astype(np.float32))
  if steps == 1:
    out = loaded.signatures["serving_default"](
        positions=tf.constant(q), momenta=tf.constant(p), box=tf.constant(box))
  else:
    out = loaded.signatures["rollout"](positions=tf.constant(q), momenta=tf.constant(p),
                                       box=tf.constant(box), num_steps=tf.constant(steps))
  ref_q, ref_p = _in_process(model, q, p, box, steps, backend)
  # float32 network, float64 accumulation on both sides: the difference is
  # float32 rounding of the per-step updates (relative 1e-6) summed over steps.
  np.testing.assert_allclose(out["positions"].numpy(), ref_q, atol=2e-5 * steps)
  np.testing.assert_allclose(out["momenta"].numpy(), ref_p,
                             atol=1e-4 * np.abs(p).max() * steps)


def test_metadata_and_warmup(exported):
  _, path, _, _ = exported
  with open(os.path.join(path, "assets.extra", "mdnet_metadata.json")) as f:
    meta = json.load(f)
  assert meta["dt_fs"] == 16.0 and meta["cutoff_angstrom"] == 7.0
  assert meta["mass_amu"] == 39.948 and meta["unit_style"] == "real"
  assert meta["normalization"]["dq_scale"] > 0 and meta["export_version"] == 1
  from tensorflow_serving.apis import prediction_log_pb2  # pylint: disable=import-outside-toplevel
  records = list(tf.data.TFRecordDataset(
      os.path.join(path, "assets.extra", "tf_serving_warmup_requests")))
  log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
  assert set(log.predict_log.request.inputs) == {"positions", "momenta", "box"}


def test_bad_input_is_invalid_argument(exported):
  _, path, pairs, _ = exported
  serve = tf.saved_model.load(path).signatures["serving_default"]
  q, p, box = (pairs.positions[0].astype(np.float32), pairs.momenta[0].astype(np.float32),
               pairs.box[0].astype(np.float32))
  bad_q = q.copy()
  bad_q[4, 1] = np.nan
  cases = [((bad_q, p, box), "positions contain NaN"),
           ((q, p[:-1], box), "momenta must have the shape of positions"),
           ((q, p, np.float32([12.0, 40.0, 40.0])), "box edge < 2 × cutoff")]
  for (a, b, c), message in cases:
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
      serve(positions=tf.constant(a), momenta=tf.constant(b), box=tf.constant(c))


def test_overflow_is_an_error_not_a_truncation(exported):
  model, _, pairs, _ = exported
  module = signatures.StepModule(
      model, capacity.Capacity.from_spec(partition.NeighborSpec(7.0, 0.0, 8, 64)), mode="xla")
  with pytest.raises(tf.errors.InvalidArgumentError, match="neighbor list overflow"):
    module.step(pairs.positions[0].astype(np.float32), pairs.momenta[0].astype(np.float32),
                pairs.box[0].astype(np.float32))


def test_rollout_nvt_holds_the_target_temperature(exported):
  _, path, pairs, _ = exported
  nvt = tf.saved_model.load(path).signatures["rollout_nvt"]
  out = nvt(positions=tf.constant(pairs.positions[0], tf.float32),
            momenta=tf.constant(pairs.momenta[0], tf.float32),
            box=tf.constant(pairs.box[0], tf.float32), num_steps=tf.constant(3),
            target_temperature=tf.constant(150.0), tau_fs=tf.constant(1e-3),
            seed=tf.constant(7))
  from mdnet_tf import integrate  # pylint: disable=import-outside-toplevel
  temperature = float(integrate.temperature(tf.cast(out["momenta"], tf.float64), 39.948))
  # τ ≪ Δt: the kinetic energy is redrawn from the canonical law at 150 K
  # (256 atoms: relative spread sqrt(2 / 765) ≈ 5 %).
  assert temperature == pytest.approx(150.0, rel=0.25)


def test_reference_state_without_the_dataset(tmp_path):
  """Pretrained models carry a reference state, so export needs no dataset."""
  with pytest.raises(FileNotFoundError, match="no reference state"):
    exporting.reference_state(str(tmp_path), "/nonexistent", 16)
  state = {"positions": np.ones((5, 3)), "momenta": np.zeros((5, 3)), "box": np.full(3, 20.0)}
  np.savez(tmp_path / model_io.REFERENCE_FILE, **state)
  (q, p, box), source = exporting.reference_state(str(tmp_path), "/nonexistent", 16)
  assert q.dtype == np.float32 and q.shape == (5, 3) and source.endswith(model_io.REFERENCE_FILE)


def _must_compile_functions(path):
  """Names of the functions in saved_model.pb marked _XlaMustCompile."""
  from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel
  proto = saved_model_pb2.SavedModel()
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    proto.ParseFromString(f.read())
  return [fn.signature.name for fn in proto.meta_graphs[0].graph_def.library.function
          if "_XlaMustCompile" in fn.attr and fn.attr["_XlaMustCompile"].b]


def test_default_export_has_no_must_compile_function(exported):
  _, path, _, xla_path = exported
  assert _must_compile_functions(path) == []
  assert _must_compile_functions(xla_path), "the checker finds XLA functions where they are"


def test_default_export_runs_with_xla_disabled_like_the_stock_server(exported):
  """Warm-up replayed with tensorflow::DisableXlaCompilation() in effect; the
  --xla export is refused under the same condition (so the switch is real)."""
  _, path, _, xla_path = exported
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  run = subprocess.run([sys.executable, os.path.join(root, "tests", "xla_disabled_check.py"),
                        path, xla_path], capture_output=True, text=True, check=False,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  if "UNAVAILABLE" in run.stdout:
    pytest.skip(f"cannot call tensorflow::DisableXlaCompilation here: {run.stdout.strip()}")
  assert "DISABLED" in run.stdout, run.stdout + run.stderr[-2000:]
  assert "DEFAULT_WARMED 1" in run.stdout, run.stdout + run.stderr[-2000:]
  assert "XLA_REFUSED" in run.stdout and "XLA compilation disabled" in run.stdout, run.stdout


def test_graph_and_xla_exports_agree(exported):
  _, path, pairs, xla_path = exported
  q, p, box = (tf.constant(x[0], tf.float32) for x in (pairs.positions, pairs.momenta, pairs.box))
  outs = [tf.saved_model.load(x).signatures["rollout"](positions=q, momenta=p, box=box,
                                                       num_steps=tf.constant(10))
          for x in (path, xla_path)]
  # Same function, different summation orders: float32 rounding per step, 10 steps.
  np.testing.assert_allclose(outs[0]["positions"].numpy(), outs[1]["positions"].numpy(),
                             atol=2e-4)
  np.testing.assert_allclose(outs[0]["momenta"].numpy(), outs[1]["momenta"].numpy(),
                             atol=1e-3 * np.abs(p.numpy()).max())


@pytest.fixture(scope="module")
def served_pretrained(pretrained16_export):
  """The pretrained 16 fs model exported with the default failure criteria."""
  return tf.saved_model.load(pretrained16_export)


def _state(liquid_frame):
  q = liquid_frame.positions.astype(np.float32)
  p = (liquid_frame.velocities * 39.948).astype(np.float32)
  return q, p, liquid_frame.box.astype(np.float32)


def _total_energy(q, p, box):
  """Independent reference: LJ energy on a dense list (float64) + kinetic energy."""
  from mdnet_tf import integrate, potentials  # pylint: disable=import-outside-toplevel
  q64, p64, box64 = (tf.constant(np.asarray(x, np.float64)) for x in (q, p, box))
  _, nl = partition.allocate(q64, box64, 7.0)
  return float(potentials.energy(q64, box64, nl, potentials.LennardJones())
               + integrate.kinetic_energy(p64, 39.948))


def test_rollout_rescaled_conserves_energy_and_momentum(served_pretrained, liquid_frame):
  q, p, box = _state(liquid_frame)
  out = served_pretrained.signatures["rollout_rescaled"](
      positions=tf.constant(q), momenta=tf.constant(p), box=tf.constant(box),
      num_steps=tf.constant(50))
  assert int(out["steps_done"]) == 50 and int(out["failure"]) == 0
  e0 = _total_energy(q, p, box)
  total = float(out["potential_energy"] + out["kinetic_energy"])
  # Rescaling is exact in float64; the start energy is taken from float32 inputs on both sides.
  assert total == pytest.approx(e0, rel=1e-9, abs=1e-9)
  # The returned state's own energy agrees to float32 rounding of the returned arrays.
  assert _total_energy(out["positions"], out["momenta"], box) == pytest.approx(e0, abs=2e-2)
  assert int(out["infeasible_rescales"]) == 0
  np.testing.assert_allclose(out["momenta"].numpy().sum(0), p.sum(0), atol=1e-4)
  plain = served_pretrained.signatures["rollout"](
      positions=tf.constant(q), momenta=tf.constant(p), box=tf.constant(box),
      num_steps=tf.constant(50))
  assert abs(float(plain["potential_energy"] + plain["kinetic_energy"]) - e0) > abs(total - e0)


def test_served_failure_returns_the_last_good_state(served_pretrained, liquid_frame):
  q, p, box = _state(liquid_frame)
  close = q.copy()
  close[1] = close[0] + np.float32([2.0, 0.0, 0.0])     # a pair 2 Å apart (< 0.73 σ)
  out = served_pretrained.signatures["rollout"](
      positions=tf.constant(close), momenta=tf.constant(p), box=tf.constant(box),
      num_steps=tf.constant(20))
  # A pair at 2 Å is far outside the training data: the step either leaves it too close
  # (failure 3) or throws it apart hot (failure 2, which the model since 2026-12-02 does);
  # either way nothing is stepped and the start state comes back.
  assert int(out["steps_done"]) == 0 and int(out["failure"]) in (2, 3)
  np.testing.assert_array_equal(out["positions"].numpy(), close)
  # NVT towards 10 K from an 80 K liquid: outside [10/3, 30] K after the first step.
  out = served_pretrained.signatures["rollout_nvt"](
      positions=tf.constant(q), momenta=tf.constant(p), box=tf.constant(box),
      num_steps=tf.constant(20), target_temperature=tf.constant(10.0),
      tau_fs=tf.constant(1000.0), seed=tf.constant(1))
  assert int(out["steps_done"]) == 0 and int(out["failure"]) == 2
  np.testing.assert_array_equal(out["momenta"].numpy(), p)
  # A healthy roll-out of the same liquid: every step done, thermo of the final state.
  out = served_pretrained.signatures["rollout"](
      positions=tf.constant(q), momenta=tf.constant(p), box=tf.constant(box),
      num_steps=tf.constant(10))
  assert int(out["steps_done"]) == 10 and int(out["failure"]) == 0
  from mdnet_tf import integrate  # pylint: disable=import-outside-toplevel
  t_final = float(integrate.temperature(tf.cast(out["momenta"], tf.float64), 39.948))
  assert float(out["temperature"]) == pytest.approx(t_final, rel=1e-5)
  assert 2.5 < float(out["min_distance"]) < 7.0
