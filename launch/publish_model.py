"""Copies a trained run's best checkpoint into a self-contained model directory
with a model card (command, data, training time, its Table 1 row).

  python launch/publish_model.py --workdir=runs/mdnet_dt16 --out_dir=pretrained/mdnet_dt16
"""

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import tensorflow as tf  # noqa: E402

import numpy as np  # noqa: E402

from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf import exporting  # noqa: E402
from mdnet_tf import io_utils  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.models import mdnet  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Training run directory.", required=True)
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Model directory to write.", required=True)
_SPLIT = flags.DEFINE_string("split", "test", "Split for the model card's Table 1 row.")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  run = dataset.read_json(os.path.join(_WORKDIR.value, "run.json"))
  model, ckpt = evaluation.restore_model(_WORKDIR.value, "best")
  config = model.config
  dt = int(config.dt_fs)
  paper_name = {"mdnet": "MDNet", "egnn": "EGNN"}.get(config.model, "MDNet")
  pairs = dataset.load_pairs(run["data_dir"], _SPLIT.value, dt)
  rmse_q, rmse_v = evaluation.model_rmse(model, pairs)
  verlet_q, verlet_v = evaluation.verlet_rmse(pairs)
  staging = _OUT_DIR.value.rstrip("/") + ".tmp"
  shutil.rmtree(staging, ignore_errors=True)
  os.makedirs(os.path.join(staging, "best"))
  tf.train.Checkpoint(model=model).write(os.path.join(staging, "best", "model"))
  with open(os.path.join(staging, "best", "checkpoint"), "w") as f:
    f.write('model_checkpoint_path: "model"\nall_model_checkpoint_paths: "model"\n')
  shutil.copy(os.path.join(_WORKDIR.value, "model_config.json"), staging)
  # A reference state lets export size its capacities without the dataset.
  with open(os.path.join(staging, exporting.REFERENCE_FILE), "wb") as f:
    np.savez(f, positions=pairs.positions[0].astype(np.float32),
             momenta=pairs.momenta[0].astype(np.float32), box=pairs.box[0].astype(np.float32))
  card = {**run, "source_checkpoint": ckpt, "evaluated_on": f"{run['data_dir']} {_SPLIT.value}",
          "table1_row": {"dt_fs": dt, config.model: [rmse_q, rmse_v], "verlet": [verlet_q, verlet_v],
                         "paper": evaluation.PAPER_TABLE1[paper_name].get(dt)}}
  io_utils.write_json(os.path.join(staging, "run.json"), card)
  hours = run.get("train_seconds_total", 0.0) / 3600
  paper = evaluation.PAPER_TABLE1[paper_name].get(dt)
  text = f"""# {config.model}, Δt = {dt} fs

- Command: `{run['command']}`
- Data: preset `{run['preset']}` (seed {run['data_seed']}), {run.get('train_pairs', '?')} training pairs
  (forward and time-reversed), LAMMPS ground truth; see the dataset's manifest.json.
- Model: {mdnet.count_parameters(model)} parameters; m2 = {config.m2}; cutoff {config.cutoff_angstrom} Å;
  mass {config.mass_amu} g/mol; units `{config.unit_style}`; normalization statistics in model_config.json.
- Training: {run.get('steps_done', '?')} steps of batch size {run.get('options', {}).get('batch_size', 1)} \
on a 2-core CPU (message passing: {run.get('options', {}).get('graph_backend', '?')}; two training
  runs shared the cores), {hours:.2f} h of training time; best checkpoint on validation loss
  (`{os.path.basename(ckpt)}`). {run.get('note', '')}
- One-step RMSE on the {_SPLIT.value} split ({len(pairs)} pairs), positions Å / velocities Å/fs:

| | positions [Å] | velocities [Å/fs] |
|---|---|---|
| {config.model} (this model) | {rmse_q:.2e} | {rmse_v:.2e} |
| Verlet, one step of {dt} fs | {verlet_q:.2e} | {verlet_v:.2e} |
| {paper_name} (paper) | {('%.2e' % paper[0]) if paper else '—'} | {('%.2e' % paper[1]) if paper else '—'} |

Load it with `mdnet_tf.evaluation.restore_model("{_OUT_DIR.value}")`.
"""
  io_utils.write_text(os.path.join(staging, "MODEL_CARD.md"), text)
  shutil.rmtree(_OUT_DIR.value, ignore_errors=True)
  os.replace(staging, _OUT_DIR.value)
  print(text)


if __name__ == "__main__":
  app.run(main)
