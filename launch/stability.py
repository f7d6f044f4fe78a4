"""How long each Δt model rolls out before a failure criterion trips, with and
without energy rescaling and thermostat (target: 1 ns at 80 K).

  python launch/stability.py --dts=64,128 --variants=nve,rescale,nvt --time_fs=1e6

Failure criteria (mdnet_tf/rollout.py): non-finite values, temperature outside
[T_ref / 3, 3 T_ref], two atoms closer than 2.5 Å. Each run is resumable; with
--max_minutes a run stops (checkpointed) after that much wall time and is
reported as "no failure within t" — re-run the command to extend it.
Writes <out>.json and <out>.md.
"""

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import io_utils  # noqa: E402
from mdnet_tf import validation  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", "data/small", "Dataset (start state).")
_MODELS = flags.DEFINE_string("models_dir", "pretrained", "Where mdnet_dt<Δt>/ live.")
_DTS = flags.DEFINE_list("dts", ["16", "32", "64", "128"], "Δt of the models, fs.")
_VARIANTS = flags.DEFINE_list("variants", ["nve", "rescale", "nvt"], "Roll-out variants.")
_TIME = flags.DEFINE_float("time_fs", 1e6, "Target simulated time, fs (1 ns).")
_MAX_MIN = flags.DEFINE_float("max_minutes", None, "Wall-time budget per run (resumable).")
_FRAME = flags.DEFINE_float("frame_fs", 8192.0, "Frame interval, fs.")
_RUNS = flags.DEFINE_string("runs_dir", "runs/stability", "Run cache.")
_OUT = flags.DEFINE_string("out", "results/stability", "Results prefix (.json/.md).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  start = validation.start_state(validation.reference(_DATA_DIR.value))
  path = _OUT.value + ".json"
  results = dataset.read_json(path) if os.path.exists(path) else {}
  for dt in _DTS.value:
    for variant in _VARIANTS.value:
      name = f"mdnet_dt{dt}"
      res = validation.run_variant(
          os.path.join(_MODELS.value, name), start, variant, _TIME.value,
          os.path.join(_RUNS.value, f"{name}_{variant}"), frame_fs=_FRAME.value,
          max_seconds=None if _MAX_MIN.value is None else 60 * _MAX_MIN.value)
      steps = math.ceil(_TIME.value / float(dt) - 1e-9)
      th = res.thermo
      results.setdefault(name, {})[variant] = {
          "dt_fs": float(dt), "target_fs": _TIME.value,
          "simulated_fs": res.steps_done * float(dt),
          "failure": res.failure._asdict() if res.failure else None,
          "reached_target": res.failure is None and res.steps_done >= steps,
          "temperature_mean_K": float(th[:, 2].mean()),
          "temperature_min_max_K": [float(th[:, 2].min()), float(th[:, 2].max())],
          "total_energy_per_atom_start_end": [float(th[0, 5] / len(start[0])),
                                              float(th[-1, 5] / len(start[0]))],
          "infeasible_rescales": int(th[:, 9].sum()), "clipped_rescales": int(th[:, 10].sum()),
          "closest_pair_A": float(th[:, 7].min())}
      io_utils.write_json(path, results)
  lines = ["# Roll-out stability (`python launch/stability.py`)\n",
           "| model | variant | simulated | outcome | T mean (min–max) K | E/N start → end "
           "kcal/mol | rescale infeasible/clipped |", "|---|---|---|---|---|---|---|"]
  for name, variants in results.items():
    for variant, r in variants.items():
      f = r["failure"]
      outcome = ("reached target" if r["reached_target"] else
                 f"FAILED: {f['reason']}" if f else "no failure (budget ended)")
      lo, hi = r["temperature_min_max_K"]
      e0, e1 = r["total_energy_per_atom_start_end"]
      lines.append(f"| {name} | {variant} | {r['simulated_fs'] / 1000:g} ps | {outcome} | "
                   f"{r['temperature_mean_K']:.1f} ({lo:.1f}–{hi:.1f}) | {e0:.4f} → {e1:.4f} | "
                   f"{r['infeasible_rescales']}/{r['clipped_rescales']} |")
  io_utils.write_text(_OUT.value + ".md", "\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)
