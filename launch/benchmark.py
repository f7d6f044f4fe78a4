"""The paper's Table 2 on this machine, plus scaling, serving, training and
efficiency — all measured in one run, medians after warm-up.

  python launch/benchmark.py            # full: 4000 atoms (data/paper), ~3 min here
  python launch/benchmark.py --quick    # 864 atoms (data/small), ~2 min
  python launch/benchmark.py --breakdown --dts=128   # stage-by-stage time of one step
  python launch/benchmark.py --model=mdnet_symplectic --dts=64,128   # the solved step's cost

Writes <out>.md, <out>.json and <out>.png. Needs the datasets' start frames
(`python launch/generate_data.py --preset=small|paper`) and the models (the
--model family in --models_dir, Δt read from each config). Do not run it
while another job uses the cores: every number would be skewed.
"""

import os
import time

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import benchmarking  # noqa: E402
from mdnet_tf import errors  # noqa: E402
from mdnet_tf import io_utils  # noqa: E402
from mdnet_tf import plots  # noqa: E402
from mdnet_tf import profiling  # noqa: E402
from mdnet_tf import reporting  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.data import states  # noqa: E402
from mdnet_tf.models import io as model_io  # noqa: E402
from mdnet_tf.models import symplectic  # noqa: E402
from serving import timing  # noqa: E402

_QUICK = flags.DEFINE_bool("quick", False, "864 atoms, fewer repeats, no 32000 atoms.")
_DATA = flags.DEFINE_string("data_dir", None, "Start frame source (default data/paper, "
                            "--quick: data/small).")
_MODELS = flags.DEFINE_string("models_dir", "pretrained", "Directory holding the models.")
_MODEL = flags.DEFINE_string("model", "mdnet", "Model family.")
_DTS = flags.DEFINE_list("dts", ["16", "32", "64", "128"], "Model Δt, fs.")
_VERLET_STABLE = flags.DEFINE_float("verlet_stable_dt", None, "Largest stable Verlet Δt, fs "
                                    "(default: results/error_cost.json, else 32 fs, the "
                                    "largest stable Δt of docs/REFERENCE.md).")
_SCALING = flags.DEFINE_list("scaling_reps", ["1", "2", "3"], "Tilings of the 4000-atom "
                             "liquid for scaling (1 → 4000, 2 → 32000, 3 → 108000).")
_OUT = flags.DEFINE_string("out", None, "Results prefix (default results/table2; "
                           "--model=mdnet_symplectic: results/symplectic/table2, its own table "
                           "of the solved step's cost).")
_BREAKDOWN = flags.DEFINE_bool("breakdown", False, "Only print where a graph-mode step of the "
                               "largest-Δt model spends its time (stage by stage) and exit.")


def implicit_cost(data_dir, paths, stable, started):
  """The symplectic family's own table: its solved step against the explicit
  MDNet of the same Δt (the mdnet family in --models_dir), Verlet and LAMMPS."""
  explicit = model_io.discover(_MODELS.value, "mdnet")
  r = benchmarking.implicit_cost(data_dir, paths, explicit, stable, _QUICK.value,
                                 log=lambda line: print(line, flush=True))
  r["wall_seconds"] = time.time() - started
  out = _OUT.value or "results/symplectic/table2"
  io_utils.write_json(out + ".json", r)
  md = reporting.implicit_cost_markdown(r)
  io_utils.write_text(out + ".md", md)
  print(md)


def main(argv):
  del argv
  # ERROR: each timed model builds its own compiled functions on purpose, and
  # TensorFlow's retracing warning about that would interleave with the table.
  logging.set_verbosity(logging.ERROR)
  started = time.time()
  quick = _QUICK.value
  data_dir = _DATA.value or ("data/small" if quick else "data/paper")
  found = model_io.discover(_MODELS.value, _MODEL.value)
  wanted = [float(d) for d in _DTS.value]
  missing = [dt for dt in wanted if dt not in found]
  if missing:
    raise errors.InputError(f"no {_MODEL.value} model for Δt {missing} fs in {_MODELS.value}")
  if _BREAKDOWN.value:
    if _MODEL.value == symplectic.FAMILY:
      raise errors.InputError(f"--breakdown splits an explicit forward into its stages; a "
                              f"{symplectic.FAMILY} step is a solve (run without --breakdown)")
    model, _ = model_io.restore(found[max(wanted)])
    stages = profiling.step_breakdown(model, *states.load_start(data_dir))
    for name, seconds in stages.items():
      print(f"{name:18s} {seconds * 1e3:8.2f} ms")
    print(f"{'sum':18s} {sum(stages.values()) * 1e3:8.2f} ms (stages timed alone; an upper "
          f"bound of one forward)")
    return
  stable = _VERLET_STABLE.value
  if stable is None and os.path.exists("results/error_cost.json"):
    stable = dataset.read_json("results/error_cost.json").get("verlet_largest_stable_dt_fs")
  if _MODEL.value == symplectic.FAMILY:
    implicit_cost(data_dir, {dt: found[dt] for dt in wanted}, float(stable or 32.0), started)
    return
  scaling = [("data/small", 1), ("data/paper", 1)] if quick else (
      [("data/small", 1)] + [("data/paper", int(k)) for k in _SCALING.value])
  r = benchmarking.table2(data_dir, {dt: found[dt] for dt in wanted}, quick, scaling,
                          float(stable or 32.0), timing.measure_served,
                          log=lambda line: print(line, flush=True))
  r["wall_seconds"] = time.time() - started
  out = _OUT.value or "results/table2"
  io_utils.write_json(out + ".json", r)
  md = reporting.table2_markdown(r, f"{max(wanted):g}")
  io_utils.write_text(out + ".md", md)
  plots.table2(r, out + ".png")
  print(md)


if __name__ == "__main__":
  app.run(main)
