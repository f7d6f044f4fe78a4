"""Shared fixtures: quiet TensorFlow, a LAMMPS-generated smoke dataset."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import shutil  # noqa: E402

import filelock  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

# Failure criteria for roll-outs of a barely trained network, which heats up
# within tens of steps: loose enough that the numerics can be compared.
LOOSE = dict(temperature_factor=100.0, min_distance_sigma=0.3)


def built_once(tmp_path_factory, name, build):
  """A directory built once per test run and shared by the pytest-xdist workers.

  The first worker to ask calls build(path) under a file lock; the others wait
  for it and reuse the result (pytest-xdist's recipe: the parent of a worker's
  basetemp belongs to this run only). Without xdist: a fresh tmp directory.
  Users must treat the directory as read-only (copy it to change it).
  """
  if os.environ.get("PYTEST_XDIST_WORKER") is None:
    path = str(tmp_path_factory.mktemp(name))
    build(path)
    return path
  root = tmp_path_factory.getbasetemp().parent
  path, done = root / name, root / f"{name}.done"
  with filelock.FileLock(str(root / f"{name}.lock")):
    if not done.exists():
      shutil.rmtree(path, ignore_errors=True)
      path.mkdir()
      build(str(path))
      done.touch()
  return str(path)


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory):
  """A `smoke` dataset generated once per test run with LAMMPS (seconds)."""
  from mdnet_tf.data import generate  # pylint: disable=import-outside-toplevel
  return built_once(tmp_path_factory, "smoke", lambda out: generate.generate(
      "smoke", out, seed=0, workers=2, progress=False))


@pytest.fixture(scope="session")
def liquid_frame(smoke_dir):
  """First NVE frame (LAMMPS-equilibrated liquid, 256 atoms) of a test trajectory."""
  from mdnet_tf.data import dataset, dump  # pylint: disable=import-outside-toplevel
  manifest = dataset.load_manifest(smoke_dir)
  name = manifest["split"]["test"][0]
  record = next(t for t in manifest["trajectories"] if t["name"] == name)
  return dump.read_dump(os.path.join(smoke_dir, record["dump"]))[0]


@pytest.fixture(scope="session")
def pretrained16_export(tmp_path_factory):
  """pretrained/mdnet_dt16 exported once per test run (default export, default
  failure criteria): the version directory. Tests that change a model base path
  copy it first."""
  from mdnet_tf import exporting  # pylint: disable=import-outside-toplevel
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  base = built_once(tmp_path_factory, "pretrained16", lambda out: exporting.export(
      os.path.join(root, "pretrained", "mdnet_dt16"), out, 1))
  return os.path.join(base, "1")


@pytest.fixture(scope="session")
def smoke_export(smoke_dir, tmp_path_factory):
  """An MDNet trained for 5 steps on the smoke pairs (an untrained one blows up
  within 20 steps, too soon to compare roll-outs), built once per test run:
  (its model directory, SavedModel <base>/1 in the default graph
  mode, <base>/2 in XLA mode), both with the LOOSE failure criteria. Restore the
  model in-process with models.io.restore(workdir)."""
  from mdnet_tf import exporting, models, training  # pylint: disable=import-outside-toplevel

  def build(root):
    work, base = os.path.join(root, "work"), os.path.join(root, "models")
    pairs, config = smoke_config(smoke_dir)
    data = training.prepare(pairs, 7.0)
    training.Trainer(models.build(config), data, data, training.TrainOptions(steps=5),
                     work).fit(progress=False)
    training.save_config(work, config, {"data_dir": smoke_dir, "command": "test"})
    exporting.export(work, base, 1, **LOOSE)
    exporting.export(work, base, 2, mode="xla", **LOOSE)

  root = built_once(tmp_path_factory, "smoke_export", build)
  return (os.path.join(root, "work"), os.path.join(root, "models", "1"),
          os.path.join(root, "models", "2"))


def brute_force_neighbors(positions, box, cutoff):
  """O(N²) minimum-image reference: list of neighbor-index sets."""
  q = np.asarray(positions, np.float64)
  d = q[:, None] - q[None]
  d -= box * np.round(d / box)
  r2 = (d ** 2).sum(-1)
  np.fill_diagonal(r2, np.inf)
  return [set(np.nonzero(row < cutoff ** 2)[0].tolist()) for row in r2]


def smoke_config(smoke_dir, **overrides):
  """(train FramePairs at 16 fs, a model config with their statistics)."""
  from mdnet_tf.data import dataset  # pylint: disable=import-outside-toplevel
  from mdnet_tf.models import mdnet, normalization  # pylint: disable=import-outside-toplevel
  pairs = dataset.load_pairs(smoke_dir, "train", 16)
  stats = normalization.NormStats.from_pairs(pairs, 39.948, 7.0)
  return pairs, mdnet.MDNetConfig(dt_fs=16.0, stats=stats, **overrides)


def assert_training_reduces_loss(smoke_dir, workdir, steps, learning_rate, **overrides):
  """Trains a fresh model on the smoke pairs; its loss must fall below 0.8×
  (validated before and after only: per-epoch validation was 40 % of the time)."""
  from mdnet_tf import models, training  # pylint: disable=import-outside-toplevel
  pairs, config = smoke_config(smoke_dir, **overrides)
  data = training.prepare(pairs, 7.0)
  trainer = training.Trainer(models.build(config), data, data,
                             training.TrainOptions(steps=steps, learning_rate=learning_rate,
                                                   validate_every=steps),
                             str(workdir))
  before = trainer.validate(data)["loss"]
  trainer.fit(progress=False)
  after = trainer.validate(data)["loss"]
  assert after < 0.8 * before, (before, after)


def central_difference(loss, variable, index, h):
  """(loss(v + h e_index) − loss(v − h e_index)) / 2h for one entry of a
  tf.Variable; the variable is restored afterwards."""
  original = variable.numpy()
  bumped = original.copy()
  bumped[index] += h
  variable.assign(bumped)
  up = float(loss())
  bumped[index] -= 2 * h
  variable.assign(bumped)
  down = float(loss())
  variable.assign(original)
  return (up - down) / (2 * h)


def predict_request(name, inputs, signature="serving_default", version=None):
  """A TF Serving PredictRequest of {input name: ndarray} (tensor_content)."""
  from tensorflow_serving.apis import predict_pb2  # pylint: disable=import-outside-toplevel
  from serving import codec  # pylint: disable=import-outside-toplevel
  request = predict_pb2.PredictRequest()
  request.model_spec.name = name
  request.model_spec.signature_name = signature
  if version is not None:
    request.model_spec.version.value = version
  for key, value in inputs.items():
    request.inputs[key].CopyFrom(codec.from_ndarray(value))
  return request
