"""The one model loader: any model family from a training run, a pretrained
directory or a TF Serving SavedModel, with its physics read from the model.

A model directory (training workdir or pretrained copy) holds
  model_config.json   MDNetConfig: Δt, cutoff, mass, LJ ε/σ, family, statistics
  best/, checkpoints/ TF checkpoints (best on validation, latest)
A SavedModel base path holds <version>/saved_model.pb with
<version>/assets.extra/mdnet_metadata.json (written by exporting.py), whose
"model_config" is the same MDNetConfig. Nothing is read from folder names: Δt,
mass and potential come from the config, and `discover` finds models by
reading their configs.
"""

import dataclasses
import json
import os
import shutil
from typing import Any, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import io_utils
from mdnet_tf import models
from mdnet_tf.models import mdnet

CONFIG_FILE = "model_config.json"
RUN_FILE = "run.json"
METADATA_FILE = os.path.join("assets.extra", "mdnet_metadata.json")
REFERENCE_FILE = "reference_state.npz"


def is_savedmodel(path):
  return os.path.exists(os.path.join(path, "saved_model.pb"))


def latest_version(base):
  """<base>/<highest integer>/ if `base` is a TF Serving base path, else `base`."""
  if is_savedmodel(base) or not os.path.isdir(base):
    return base
  versions = [d for d in os.listdir(base) if d.isdigit() and is_savedmodel(os.path.join(base, d))]
  return os.path.join(base, max(versions, key=int)) if versions else base


def read_config(path):
  """The MDNetConfig of a model directory or SavedModel (base path or version)."""
  path = latest_version(path)
  if is_savedmodel(path):
    with open(os.path.join(path, METADATA_FILE)) as f:
      return mdnet.MDNetConfig.from_json(json.load(f)["model_config"])
  config_path = os.path.join(path, CONFIG_FILE)
  if not os.path.exists(config_path):
    raise errors.InputError(f"{path} is not a model: no {CONFIG_FILE} (training run or "
                            f"pretrained directory) and no saved_model.pb (SavedModel)")
  with open(config_path) as f:
    return mdnet.MDNetConfig.from_json(json.load(f))


def read_run(path):
  """run.json of a model directory ({} if absent)."""
  run_path = os.path.join(path, RUN_FILE)
  if not os.path.exists(run_path):
    return {}
  with open(run_path) as f:
    return json.load(f)


def restore(workdir, which="best", **overrides):
  """(model, checkpoint path): a model directory's best (or latest) weights.

  overrides: config fields to change for prediction, e.g. tailor="energy",
  tailor_lr=0.1 to tailor a model at prediction time only.
  """
  config = read_config(workdir)
  if is_savedmodel(latest_version(workdir)):
    raise errors.InputError(f"{workdir} is a SavedModel; restoring weights needs a training "
                            f"run or pretrained directory")
  if overrides:
    config = dataclasses.replace(config, **overrides)
  model = models.build(config)
  return model, restore_weights(model, workdir, which)


def restore_weights(model, workdir, which="best"):
  """Loads a model directory's best (or latest) weights into `model` (built from
  the same config); returns the checkpoint path."""
  order = ["best", "checkpoints"] if which == "best" else ["checkpoints", "best"]
  for sub in order:
    path = tf.train.latest_checkpoint(os.path.join(workdir, sub))
    if path:
      tf.train.Checkpoint(model=model).restore(path).expect_partial()
      return path
  raise errors.InputError(f"{workdir} has no checkpoint under best/ or checkpoints/")


class Loaded(NamedTuple):
  """A model ready to predict.

  path: the directory or SavedModel version that was loaded.
  config: its MDNetConfig (Δt, mass, cutoff, LJ parameters, family).
  model: the tf.Module (checkpoints), or None for a SavedModel.
  savedmodel: the loaded SavedModel, or None.
  source: checkpoint path or SavedModel version directory.
  """
  path: str
  config: mdnet.MDNetConfig
  model: Optional[Any]
  savedmodel: Optional[Any]
  source: str

  @property
  def name(self):
    return self.config.name


def load(path, which="best", **overrides):
  """Loads a training run, pretrained directory or SavedModel as `Loaded`."""
  version = latest_version(path)
  if is_savedmodel(version):
    if overrides:
      raise errors.InputError(f"{path} is a SavedModel: its config cannot change "
                              f"({sorted(overrides)}); pass the training or pretrained "
                              f"directory instead")
    return Loaded(version, read_config(version), None, tf.saved_model.load(version), version)
  model, checkpoint = restore(path, which, **overrides)
  return Loaded(path, model.config, model, None, checkpoint)


def discover(models_dir, family=None, tailor="none"):
  """{Δt fs: path} of the models under `models_dir` (one level deep) of a family.

  A model is any sub-directory with a model_config.json or a SavedModel; Δt
  and family come from its config. Two models of the same family, tailoring
  and Δt are an error (which one was meant is unclear).
  """
  found = {}
  if not os.path.isdir(models_dir):
    return found
  for entry in sorted(os.listdir(models_dir)):
    path = os.path.join(models_dir, entry)
    if not os.path.isdir(path):
      continue
    try:
      config = read_config(path)
    except (errors.InputError, OSError, KeyError, json.JSONDecodeError):
      continue
    if (family and config.model != family) or config.tailor != tailor:
      continue
    if config.dt_fs in found:
      raise errors.InputError(f"two {config.name} models in {models_dir}: "
                              f"{found[config.dt_fs]} and {path}")
    found[config.dt_fs] = path
  return dict(sorted(found.items()))


def families(models_dir):
  """Sorted (family, tailor) pairs of the models under `models_dir`."""
  out = set()
  for entry in sorted(os.listdir(models_dir)) if os.path.isdir(models_dir) else []:
    try:
      config = read_config(os.path.join(models_dir, entry))
    except (errors.InputError, OSError, KeyError, json.JSONDecodeError):
      continue
    out.add((config.model, config.tailor))
  return sorted(out)


def publish(workdir, out_dir, reference_state, card_json, card_text):
  """Writes a self-contained model directory from a run's best checkpoint.

  out_dir gets best/ (weights only), model_config.json, reference_state.npz
  (positions, momenta, box of one frame: lets export size its capacities
  without the dataset), run.json (card_json) and MODEL_CARD.md (card_text);
  written to a temporary directory and renamed into place.
  """
  model, _ = restore(workdir, "best")
  staging = out_dir.rstrip("/") + ".tmp"
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(os.path.join(staging, "best"))
  tf.train.Checkpoint(model=model).write(os.path.join(staging, "best", "model"))
  with open(os.path.join(staging, "best", "checkpoint"), "w") as f:
    f.write('model_checkpoint_path: "model"\nall_model_checkpoint_paths: "model"\n')
  shutil.copy(os.path.join(workdir, CONFIG_FILE), staging)
  q, p, box = reference_state
  with open(os.path.join(staging, REFERENCE_FILE), "wb") as f:
    np.savez(f, positions=np.asarray(q, np.float32), momenta=np.asarray(p, np.float32),
             box=np.asarray(box, np.float32))
  io_utils.write_json(os.path.join(staging, RUN_FILE), card_json)
  io_utils.write_text(os.path.join(staging, "MODEL_CARD.md"), card_text)
  shutil.rmtree(out_dir, ignore_errors=True)
  os.replace(staging, out_dir)
  return out_dir
