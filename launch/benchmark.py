"""The paper's Table 2 on this machine, plus scaling, serving, training and
efficiency — all measured in one run, medians after warm-up.

  python launch/benchmark.py            # full: 4000 atoms (data/paper), ~3 min here
  python launch/benchmark.py --quick    # 864 atoms (data/small), ~2 min

Writes <out>.md, <out>.json and <out>.png. Needs the datasets' start frames
(`python launch/generate_data.py --preset=small|paper`) and pretrained/.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from mdnet_tf import benchmarking  # noqa: E402
from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf import exporting  # noqa: E402
from mdnet_tf import io_utils  # noqa: E402
from mdnet_tf import models  # noqa: E402
from mdnet_tf import rollout  # noqa: E402
from mdnet_tf import training  # noqa: E402
from mdnet_tf import units  # noqa: E402
from mdnet_tf import verlet  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.data import lammps_driver  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)   # serving/ is a top-level folder, not part of the package
PAPER = {"verlet_1fs_s_per_step": 3.82e-3, "mdnet16_s_per_step": 4.01e-2,
         "mdnet128_s_per_step": 4.03e-2}

_QUICK = flags.DEFINE_bool("quick", False, "864 atoms, fewer repeats, no 32000 atoms.")
_DATA = flags.DEFINE_string("data_dir", None, "Start frame source (default data/paper, "
                            "--quick: data/small).")
_MODELS = flags.DEFINE_string("models_dir", "pretrained", "Where mdnet_dt<Δt>/ live.")
_DTS = flags.DEFINE_list("dts", ["16", "32", "64", "128"], "MDNet Δt, fs.")
_VERLET_STABLE = flags.DEFINE_float("verlet_stable_dt", None, "Largest stable Verlet Δt, fs "
                                    "(default: results/error_cost.json, else 32 as in "
                                    "REFERENCE.md).")
_SCALING = flags.DEFINE_list("scaling_reps", ["1", "2", "3"], "Tilings of the 4000-atom "
                             "liquid for scaling (1 → 4000, 2 → 32000, 3 → 108000).")
_OUT = flags.DEFINE_string("out", "results/table2", "Results prefix.")


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _serve(base):
  """serving/model_server.py in a subprocess; returns (process, port) once up."""
  from serving import rollout_client  # pylint: disable=import-outside-toplevel
  port = _free_port()
  proc = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, "serving", "model_server.py"), f"--port={port}",
       "--model_name=mdnet", f"--model_base_path={base}"],
      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
      env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
  client = rollout_client.RolloutClient(f"127.0.0.1:{port}", "mdnet", deadline_s=600,
                                        max_retries=60)
  return proc, client


def measure_served(model_dir, state, steps_per_call, repeats):
  """s per step: SavedModel rollout in-process, served single steps, served rollout."""
  q, p, box = (np.asarray(x, np.float32) for x in state)
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    path = exporting.export(model_dir, tmp, 1)
    loaded = tf.saved_model.load(path)
    fn = loaded.signatures["rollout"]
    args = dict(positions=tf.constant(q), momenta=tf.constant(p), box=tf.constant(box),
                num_steps=tf.constant(steps_per_call))
    out["savedmodel_in_process_rollout"] = benchmarking.median_seconds(
        lambda: fn(**args)["positions"].numpy(), repeats, warmup=1)[0] / steps_per_call
    proc, client = _serve(tmp)
    try:
      client.advance(q, p, box, 1)   # waits for the server (retries UNAVAILABLE)
      out["served_single_step"] = benchmarking.median_seconds(
          lambda: client.advance(q, p, box, 1), repeats, warmup=1)[0]
      out["served_rollout"] = benchmarking.median_seconds(
          lambda: client.advance(q, p, box, steps_per_call), repeats,
          warmup=1)[0] / steps_per_call
    finally:
      client.close()
      proc.kill()
      proc.wait()
  return out


def measure_lammps(q, p, box, steps, threads, repeats=3):
  """LAMMPS s per 1 fs step (median of repeats; only the `run` is timed)."""
  return float(np.median([lammps_driver.seconds_per_step(q, p / units.ARGON_MASS, box, 1.0,
                                                         steps, threads)
                          for _ in range(repeats)]))


def largest_stable_verlet_dt():
  """--verlet_stable_dt, else the measured one in results/error_cost.json, else 32 fs."""
  if _VERLET_STABLE.value:
    return _VERLET_STABLE.value
  path = os.path.join(ROOT, "results", "error_cost.json")
  if os.path.exists(path):
    measured = dataset.read_json(path).get("verlet_largest_stable_dt_fs")
    if measured:
      return float(measured)
  return 32.0


def measure_verlet(q, p, box, dt, steps):
  """TF velocity Verlet (XLA, one force evaluation per step): s per step."""
  sim = verlet.VerletSimulator(dt)
  return benchmarking.median_seconds(lambda: sim.run(q, p, box, steps), 3,
                                     warmup=1)[0] / steps


def measure_training(data_dir, dt, steps=10, max_pairs=20):
  """(s per training step, frames per s) on a dataset's train split, batch 1, XLA."""
  pairs = dataset.load_pairs(data_dir, "train", dt)
  model, _ = evaluation.restore_model(os.path.join(_MODELS.value, f"mdnet_dt{dt}"))
  data = training.prepare(pairs, model.config.cutoff_angstrom, max_pairs)
  fresh = models.build(model.config)
  with tempfile.TemporaryDirectory() as tmp:
    trainer = training.Trainer(fresh, data, data, training.TrainOptions(steps=steps), tmp)
    counter = iter(range(10 ** 6))

    def one():
      terms = trainer.one_step(next(counter))
      tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, terms)
    seconds = benchmarking.median_seconds(one, steps, warmup=3)[0]
  return seconds, 1.0 / seconds


def _plot(result, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
  rows = result["per_fs"]
  names = list(rows)
  ax1.barh(names, [rows[n] for n in names], color="tab:blue")
  ax1.set_xscale("log")
  ax1.set_xlabel("wall seconds per simulated fs (lower is better)")
  ax1.set_title(f"{result['num_atoms']} atoms, {result['machine']}")
  sc = result["scaling"]
  n = np.array([r["num_atoms"] for r in sc])
  ax2.loglog(n, [r["step_s"] for r in sc], "o-", label="MDNet step (neighbors + model)")
  ax2.loglog(n, [r["neighbors_s"] for r in sc], "s--", label="neighbor search + graph")
  ax2.loglog(n, sc[0]["step_s"] * n / n[0], "k:", label="linear")
  ax2.set(xlabel="atoms", ylabel="seconds", title="scaling (XLA)")
  ax2.legend()
  fig.tight_layout()
  with io_utils.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=110, format="png")
  plt.close(fig)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  started = time.time()
  quick = _QUICK.value
  data_dir = _DATA.value or ("data/small" if quick else "data/paper")
  repeats = 3 if quick else 7
  q, p, box = rollout.load_start(data_dir)
  n = len(q)
  machine = f"{os.cpu_count()} CPU cores, TF {tf.__version__}"
  print(f"benchmark: {n} atoms from {data_dir}; {machine}; "
        f"{'quick' if quick else 'full'} mode", flush=True)
  r = {"num_atoms": n, "data_dir": data_dir, "machine": machine, "quick": quick,
       "paper_table2_tesla_p4": PAPER}

  rows = 4000 * 12 if quick else n * 12     # ≈ the edge count of the system
  r["matmul_gflops"] = benchmarking.matmul_gflops(rows, repeats=repeats)
  print(f"dense matmul [{rows},200]x[200,200]: {r['matmul_gflops']:.1f} GFLOP/s", flush=True)

  steps = 200 if quick else 1000
  r["lammps_1fs_serial_s_per_step"] = measure_lammps(q, p, box, steps, 1)
  r["lammps_1fs_2threads_s_per_step"] = measure_lammps(q, p, box, steps, 2)
  r["verlet_1fs_s_per_step"] = measure_verlet(q, p, box, 1.0, steps)
  r["verlet_stable_dt_fs"] = stable_dt = largest_stable_verlet_dt()
  r["verlet_stable_s_per_step"] = measure_verlet(q, p, box, stable_dt, steps // 10)
  print(f"LAMMPS 1 fs: {r['lammps_1fs_serial_s_per_step']:.2e} s (1 core), "
        f"{r['lammps_1fs_2threads_s_per_step']:.2e} s (2 threads); TF Verlet 1 fs "
        f"{r['verlet_1fs_s_per_step']:.2e} s", flush=True)

  r["mdnet"] = {}
  for dt in _DTS.value:
    model, _ = evaluation.restore_model(os.path.join(_MODELS.value, f"mdnet_dt{dt}"))
    timer = benchmarking.ModelTimer(model, q, p, box)
    fwd = timer.time_forward(repeats)
    entry = {"forward_s": fwd, "neighbors_s": timer.time_neighbors(repeats),
             "step_s": timer.time_steps(5 if quick else 10, repeats),
             "dgl_forward_s": timer.time_dgl_forward(max(3, repeats // 2)),
             "edges": timer.num_edges, "flops": timer.flops()}
    entry["gflops"] = entry["flops"] / fwd / 1e9
    entry["matmul_fraction"] = entry["gflops"] / r["matmul_gflops"]
    entry["xla_speedup_over_dgl"] = entry["dgl_forward_s"] / fwd
    entry["step_s_per_fs"] = entry["step_s"] / float(dt)
    r["mdnet"][dt] = entry
    print(f"MDNet {dt} fs: forward {fwd:.3e} s XLA, {entry['dgl_forward_s']:.3e} s DGL "
          f"({entry['xla_speedup_over_dgl']:.2f}x); step {entry['step_s']:.3e} s "
          f"(neighbors {entry['neighbors_s']:.2e} s); {entry['gflops']:.1f} GFLOP/s = "
          f"{entry['matmul_fraction']:.0%} of matmul", flush=True)

  big = str(max(int(d) for d in _DTS.value))
  per_call = 5 if quick else 20
  r["served"] = measure_served(os.path.join(_MODELS.value, f"mdnet_dt{big}"), (q, p, box),
                               per_call, repeats)
  r["served"]["dt_fs"] = float(big)
  r["served"]["steps_per_call"] = per_call
  r["served"]["rollout_overhead_vs_in_process_savedmodel"] = (
      r["served"]["served_rollout"] / r["served"]["savedmodel_in_process_rollout"] - 1.0)
  r["served"]["rollout_overhead_vs_xla_loop"] = (
      r["served"]["served_rollout"] / r["mdnet"][big]["step_s"] - 1.0)
  print(f"served {big} fs: {json.dumps(r['served'])}", flush=True)

  r["scaling"] = []
  model, _ = evaluation.restore_model(os.path.join(_MODELS.value, f"mdnet_dt{big}"))
  systems = [("data/small", 1), ("data/paper", 1)] if quick else (
      [("data/small", 1)] + [("data/paper", int(k)) for k in _SCALING.value])
  for src, reps in systems:
    if not os.path.exists(os.path.join(src, "manifest.json")):
      print(f"scaling: {src} missing, skipped")
      continue
    state = benchmarking.tile(*rollout.load_start(src), reps)
    timer = benchmarking.ModelTimer(model, *state)
    row = {"num_atoms": len(state[0]), "edges": timer.num_edges,
           "forward_s": timer.time_forward(3), "neighbors_s": timer.time_neighbors(3),
           "step_s": timer.time_steps(3, 3)}
    row["neighbor_share"] = row["neighbors_s"] / row["step_s"]
    r["scaling"].append(row)
    print(f"scaling: {row}", flush=True)
    del timer
  by_n = {row["num_atoms"]: row for row in r["scaling"]}
  if 4000 in by_n and 32000 in by_n:
    r["ratio_32000_over_4000"] = by_n[32000]["step_s"] / by_n[4000]["step_s"]

  r["training"] = {}
  for preset in (["small"] if quick else ["small", "paper"]):
    path = os.path.join("data", preset)
    if os.path.exists(os.path.join(path, "manifest.json")):
      s, fps = measure_training(path, 16, steps=5 if quick else 10)
      r["training"][preset] = {"s_per_step": s, "frames_per_s": fps, "batch_size": 1}
      print(f"training {preset}: {s:.3f} s/step, {fps:.1f} frames/s", flush=True)

  r["per_fs"] = {
      "LAMMPS 1 fs (1 core)": r["lammps_1fs_serial_s_per_step"],
      "LAMMPS 1 fs (2 threads)": r["lammps_1fs_2threads_s_per_step"],
      "TF Verlet 1 fs (XLA)": r["verlet_1fs_s_per_step"],
      f"TF Verlet {stable_dt:g} fs (XLA)": r["verlet_stable_s_per_step"] / stable_dt,
      **{f"MDNet {dt} fs (XLA step)": e["step_s_per_fs"] for dt, e in r["mdnet"].items()},
      **{f"MDNet {dt} fs (DGL forward)": e["dgl_forward_s"] / float(dt)
         for dt, e in r["mdnet"].items()},
      f"MDNet {big} fs served (rollout)": r["served"]["served_rollout"] / float(big),
      f"MDNet {big} fs served (single steps)": r["served"]["served_single_step"] / float(big),
  }
  r["wall_seconds"] = time.time() - started
  io_utils.write_json(_OUT.value + ".json", r)
  md = table_markdown(r, big)
  io_utils.write_text(_OUT.value + ".md", md)
  _plot(r, _OUT.value + ".png")
  print(md)


def table_markdown(r, big):
  """Table 2 and the targets as Markdown."""
  m = r["mdnet"]
  lmp2 = r["lammps_1fs_2threads_s_per_step"]
  lines = [
      f"# Table 2 on this machine (`python launch/benchmark.py{' --quick' if r['quick'] else ''}`)",
      "", f"{r['num_atoms']} atoms; {r['machine']}; medians after warm-up; "
      f"run took {r['wall_seconds'] / 60:.1f} min.", "",
      "| method | s per step | s per simulated fs | paper (Tesla P4) s per step |",
      "|---|---|---|---|",
      f"| LAMMPS 1 fs, 1 core | {r['lammps_1fs_serial_s_per_step']:.2e} | "
      f"{r['lammps_1fs_serial_s_per_step']:.2e} | — |",
      f"| LAMMPS 1 fs, 2 OpenMP threads | {lmp2:.2e} | {lmp2:.2e} | — |",
      f"| TF Verlet 1 fs (XLA) | {r['verlet_1fs_s_per_step']:.2e} | "
      f"{r['verlet_1fs_s_per_step']:.2e} | 3.82e-3 |",
      f"| TF Verlet {r['verlet_stable_dt_fs']:g} fs (largest stable) | "
      f"{r['verlet_stable_s_per_step']:.2e} | "
      f"{r['verlet_stable_s_per_step'] / r['verlet_stable_dt_fs']:.2e} | — |"]
  for dt, e in m.items():
    paper = {"16": "4.01e-2", "128": "4.03e-2"}.get(dt, "—")
    lines.append(f"| MDNet {dt} fs, XLA (neighbors + model) | {e['step_s']:.2e} | "
                 f"{e['step_s_per_fs']:.2e} | {paper} |")
    lines.append(f"| MDNet {dt} fs, DGL forward (eager) | {e['dgl_forward_s']:.2e} | "
                 f"{e['dgl_forward_s'] / float(dt):.2e} | |")
  s = r["served"]
  lines += [
      f"| MDNet {big} fs served, `rollout` ({s['steps_per_call']} steps/call) | "
      f"{s['served_rollout']:.2e} | {s['served_rollout'] / float(big):.2e} | |",
      f"| MDNet {big} fs served, single steps | {s['served_single_step']:.2e} | "
      f"{s['served_single_step'] / float(big):.2e} | |", "",
      "## Targets", "",
      "| target | measured | met |", "|---|---|---|"]
  frac = min(e["matmul_fraction"] for e in m.values())
  speed = min(e["xla_speedup_over_dgl"] for e in m.values())
  lines.append(f"| MDNet forward ≥ 70% of dense matmul ({r['matmul_gflops']:.0f} GFLOP/s) | "
               f"{frac:.0%} (worst Δt) | {'yes' if frac >= 0.7 else 'no'} |")
  lines.append(f"| XLA ≥ 2× DGL (forward) | {speed:.2f}× (worst Δt) | "
               f"{'yes' if speed >= 2 else 'no'} |")
  if "ratio_32000_over_4000" in r:
    ratio = r["ratio_32000_over_4000"]
    lines.append(f"| t(32000) / t(4000) ≤ 8.8 | {ratio:.2f} | {'yes' if ratio <= 8.8 else 'no'} |")
  over = s["rollout_overhead_vs_in_process_savedmodel"]
  lines.append(f"| served `rollout` within 10% of in-process (same SavedModel) | {over:+.1%} | "
               f"{'yes' if over <= 0.1 else 'no'} |")
  lines.append(f"| served `rollout` vs in-process XLA loop | "
               f"{s['rollout_overhead_vs_xla_loop']:+.1%} | (information) |")
  per_fs = m[big]["step_s_per_fs"]
  lines.append(f"| MDNet {big} fs cheaper per fs than LAMMPS 1 fs (same 2 cores) | "
               f"{lmp2 / per_fs:.2f}× LAMMPS speed | {'yes' if per_fs < lmp2 else 'no'} |")
  lines.append(f"| stretch: 12× faster per fs than TF Verlet 1 fs | "
               f"{r['verlet_1fs_s_per_step'] / per_fs:.1f}× | "
               f"{'yes' if r['verlet_1fs_s_per_step'] / per_fs >= 12 else 'no'} |")
  lines += ["", "## Scaling (MDNet step: neighbor search + graph + model, XLA)", "",
            "| atoms | edges | step s | forward s | neighbor share |", "|---|---|---|---|---|"]
  for row in r["scaling"]:
    lines.append(f"| {row['num_atoms']} | {row['edges']} | {row['step_s']:.3e} | "
                 f"{row['forward_s']:.3e} | {row['neighbor_share']:.0%} |")
  lines += ["", "## Training (batch 1, XLA path)", "", "| preset | s per step | frames per s |",
            "|---|---|---|"]
  for preset, t in r["training"].items():
    lines.append(f"| {preset} | {t['s_per_step']:.3f} | {t['frames_per_s']:.1f} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  app.run(main)
