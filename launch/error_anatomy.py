"""Where the one-step momentum error of trained models sits: binned by how much
the step turns each atom's momentum (cos(p, p′); below 0 the atom's motion
reverses within Δt).

  python launch/error_anatomy.py --data_dir=data/small --dt=128 \
      --models=pretrained/mdnet_dt128,pretrained/mdnet_symplectic_dt128

A symplectic model is scored at the true midpoints (its training target, no
solve) unless --solved. Prints a Markdown table (and writes it to --out if given).
"""

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf import io_utils  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.models import io as model_io  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", "data/small", "Dataset directory.")
_SPLIT = flags.DEFINE_string("split", "validation", "Split to evaluate.")
_DT = flags.DEFINE_integer("dt", 128, "Δt, fs.")
_MODELS = flags.DEFINE_list("models", None, "Model directories (training runs or pretrained).")
_SOLVED = flags.DEFINE_bool("solved", False, "Score symplectic models' solved steps.")
_OUT = flags.DEFINE_string("out", None, "Markdown file to write the table to.")


def main(argv):
  del argv
  pairs = dataset.load_pairs(_DATA_DIR.value, _SPLIT.value, _DT.value)
  lines = [f"Momentum error by cos(p, p′), {_DATA_DIR.value} {_SPLIT.value} split, "
           f"Δt {_DT.value} fs, {len(pairs)} pairs "
           f"(`python launch/error_anatomy.py --data_dir={_DATA_DIR.value} "
           f"--split={_SPLIT.value} --dt={_DT.value} --models={','.join(_MODELS.value)}"
           f"{' --solved' if _SOLVED.value else ''}`)", "",
           "| model | RMS \\|δΔp\\| g/mol·Å/fs | cos(p, p′) bin | atoms | error RMS / model's RMS "
           "| share of squared error |", "|---|---|---|---|---|---|"]
  for path in _MODELS.value:
    model, _ = model_io.restore(path)
    predicted = evaluation.momentum_predictions(model, pairs, _SOLVED.value)
    rms, rows = evaluation.momentum_error_anatomy(predicted, pairs)
    for row in rows:
      lines.append(f"| {path} | {rms:.3e} | [{row['lo']:g}, {row['hi']:g}) | "
                   f"{100 * row['atoms']:.1f} % | {row['rms_ratio']:.2f} | "
                   f"{row['mse_share']:.2f} |")
  text = "\n".join(lines) + "\n"
  print(text)
  if _OUT.value:
    io_utils.write_text(_OUT.value, text)


if __name__ == "__main__":
  flags.mark_flag_as_required("models")
  app.run(main)
