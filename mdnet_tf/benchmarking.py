"""Timing of the paper's Table 2 and our error-against-cost study.

Every number is a median over repeats after warm-up (compilation excluded).
Systems are LAMMPS-equilibrated 80 K liquids (the datasets' roll-out start
frames), tiled for larger sizes (`tile`). The learned step is timed through
the package's one step loop (stepping.py, float64 state), i.e. the loop that
roll-outs and exported SavedModels run.

FLOPs of one MDNet forward (multiply-add = 2 FLOPs), N atoms, E undirected
edges (2E directed), widths from the config (φ_e 7→40→40→40→m2, φ_o
7·m2+7→200→200→200→6, first φ_o layer split into W_L·L_i + W_e·e_ij):
  φ_e on 2E:           2·2E·(7·40 + 40·40 + 40·40 + 40·m2)
  L_i = Σ m eᵀ on 2E:  2·2E·7·m2
  W_L·L_i on N:        2·N·7·m2·200
  W_e·e_ij on E:       2·E·7·200
  φ_o rest on E:       2·E·(200·200·2 + 200·6)
Elementwise work (activations, gathers, scatters) is not counted: the ratio
to dense-matmul throughput is then a lower bound on how well the matmuls run.
"""

import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from mdnet_tf import capacity as capacity_lib
from mdnet_tf import models
from mdnet_tf import paper
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import propagators
from mdnet_tf import stepping
from mdnet_tf import training
from mdnet_tf import verlet
from mdnet_tf.data import dataset
from mdnet_tf.data import lammps_driver
from mdnet_tf.data import states
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import io as model_io
from mdnet_tf.models import segment_ops


def median_seconds(fn, repeats=5, warmup=1):
  """(median, list of samples) wall seconds of fn() after `warmup` calls."""
  for _ in range(warmup):
    fn()
  samples = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    samples.append(time.perf_counter() - start)
  return statistics.median(samples), samples


def tile(positions, momenta, box, reps):
  """The periodic system repeated reps × reps × reps times (N·reps³ atoms).

  Tiling an equilibrated liquid keeps its density and neighbor statistics,
  so the cost per atom is the liquid's (a lattice would have fewer pairs).
  """
  shifts = np.stack(np.meshgrid(*[np.arange(reps)] * 3, indexing="ij"), -1).reshape(-1, 1, 3)
  q = (np.asarray(positions)[None] + shifts * np.asarray(box)).reshape(-1, 3)
  p = np.tile(np.asarray(momenta), (len(shifts), 1))
  return q, p, np.asarray(box) * reps


def _cpuinfo():
  try:
    with open("/proc/cpuinfo") as f:
      return f.read()
  except OSError:
    return ""


def cpu_has_bf16():
  """Whether the CPU has native bfloat16 matmul instructions (AVX-512 BF16 or AMX)."""
  flags = _cpuinfo()
  return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_description():
  """The CPU model and the vector instructions matmuls can use, e.g.
  'AMD EPYC, AVX2+FMA (no AVX-512)': absolute speeds differ several-fold
  between machines of one kind, and this says why."""
  info = _cpuinfo()
  model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                if line.startswith("model name")), "unknown CPU")
  flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                    if line.startswith("flags")), []))
  isa = [name for flag, name in (("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512 BF16"),
                                 ("amx_bf16", "AMX-BF16")) if flag in flags]
  if not isa:
    isa = ["AVX2+FMA (no AVX-512)" if {"avx2", "fma"} <= flags else "no AVX2"]
  return f"{model}, {', '.join(isa)}"


def matmul_roofline(rows, inner=200, cols=200, repeats=5):
  """The fastest dense matmul of MDNet's φ_o shape this TensorFlow reaches, GFLOP/s.

  Measures [rows, inner] × [inner, cols] in each execution mode (graph: plain
  TF graph, i.e. oneDNN; xla: jit_compile) and precision (float32, and
  bfloat16 where the CPU has native support), both as one matmul and as the
  three fused MatMul+BiasAdd+ReLU layers φ_o runs; keeps the faster of the two.
  Returns {"graph/float32": GFLOP/s, "xla/float32": ..., ...}.
  """
  out = {}
  precisions = ["float32"] + (["bfloat16"] if cpu_has_bf16() else [])
  for precision in precisions:
    dtype = tf.as_dtype(precision)
    a = tf.cast(tf.random.normal([rows, inner]), dtype)
    w = tf.cast(tf.random.normal([inner, cols]) * 0.07, dtype)
    bias = tf.zeros([cols], dtype)

    def single(a, w):
      return tf.reduce_sum(tf.cast(tf.matmul(a, w), tf.float32))

    def chain(a, w):
      x = a
      for _ in range(3):
        x = tf.nn.relu(tf.nn.bias_add(tf.matmul(x, w), bias))
      return tf.reduce_sum(tf.cast(x, tf.float32))

    for mode in ("graph", "xla"):
      best = 0.0
      for fn, layers in ((single, 1), (chain, 3)):
        compiled = tf.function(fn, jit_compile=mode == "xla")
        seconds, _ = median_seconds(lambda: compiled(a, w).numpy(), repeats, warmup=2)
        best = max(best, layers * 2.0 * rows * inner * cols / seconds / 1e9)
      out[f"{mode}/{precision}"] = best
  return out


def mdnet_flops(config, num_atoms, num_edges, aggregation=True):
  """FLOPs of one MDNet forward (see module doc); aggregation=False leaves out
  the L_i = Σ m eᵀ term, i.e. counts the matmuls only."""
  m2, h, eh = config.m2, config.out_hidden, config.edge_hidden
  directed = 2 * num_edges
  phi_e = 2 * directed * (7 * eh + eh * eh * (config.num_layers - 2) + eh * m2)
  local = 2 * directed * 7 * m2 if aggregation else 0
  first = 2 * num_atoms * 7 * m2 * h + 2 * num_edges * 7 * h
  rest = 2 * num_edges * (h * h * (config.num_layers - 2) + h * 6)
  return phi_e + local + first + rest


class ModelTimer:
  """Compiled pieces of one model on one system, capacities from the system
  itself with capacity.py's head-room. The step loop is timed in any execution
  mode (propagators.MODES) and matmul precision; the forward and the neighbor
  search alone are timed under XLA on the padded graph."""

  def __init__(self, model, positions, momenta, box):
    self.model = model
    c = model.config
    self.q = tf.constant(positions, tf.float32)
    self.p = tf.constant(momenta, tf.float32)
    self.box = tf.constant(box, tf.float32)
    self.capacity, nl = capacity_lib.Capacity.fit(self.q, self.box, c.cutoff_angstrom)
    self.num_edges = capacity_lib.count_pairs(nl)
    self._steps = {}
    spec, max_edges = self.capacity.spec, self.capacity.max_edges(len(positions))

    def build_graph(q, box):
      nl = partition.build(q, box, spec)
      return graph_lib.from_neighbors(q, box, nl, c.cutoff_angstrom, max_edges), nl.overflow

    self.graph = tf.function(build_graph, jit_compile=True)
    self._graph_value, _ = self.graph(self.q, self.box)
    self.forward = tf.function(
        lambda q, p, box, g: models.forward(model, q, p, box, g, segment_ops),
        jit_compile=True)

  def steps(self, mode, precision):
    """The compiled step loop of one execution mode and precision."""
    if (mode, precision) not in self._steps:
      prop = propagators.model_propagator(self.model, mode=mode, precision=precision)
      self._steps[mode, precision] = tf.function(
          lambda q, p, box, n: stepping.run(prop, self.capacity, stepping.Loop(), q, p, box, n),
          jit_compile=prop.jit_compile)
    return self._steps[mode, precision]

  def flops(self):
    return mdnet_flops(self.model.config, int(self.q.shape[0]), self.num_edges)

  def time_forward(self, repeats=5):
    """Median seconds of Δq, Δp from a prebuilt graph."""
    g = self._graph_value
    return median_seconds(lambda: self.forward(self.q, self.p, self.box, g)[0].numpy(),
                          repeats, warmup=2)[0]

  def time_neighbors(self, repeats=5):
    """Median seconds of cell list + graph construction."""
    return median_seconds(lambda: self.graph(self.q, self.box)[1].numpy(), repeats,
                          warmup=2)[0]

  def time_steps(self, num_steps, repeats=3, mode=propagators.DEFAULT_MODE,
                 precision="float32"):
    """Median seconds per step of the step loop (neighbors + model + float64 update)."""
    n = tf.constant(num_steps)
    q64, p64 = tf.cast(self.q, tf.float64), tf.cast(self.p, tf.float64)
    steps = self.steps(mode, precision)

    def run():
      if bool(steps(q64, p64, self.box, n).overflow):
        raise RuntimeError("neighbor list overflow in the benchmark loop")
    return median_seconds(run, repeats, warmup=1)[0] / num_steps

  def time_solved_steps(self, num_steps, repeats=3):
    """(median s per step, mean network evaluations per step) of an implicit
    (symplectic) model's monitored step loop, graph mode, float32: what its
    roll-outs run. Raises if a step fails (the timing would not be of steps)."""
    prop = propagators.model_propagator(self.model)
    loop = stepping.Loop(monitor=True, record_steps=num_steps)
    fn = tf.function(lambda q, p, box, n: stepping.run(prop, self.capacity, loop, q, p, box, n))
    n = tf.constant(num_steps)
    q64, p64 = tf.cast(self.q, tf.float64), tf.cast(self.p, tf.float64)
    rows = []

    def run():
      out = fn(q64, p64, self.box, n)
      if bool(out.failed):
        raise RuntimeError(f"{prop.name}: a benchmark step failed "
                           f"({stepping.FAILURES[int(out.code)]})")
      rows.append(out.rows.numpy())
    seconds = median_seconds(run, repeats, warmup=1)[0] / num_steps
    evaluations = float(rows[-1][:, stepping.RECORDED.index("solver_iterations")].mean())
    return seconds, evaluations

  def time_dgl_forward(self, repeats=3):
    """Median seconds of the same forward through DGL message passing (eager)."""
    from mdnet_tf.models import dgl_ops  # pylint: disable=import-outside-toplevel
    g = dgl_ops.to_dgl(self._graph_value, int(self.q.shape[0]))
    return median_seconds(
        lambda: models.forward(self.model, self.q, self.p, self.box, g, dgl_ops)[0].numpy(),
        repeats, warmup=1)[0]


def lammps_seconds_per_step(q, p, box, mass, lj, steps, threads, repeats=3):
  """LAMMPS s per 1 fs step (median of repeats; only the `run` is timed)."""
  return float(np.median([lammps_driver.seconds_per_step(q, p / mass, box, 1.0, steps,
                                                         threads, lj=lj, mass=mass)
                          for _ in range(repeats)]))


def verlet_seconds_per_step(q, p, box, dt_fs, mass, lj, steps, repeats=3):
  """TF velocity Verlet (XLA, one force evaluation per step): s per step."""
  sim = verlet.VerletSimulator(dt_fs, mass=mass, lj=lj)   # compiled once, in the warm-up
  return median_seconds(lambda: sim.run(q, p, box, steps), repeats, warmup=1)[0] / steps


def training_seconds_per_step(pairs, config, steps=10, max_pairs=20):
  """(s per training step, frames per s) of a fresh model, batch 1, XLA."""
  data = training.prepare(pairs, config.cutoff_angstrom, max_pairs)
  with tempfile.TemporaryDirectory() as tmp:
    trainer = training.Trainer(models.build(config), data, data,
                               training.TrainOptions(steps=steps), tmp)
    counter = iter(range(10 ** 6))

    def one():
      terms = trainer.one_step(next(counter))
      tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, terms)
    seconds = median_seconds(one, steps, warmup=3)[0]
  return seconds, 1.0 / seconds


def machine_description():
  """'<cores> CPU cores (<CPU, vector ISA>), TF <version>' for a results header."""
  return f"{os.cpu_count()} CPU cores ({cpu_description()}), TF {tf.__version__}"


def reference_costs(q, p, box, mass, lj, steps, verlet_stable_dt):
  """s per step of LAMMPS at 1 fs (1 core and 2 threads) and TF Verlet at its
  largest stable Δt (steps // 10 steps): the baselines both tables share."""
  return {"lammps_1fs_serial_s_per_step": lammps_seconds_per_step(q, p, box, mass, lj, steps, 1),
          "lammps_1fs_2threads_s_per_step": lammps_seconds_per_step(q, p, box, mass, lj, steps, 2),
          "verlet_stable_dt_fs": verlet_stable_dt,
          "verlet_stable_s_per_step": verlet_seconds_per_step(q, p, box, verlet_stable_dt, mass,
                                                              lj, steps // 10)}


def table2(data_dir, model_paths, quick, scaling_systems, verlet_stable_dt, measure_served,
           log=print):
  """The paper's Table 2 on this machine, plus scaling, serving and training
  speed, all measured in one run (see launch/benchmark.py).

  model_paths: {Δt fs: model directory}.  scaling_systems: [(data dir, reps)].
  verlet_stable_dt: the largest stable Verlet Δt, fs.
  measure_served: (model dir, (q, p, box), steps per call, repeats) -> dict of
    s per step (served in-process SavedModel / single steps / rollout).
  Returns the results dict (what table2.json holds).
  """
  manifest = dataset.load_manifest(data_dir)
  mass = manifest["mass_amu"]
  lj = potentials.LennardJones(**manifest["potential"])
  repeats = 3 if quick else 7
  q, p, box = states.load_start(data_dir)
  n = len(q)
  machine = machine_description()
  log(f"benchmark: {n} atoms from {data_dir}; {machine}; {'quick' if quick else 'full'} mode")
  r = {"num_atoms": n, "data_dir": data_dir, "machine": machine, "quick": quick,
       "paper_table2_tesla_p4": paper.TABLE2}
  rows = 4000 * 12 if quick else n * 12     # ≈ the edge count of the system
  r["roofline_gflops"] = roofline = matmul_roofline(rows, repeats=repeats)
  r["best_matmul_gflops"] = best = {
      precision: max(v for k, v in roofline.items() if k.endswith(precision))
      for precision in {k.split("/")[1] for k in roofline}}
  log(f"dense matmul [{rows},200]x[200,200], GFLOP/s: "
      + ", ".join(f"{k} {v:.0f}" for k, v in roofline.items()))

  steps = 200 if quick else 1000
  r.update(reference_costs(q, p, box, mass, lj, steps, verlet_stable_dt))
  r["verlet_1fs_s_per_step"] = verlet_seconds_per_step(q, p, box, 1.0, mass, lj, steps)
  log(f"LAMMPS 1 fs: {r['lammps_1fs_serial_s_per_step']:.2e} s (1 core), "
      f"{r['lammps_1fs_2threads_s_per_step']:.2e} s (2 threads); TF Verlet 1 fs "
      f"{r['verlet_1fs_s_per_step']:.2e} s")

  variants = [("graph", "float32"), ("xla", "float32")] + (
      [("graph", "bfloat16")] if "bfloat16" in best else [])
  r["mdnet"] = {}
  for dt, path in sorted(model_paths.items()):
    model, _ = model_io.restore(path)
    timer = ModelTimer(model, q, p, box)
    fwd = timer.time_forward(repeats)
    entry = {"forward_xla_s": fwd, "neighbors_xla_s": timer.time_neighbors(repeats),
             "dgl_forward_s": timer.time_dgl_forward(max(3, repeats // 2)),
             "edges": timer.num_edges, "flops": timer.flops(), "dt_fs": dt, "step_s": {},
             "step_efficiency": {}}
    for mode, precision in variants:
      key = f"{mode}/{precision}"
      step = timer.time_steps(5 if quick else 10, repeats, mode, precision)
      entry["step_s"][key] = step
      # Useful FLOPs per second of the whole step over the best matmul of its precision.
      entry["step_efficiency"][key] = timer.flops() / step / 1e9 / best[precision]
    entry["forward_xla_efficiency"] = entry["flops"] / fwd / 1e9 / best["float32"]
    entry["xla_speedup_over_dgl"] = entry["dgl_forward_s"] / fwd
    r["mdnet"][f"{dt:g}"] = entry
    log(f"MDNet {dt:g} fs: " + ", ".join(
        f"step {k} {v:.3e} s ({entry['step_efficiency'][k]:.0%})"
        for k, v in entry["step_s"].items()) + f"; DGL forward {entry['dgl_forward_s']:.3e} s")

  big = max(model_paths)
  per_call = 5 if quick else 20
  served = measure_served(model_paths[big], (q, p, box), per_call, repeats)
  served.update(dt_fs=big, steps_per_call=per_call)
  served["rollout_overhead_vs_in_process_savedmodel"] = (
      served["served_rollout"] / served["savedmodel_in_process_rollout"] - 1.0)
  served["rollout_overhead_vs_in_process_loop"] = (
      served["served_rollout"] / r["mdnet"][f"{big:g}"]["step_s"]["graph/float32"] - 1.0)
  r["served"] = served
  log(f"served {big:g} fs: {served}")

  r["scaling"] = []
  model, _ = model_io.restore(model_paths[big])
  for src, reps in scaling_systems:
    if not os.path.exists(os.path.join(src, "manifest.json")):
      log(f"scaling: {src} missing, skipped")
      continue
    state = tile(*states.load_start(src), reps)
    timer = ModelTimer(model, *state)
    row = {"num_atoms": len(state[0]), "edges": timer.num_edges,
           "step_s": timer.time_steps(3, 3), "step_xla_s": timer.time_steps(3, 3, "xla"),
           "neighbors_xla_s": timer.time_neighbors(3)}
    r["scaling"].append(row)
    log(f"scaling: {row}")
    del timer
  by_n = {row["num_atoms"]: row for row in r["scaling"]}
  if 4000 in by_n and 32000 in by_n:
    r["ratio_32000_over_4000"] = by_n[32000]["step_s"] / by_n[4000]["step_s"]

  r["training"] = {}
  small_dt = min(model_paths)
  for preset in (["small"] if quick else ["small", "paper"]):
    path = os.path.join("data", preset)
    if os.path.exists(os.path.join(path, "manifest.json")):
      pairs = dataset.load_pairs(path, "train", int(small_dt))
      config = model_io.read_config(model_paths[small_dt])
      s, fps = training_seconds_per_step(pairs, config, steps=5 if quick else 10)
      r["training"][preset] = {"s_per_step": s, "frames_per_s": fps, "batch_size": 1}
      log(f"training {preset}: {s:.3f} s/step, {fps:.1f} frames/s")

  r["per_fs"] = {
      "LAMMPS 1 fs (1 core)": r["lammps_1fs_serial_s_per_step"],
      "LAMMPS 1 fs (2 threads)": r["lammps_1fs_2threads_s_per_step"],
      "TF Verlet 1 fs (XLA)": r["verlet_1fs_s_per_step"],
      f"TF Verlet {verlet_stable_dt:g} fs (XLA)": r["verlet_stable_s_per_step"] / verlet_stable_dt,
      **{f"MDNet {dt} fs ({k})": v / float(dt) for dt, e in r["mdnet"].items()
         for k, v in e["step_s"].items()},
      f"MDNet {big:g} fs served (rollout)": served["served_rollout"] / big,
      f"MDNet {big:g} fs served (single steps)": served["served_single_step"] / big,
  }
  return r


def implicit_cost(data_dir, model_paths, explicit_paths, verlet_stable_dt, quick, log=print):
  """Cost of the implicit (symplectic) step next to the explicit MDNet at the
  same Δt, TF Verlet and LAMMPS, all measured in one run on one start state.

  model_paths: {Δt fs: symplectic model dir}.  explicit_paths: {Δt fs: MDNet
  model dir} (the Δt present are compared).  verlet_stable_dt: the largest
  stable Verlet Δt, fs. Each solved step is timed through the monitored step
  loop from the start state (its evaluations per step depend on the state:
  the mean over the timed steps is reported with it).
  Returns the results dict (what <out>.json holds); `per_ps` maps each method
  to its seconds per simulated ps.
  """
  manifest = dataset.load_manifest(data_dir)
  mass = manifest["mass_amu"]
  lj = potentials.LennardJones(**manifest["potential"])
  repeats = 3 if quick else 5
  q, p, box = states.load_start(data_dir)
  machine = machine_description()
  log(f"implicit-step cost: {len(q)} atoms from {data_dir}; {machine}")
  steps = 200 if quick else 1000
  r = {"num_atoms": len(q), "data_dir": data_dir, "machine": machine, "quick": quick,
       **reference_costs(q, p, box, mass, lj, steps, verlet_stable_dt),
       "symplectic": {}, "mdnet": {}}
  per_ps = {"LAMMPS 1 fs (1 core)": 1000 * r["lammps_1fs_serial_s_per_step"],
            "LAMMPS 1 fs (2 threads)": 1000 * r["lammps_1fs_2threads_s_per_step"],
            f"TF Verlet {verlet_stable_dt:g} fs (XLA)":
                1000 * r["verlet_stable_s_per_step"] / verlet_stable_dt}
  num_steps = 5 if quick else 10
  for dt, path in sorted(model_paths.items()):
    model, _ = model_io.restore(path)
    seconds, evaluations = ModelTimer(model, q, p, box).time_solved_steps(num_steps, repeats)
    r["symplectic"][f"{dt:g}"] = {"step_s": seconds, "evaluations_per_step": evaluations,
                                  "s_per_evaluation": seconds / evaluations}
    per_ps[f"MDNet-symplectic {dt:g} fs"] = 1000 * seconds / dt
    log(f"symplectic {dt:g} fs: {seconds:.3e} s per step, {evaluations:.1f} evaluations")
    if dt in explicit_paths:
      explicit, _ = model_io.restore(explicit_paths[dt])
      step = ModelTimer(explicit, q, p, box).time_steps(num_steps, repeats)
      r["mdnet"][f"{dt:g}"] = {"step_s": step}
      per_ps[f"MDNet {dt:g} fs"] = 1000 * step / dt
      log(f"MDNet {dt:g} fs: {step:.3e} s per step")
  r["per_ps"] = per_ps
  return r
