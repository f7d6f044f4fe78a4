"""Trains MDNet for one Δt (one model per Δt, as in the paper).

  python launch/train.py --dt=16
  python launch/train.py --dt=64 --graph_backend=xla --epochs=30 --workdir=runs/mdnet_dt64
  python launch/train.py --dt=128 --graph_backend=graph --rollout_steps=3 --noise=0.1
  python launch/train.py --dt=128 --graph_backend=graph --rollout_steps=3 \
      --init_from=pretrained/mdnet_dt128 --learning_rate=1e-3   # fine-tune

With defaults, a missing dataset is generated first (the `small` preset). The
run resumes from its last checkpoint when started again with the same workdir.
TensorBoard: `tensorboard --logdir <workdir>/tensorboard`.
"""

import contextlib
import os
import shlex
import sys

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import errors  # noqa: E402
from mdnet_tf import models  # noqa: E402
from mdnet_tf import multistep  # noqa: E402
from mdnet_tf import run_config  # noqa: E402
from mdnet_tf import training  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.data import generate  # noqa: E402
from mdnet_tf.data import presets  # noqa: E402
from mdnet_tf.models import io  # noqa: E402
from mdnet_tf.models import mdnet  # noqa: E402
from mdnet_tf.models import symplectic  # noqa: E402

_DT = flags.DEFINE_integer("dt", 16, "Time step Δt of the model, fs.")
_MODEL = flags.DEFINE_enum("model", "mdnet", ["mdnet", "egnn", "simple", "mdnet_symplectic"],
                           "Model to train (mdnet_symplectic: --graph_backend=graph).")
_TAILOR = flags.DEFINE_enum("tailor", "none", ["none", "temperature", "energy", "learned"],
                            "Noether meta-tailoring (SIMPLE) of the model's prediction.")
_TAILOR_LR = flags.DEFINE_float("tailor_lr", 1e-3, "Inner SGD step size of tailoring.")
_BASELINE = flags.DEFINE_enum(
    "baseline", None, ["free_flight", "verlet"], "mdnet: the step the network's output is "
    "added to: the paper's free flight pΔt/m (default for a new run) or one velocity-Verlet "
    "step, whose error the network then learns (graph/DGL backends; not under XLA).")
_LJ_SWITCH = flags.DEFINE_float(
    "lj_switch", None, "mdnet_symplectic: width, Å, over which the baseline LJ force is "
    f"switched to zero before r_c (default {symplectic.LJ_SWITCH:g} for a new run, 0 for a "
    "splitting one; an "
    "--init_from run keeps its model's value unless this is given; 0: truncated).")
_DENSITY = flags.DEFINE_integer(
    "density_channels", None, "mdnet_symplectic: radial channels of δS's many-body term "
    "(default 0 for a new run: pair and kinetic terms only; an --init_from run keeps its "
    "model's value unless this is given, and adding channels starts them at zero).")
_WIDTH = flags.DEFINE_integer(
    "symplectic_width", None, "mdnet_symplectic: width of the two hidden layers of δS's "
    "MLPs (default 64 for a new run; an --init_from run keeps its model's width).")
_GENERATING = flags.DEFINE_enum(
    "generating_function", None, list(symplectic.GENERATING_FUNCTIONS),
    "mdnet_symplectic: S of the midpoints (default for a new run), or the symmetric "
    "composition of a learned type-2 half step A with its reversed inverse ρA⁻¹ρ, "
    "trained on pairs Δt/2 apart (the dataset must hold them), or Verlet substeps around "
    "a learned near-identity map (splitting); an --init_from run keeps its model's form.")
_SUBSTEP = flags.DEFINE_float(
    "splitting_substep", None, "mdnet_symplectic, --generating_function=splitting: the "
    f"Verlet substep of its outer half steps, fs (default {symplectic.SPLITTING_SUBSTEP:g}).")
_BACKEND = flags.DEFINE_enum("graph_backend", "dgl", ["dgl", "xla", "graph"],
                             "Message passing: DGL (eager, the paper's stack), TF-native "
                             "segment ops compiled with XLA, or compact graphs in graph mode "
                             "on short true trajectories (--rollout_steps, --noise).")
_ROLLOUT_STEPS = flags.DEFINE_integer("rollout_steps", 1, "graph backend: steps k of the "
                                      "unrolled loss (1 = the paper's one-step loss).")
_STARTS = flags.DEFINE_integer("starts_per_trajectory", None, "graph backend: sequence starts "
                               "per NVE trajectory (default: every dump frame; the paper's "
                               "pairs use 10).")
_NOISE = flags.DEFINE_float("noise", 0.0, "graph backend: std of the noise on the start state, "
                            "in units of the one-step target scales.")
_MOMENTUM_WEIGHT = flags.DEFINE_float(
    "momentum_weight", 1.0, "Weight of the momentum term of the normalized loss (1 = the "
    "paper's). A momentum error moves every later position, so above 1 trades one-step "
    "position accuracy for roll-out accuracy (README, 'Training for roll-outs').")
_PRESET = flags.DEFINE_enum("preset", "small", sorted(presets.PRESETS),
                            "Dataset preset (generated if --data_dir is missing).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Dataset (default data/<preset>).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default runs/<model>_dt<dt>).")
_EPOCHS = flags.DEFINE_integer("epochs", 20, "Epochs over the training pairs "
                               "(the paper trains 1000 on a GPU).")
_STEPS = flags.DEFINE_integer("steps", None, "Total steps (overrides --epochs).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialization and data order.")
_LR = flags.DEFINE_float("learning_rate", 5e-3, "Initial learning rate (paper: 5e-3).")
_DECAY = flags.DEFINE_float("decay_rate", 0.8, "Exponential decay rate (paper: 0.8).")
_DECAY_STEPS = flags.DEFINE_integer("decay_steps", None,
                                    "Steps per decay by decay_rate (default: 1/20 of the run).")
_CKPT_EVERY = flags.DEFINE_integer("checkpoint_every", 100, "Steps between checkpoints.")
_M2 = flags.DEFINE_integer("m2", 32, "Width m2 of the messages φ_e (L_i is m2 × 7).")
_INIT_FROM = flags.DEFINE_string(
    "init_from", None, "Start a new run from this model's weights and normalization "
    "(training run or pretrained directory; fresh optimizer and schedule). Ignored when "
    "the workdir already has a checkpoint (the run resumes).")
_MAX_PAIRS = flags.DEFINE_integer("max_train_pairs", None, "Use only this many training pairs.")
_BATCH = flags.DEFINE_integer("batch_size", 1, "Global batch of frame pairs (paper: 1).")
_DISTRIBUTE = flags.DEFINE_enum(
    "distribute", "none", ["none", "mirrored", "multi_worker"],
    "Data parallelism (XLA path): MirroredStrategy over local devices, or "
    "MultiWorkerMirroredStrategy configured by the TF_CONFIG environment variable.")
_CLUSTER = flags.DEFINE_enum(
    "cluster", "tf_config", ["tf_config", "slurm"], "multi_worker: how workers find each "
    "other: the TF_CONFIG variable (one per host, or set by Kubeflow's TFJob), or Slurm's "
    "variables inside `srun` (tf.distribute's SlurmClusterResolver).")
_PORT_BASE = flags.DEFINE_integer("slurm_port_base", 8888, "--cluster=slurm: first port of "
                                  "the workers on each node.")
_LOGICAL_CPUS = flags.DEFINE_integer("logical_cpus", None,
                                     "Split the CPU into this many logical devices "
                                     "(to try --distribute=mirrored without GPUs).")


def _strategy():
  """The tf.distribute strategy the flags ask for (None: plain single device)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if _LOGICAL_CPUS.value:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * _LOGICAL_CPUS.value)
  if _DISTRIBUTE.value == "none":
    return None
  if _DISTRIBUTE.value == "multi_worker":
    if _CLUSTER.value == "slurm":
      return tf.distribute.MultiWorkerMirroredStrategy(
          cluster_resolver=training.slurm_resolver(_PORT_BASE.value))
    return tf.distribute.MultiWorkerMirroredStrategy()
  gpus = tf.config.list_logical_devices("GPU")
  devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
  return tf.distribute.MirroredStrategy(devices)


def _symplectic_overrides():
  """The δS config fields given by --lj_switch / --density_channels /
  --symplectic_width / --generating_function / --splitting_substep."""
  given = {"lj_switch_angstrom": _LJ_SWITCH.value, "density_channels": _DENSITY.value,
           "symplectic_width": _WIDTH.value, "generating_function": _GENERATING.value,
           "splitting_substep_fs": _SUBSTEP.value}
  return {k: v for k, v in given.items() if v is not None}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  strategy = _strategy()
  if strategy is not None:
    resolver = getattr(strategy, "cluster_resolver", None)
    where = (f", {resolver.task_type} {resolver.task_id}" if resolver is not None
             and resolver.task_type else "")
    print(f"tf.distribute: --distribute={_DISTRIBUTE.value}, {strategy.num_replicas_in_sync} "
          f"replicas{where}")
  data_dir = _DATA_DIR.value or os.path.join("data", _PRESET.value)
  if not os.path.exists(os.path.join(data_dir, "manifest.json")):
    print(f"no dataset at {data_dir}: generating the {_PRESET.value!r} preset first")
    generate.generate(_PRESET.value, data_dir)
  manifest = dataset.load_manifest(data_dir)
  suffix = "" if _TAILOR.value == "none" else f"_tailor_{_TAILOR.value}"
  workdir = _WORKDIR.value or os.path.join("runs", f"{_MODEL.value}{suffix}_dt{_DT.value}")
  val_pairs = dataset.load_pairs(data_dir, "validation", _DT.value)
  try:
    config = run_config.resolve(workdir, data_dir, _DT.value, _MODEL.value,
                                _symplectic_overrides(), _INIT_FROM.value, _BASELINE.value,
                                m2=_M2.value,
                                tailor=_TAILOR.value, tailor_lr=_TAILOR_LR.value)
  except errors.InputError as e:
    raise app.UsageError(str(e)) from e
  train_dt = run_config.training_dt(_DT.value, config.generating_function)
  if _BACKEND.value == "graph":
    sequences = dataset.load_sequences(data_dir, "train", train_dt, _ROLLOUT_STEPS.value,
                                       _STARTS.value, _SEED.value)
    print(f"{len(sequences)} training sequences of {_ROLLOUT_STEPS.value} × {train_dt:g} fs "
          f"(forward and time-reversed); {len(val_pairs)} validation pairs")
    train = multistep.prepare(sequences)
  else:
    if _ROLLOUT_STEPS.value != 1:
      raise app.UsageError("--rollout_steps > 1 needs --graph_backend=graph")
    train_pairs = dataset.load_pairs(data_dir, "train", train_dt)
    print(f"preparing graphs for {len(train_pairs)} train / {len(val_pairs)} validation pairs")
    train = training.prepare(train_pairs, config.cutoff_angstrom, _MAX_PAIRS.value)
  validation = training.prepare(val_pairs, config.cutoff_angstrom)
  steps = _STEPS.value or _EPOCHS.value * (len(train) // _BATCH.value)
  options = training.TrainOptions(
      steps=steps, seed=_SEED.value, learning_rate=_LR.value, decay_rate=_DECAY.value,
      decay_steps=_DECAY_STEPS.value, checkpoint_every=_CKPT_EVERY.value,
      graph_backend=_BACKEND.value, batch_size=_BATCH.value, noise=_NOISE.value,
      momentum_weight=_MOMENTUM_WEIGHT.value)
  with strategy.scope() if strategy else contextlib.nullcontext():
    model = models.build(config, seed=_SEED.value)
    trainer = training.Trainer(model, train, validation, options, workdir, strategy)
    if _INIT_FROM.value and not trainer.manager.latest_checkpoint:
      path = io.restore_weights(model, _INIT_FROM.value)
      print(f"starting from the weights of {path}")
  run_path = os.path.join(workdir, "run.json")
  previous = dataset.read_json(run_path) if os.path.exists(run_path) else {}
  run = {"command": " ".join(shlex.quote(a) for a in sys.argv), "data_dir": data_dir,
         "preset": manifest["preset"]["name"], "data_seed": manifest["seed"],
         "options": options.__dict__, "parameters": mdnet.count_parameters(model),
         "train_pairs": len(train), "rollout_steps": _ROLLOUT_STEPS.value,
         "starts_per_trajectory": _STARTS.value, "init_from": _INIT_FROM.value,
         "train_seconds_total": previous.get("train_seconds_total", 0.0)}
  if trainer.chief:   # multi-worker: the other workers write nothing users read
    training.save_config(workdir, config, run)
  print(f"{_MODEL.value} Δt = {_DT.value} fs, {mdnet.count_parameters(model)} parameters, "
        f"{steps} steps ({steps * _BATCH.value / len(train):.1f} epochs of {len(train)} "
        f"training items), "
        f"backend {_BACKEND.value}, workdir {workdir}")
  result = trainer.fit()
  run.update(train_seconds_total=run["train_seconds_total"] + result["seconds"],
             steps_done=result["end_step"])
  if trainer.chief:
    training.save_config(workdir, config, run)
  metrics = trainer.validate()
  seconds = result["seconds"]
  done = result["end_step"] - result["start_step"]
  print(f"\ndone: steps {result['start_step']} → {result['end_step']} in {seconds:.0f} s "
        f"({seconds / max(done, 1):.3f} s/step)")
  print(f"validation: loss {metrics['loss']:.4g}, position RMSE "
        f"{metrics['rmse_positions']:.3e} Å, velocity RMSE "
        f"{metrics['rmse_velocities']:.3e} Å/fs (best loss {result['best_validation_loss']:.4g})")
  if trainer.chief:
    print(f"checkpoints: {workdir}/checkpoints (latest), {workdir}/best (best validation)")
  else:
    print(f"non-chief worker: its checkpoints are scratch ({trainer.manager.directory}); "
          f"the chief's are the run's")


if __name__ == "__main__":
  app.run(main)
