"""Copies a trained run's best checkpoint into a self-contained model directory
with a model card (command, data, training time, its Table 1 row and, given
their JSON results on this model, its roll-out metrics).

  python launch/publish_model.py --workdir=runs/mdnet_dt16 --out_dir=pretrained/mdnet_dt16 \
      --note="Trained while a second run shared the 2 cores." \
      --figure2=runs/f2_16/figure2.json --error_cost=runs/ec16/error_cost.json
"""


from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf import paper  # noqa: E402
from mdnet_tf import reporting  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.models import io as model_io  # noqa: E402
from mdnet_tf.models import mdnet  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Training run directory.", required=True)
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Model directory to write.", required=True)
_SPLIT = flags.DEFINE_string("split", "test", "Split for the model card's Table 1 row.")
_NOTE = flags.DEFINE_string("note", None, "Conditions of the training run worth stating "
                            "(e.g. shared cores); stored in run.json and the card.")
_FIGURE2 = flags.DEFINE_list("figure2", [], "figure2.json files of roll-outs of this model.")
_ERROR_COST = flags.DEFINE_string("error_cost", None, "error_cost.json of this model.")
_STABILITY = flags.DEFINE_list("stability", [], "stability.json files of long runs of this "
                                "model (e.g. one per system).")

def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  run = model_io.read_run(_WORKDIR.value)
  if _NOTE.value:
    run["note"] = _NOTE.value
  model, checkpoint = model_io.restore(_WORKDIR.value, "best")
  config = model.config
  dt = int(config.dt_fs)
  pairs = dataset.load_pairs(run["data_dir"], _SPLIT.value, dt)
  rmse = evaluation.model_rmse(model, pairs)
  verlet = evaluation.verlet_rmse(pairs, config.mass_amu, config.lj())
  card = {**run, "source_checkpoint": checkpoint,
          "evaluated_on": f"{run['data_dir']} {_SPLIT.value}",
          "table1_row": {"dt_fs": dt, config.model: list(rmse), "verlet": list(verlet),
                         "paper": paper.table1_row(config.model, dt)}}
  figure2 = {}
  for path in _FIGURE2.value:
    figure2.update(dataset.read_json(path))
  rollouts = reporting.card_rollouts(
      config.name, dt, figure2,
      dataset.read_json(_ERROR_COST.value) if _ERROR_COST.value else None,
      [dataset.read_json(path) for path in _STABILITY.value])
  card["rollouts"] = rollouts
  text = reporting.model_card(config, run, mdnet.count_parameters(model), checkpoint,
                              _SPLIT.value, len(pairs), rmse, verlet, _OUT_DIR.value, rollouts)
  model_io.publish(_WORKDIR.value, _OUT_DIR.value,
                   (pairs.positions[0], pairs.momenta[0], pairs.box[0]), card, text)
  print(text)


if __name__ == "__main__":
  app.run(main)
