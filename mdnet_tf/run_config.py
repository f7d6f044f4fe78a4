"""The model config a training run starts from, checked against its command.

Three cases, in this order: the workdir already holds a run (resuming: its
stored config, statistics included, is authoritative and the command may not
change it); --init_from names a model (its config, which must fit the dataset
and the command); or a new model with the statistics of the dataset's training
pairs. `launch/train.py` calls `resolve`; every refusal is an InputError whose
message names the conflicting values.
"""

import dataclasses
import os

from mdnet_tf import errors
from mdnet_tf.data import dataset
from mdnet_tf.models import baseline as baseline_lib
from mdnet_tf.models import io
from mdnet_tf.models import mdnet
from mdnet_tf.models import normalization
from mdnet_tf.models import symplectic

# The config fields of mdnet_symplectic's δS that a command may set (train.py's
# --lj_switch, --density_channels, --symplectic_width, --generating_function,
# --splitting_substep).
SYMPLECTIC_FIELDS = ("lj_switch_angstrom", "density_channels", "symplectic_width",
                     "generating_function", "splitting_substep_fs")


def check_symplectic_overrides(model, overrides):
  """Refuses δS fields for another model family and out-of-range values.

  overrides: {field of SYMPLECTIC_FIELDS: value} given on the command line."""
  unknown = set(overrides) - set(SYMPLECTIC_FIELDS)
  if unknown:
    raise errors.InputError(f"not a δS field of {symplectic.FAMILY}: {sorted(unknown)}")
  if overrides and model != symplectic.FAMILY:
    raise errors.InputError(f"--lj_switch, --density_channels, --symplectic_width and "
                            f"--generating_function set --model={symplectic.FAMILY}'s δS, not "
                            f"--model={model}'s")
  numbers = [v for k, v in overrides.items() if k != "generating_function"]
  if (any(v < 0 for v in numbers) or overrides.get("symplectic_width", 1) < 1
      or overrides.get("splitting_substep_fs", 1) <= 0):
    raise errors.InputError(f"--lj_switch and --density_channels are ≥ 0, --symplectic_width "
                            f"≥ 1, --splitting_substep > 0; got {overrides}")


def training_dt(dt, generating_function):
  """Δt of the training pairs, fs: the model's, or half of it for a composition
  (each of its half steps is fitted to true states Δt/2 apart)."""
  if generating_function == symplectic.COMPOSITION:
    if dt % 2:
      raise errors.InputError(f"--generating_function=composition needs an even --dt, got "
                              f"{dt}")
    return dt // 2
  return dt


def _resumed(workdir, dt, overrides):
  config = io.read_config(workdir)
  config.check_dt(dt)
  for field, value in overrides.items():
    if value != getattr(config, field):
      raise errors.InputError(f"{workdir} was started with {field}={getattr(config, field)}; "
                              f"a resumed run cannot change it")
  return config


def _initialized(init_from, manifest, dt, model, overrides):
  config = io.read_config(init_from)
  config.check_dt(dt)
  if config.model != model:
    raise errors.InputError(f"--init_from {init_from} is a {config.model} model, not "
                            f"--model={model}")
  potential = manifest["potential"]
  ours = (manifest["mass_amu"], potential["epsilon"], potential["sigma"], potential["cutoff"])
  theirs = (config.mass_amu, config.lj_epsilon, config.lj_sigma, config.cutoff_angstrom)
  if any(abs(a - b) > 1e-9 * max(1.0, abs(a)) for a, b in zip(ours, theirs)):
    raise errors.InputError(f"--init_from {init_from} was trained on mass, ε, σ, cutoff "
                            f"{theirs}, the dataset has {ours}")
  width = overrides.get("symplectic_width", config.symplectic_width)
  if width != config.symplectic_width:
    raise errors.InputError(f"--init_from {init_from} has δS width {config.symplectic_width}; "
                            f"its weights cannot start a model of width {width}")
  form = overrides.get("generating_function", config.generating_function)
  if form != config.generating_function:
    raise errors.InputError(f"--init_from {init_from} is a {config.generating_function} "
                            f"model; its weights cannot start a {form} one")
  return dataclasses.replace(config, **overrides)


def _new(data_dir, manifest, dt, model, overrides, baseline, **fields):
  defaults = {}
  if model == symplectic.FAMILY:
    defaults["lj_switch_angstrom"] = symplectic.LJ_SWITCH
    if overrides.get("generating_function") == symplectic.SPLITTING:
      # Only C is solved: its substeps take the data's own truncated force
      # (the switched one leaves them 3× further from it; README, "A third form").
      defaults.update(splitting_substep_fs=symplectic.SPLITTING_SUBSTEP, lj_switch_angstrom=0.0)
    elif "splitting_substep_fs" in overrides:
      raise errors.InputError("--splitting_substep is an option of "
                              "--generating_function=splitting")
  potential = manifest["potential"]
  pairs = dataset.load_pairs(data_dir, "train",
                             training_dt(dt, overrides.get("generating_function")))
  stats = normalization.NormStats.from_pairs(pairs, manifest["mass_amu"], potential["cutoff"])
  config = mdnet.MDNetConfig(dt_fs=float(dt), stats=stats, cutoff_angstrom=potential["cutoff"],
                             mass_amu=manifest["mass_amu"], lj_epsilon=potential["epsilon"],
                             lj_sigma=potential["sigma"], model=model,
                             baseline=baseline or baseline_lib.FREE_FLIGHT,
                             **fields, **{**defaults, **overrides})
  if config.baseline == baseline_lib.VERLET:   # the network's outputs scale Verlet's error
    s_q, s_p = baseline_lib.residual_scales(pairs, config.mass_amu, config.lj())
  elif config.generating_function == symplectic.SPLITTING:   # ... what Verlet's substeps miss
    s_q, s_p = symplectic.splitting_scales(symplectic.GeneratingFunction(config), pairs)
  else:
    return config
  return dataclasses.replace(config, stats=dataclasses.replace(stats, dq_scale=s_q, dp_scale=s_p))


def _same_baseline(config, baseline, where):
  if baseline is not None and baseline != config.baseline:
    raise errors.InputError(f"{where} has baseline {config.baseline!r}; a run from it cannot "
                            f"change it to {baseline!r}")
  return config


def resolve(workdir, data_dir, dt, model, overrides=None, init_from=None, baseline=None,
            **fields):
  """The MDNetConfig of a training run in `workdir` on the dataset `data_dir`.

  dt: the run's Δt, fs (int). model: the family (mdnet, egnn, simple,
  mdnet_symplectic). overrides: δS fields given on the command line (checked by
  check_symplectic_overrides). init_from: a model directory to start from.
  baseline: MDNet's baseline (models/baseline.py; None: the model's, or
  free_flight for a new one); a resumed or initialized run cannot change it.
  fields: the other config fields of a new run (m2, tailor, tailor_lr); a
  resumed or initialized run keeps its model's."""
  overrides = dict(overrides or {})
  check_symplectic_overrides(model, overrides)
  if baseline is not None:
    baseline_lib.check(baseline, model)
  if os.path.exists(os.path.join(workdir, io.CONFIG_FILE)):
    return _same_baseline(_resumed(workdir, dt, overrides), baseline, workdir)
  manifest = dataset.load_manifest(data_dir)
  if init_from:
    return _same_baseline(_initialized(init_from, manifest, dt, model, overrides), baseline,
                          f"--init_from {init_from}")
  return _new(data_dir, manifest, dt, model, overrides, baseline, **fields)
