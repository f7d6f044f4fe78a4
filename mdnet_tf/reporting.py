"""Tables and summaries: Markdown (and JSON) of Table 1, Figure 2, stability,
error against cost, Table 2, roll-out summaries and model cards.

Inputs are the plain dicts the studies and benchmarks produce (what their JSON
files hold); every value is read by name. Plots live in plots.py.
"""

import os

import numpy as np

from mdnet_tf import io_utils
from mdnet_tf import paper


def by_dt(rows):
  """A {name: entry} dict ordered by Δt. Entries carry "dt_fs" (Figure 2:
  in each variant's metrics), results keyed by Δt use the key itself."""
  def dt_of(item):
    key, value = item
    if isinstance(value, dict):
      if "dt_fs" in value:
        return float(value["dt_fs"])
      for v in value.values():
        if isinstance(v, dict) and "dt_fs" in v:
          return float(v["dt_fs"])
    return float(key)
  return dict(sorted(rows.items(), key=dt_of))


# -- Table 1 ----------------------------------------------------------------------


def _cell(cell):
  return "—" if cell is None else f"{cell[0]:.2e} / {cell[1]:.2e}"


def write_table1(results, out_dir, source, paper_columns=True):
  """results: {label: {dt: (pos, vel) or None}} -> table1.md and table1.json.

  paper_columns: add the paper's numbers (only for data of the paper's system).
  """
  dts = sorted({dt for r in results.values() for dt in r})
  methods = list(results)
  theirs_names = list(paper.TABLE1) if paper_columns else []
  lines = [f"# Table 1: one-step RMSE, positions Å / velocities Å/fs ({source})", "",
           "| Δt [fs] | " + " | ".join([f"{m} (ours)" for m in methods]
                                      + [f"{m} (paper)" for m in theirs_names]) + " |",
           "|---" * (1 + len(methods) + len(theirs_names)) + "|"]
  for dt in dts:
    cells = ([_cell(results[m].get(dt)) for m in methods]
             + [_cell(paper.TABLE1[m].get(dt)) for m in theirs_names])
    lines.append(f"| {dt} | " + " | ".join(cells) + " |")
  io_utils.write_text(os.path.join(out_dir, "table1.md"), "\n".join(lines) + "\n")
  io_utils.write_json(os.path.join(out_dir, "table1.json"), {
      "source": source, "units": {"positions": "angstrom", "velocities": "angstrom/fs"},
      "ours": {m: {str(dt): v for dt, v in r.items()} for m, r in results.items()},
      "paper": {m: {str(dt): v for dt, v in paper.TABLE1[m].items()} for m in theirs_names}})
  return "\n".join(lines)


# -- Figure 2 ---------------------------------------------------------------------


def figure2_rows(result, variants):
  """Flat rows (system, model, variant, metrics, comparison) of a figure2.json dict."""
  rows = []
  for system, entry in sorted(result.items(), key=lambda kv: kv[1]["num_atoms"]):
    rows.append((system, "LAMMPS 1 fs", "NVT (NH)", entry["lammps"], None))
    for name, measured in by_dt(entry["models"]).items():
      for variant in [v for v in variants if v in measured]:
        m = measured[variant]
        rows.append((system, name, variant, m, m.get("vs_lammps")))
  return rows


def figure2_markdown(result, variants):
  """The Figure 2 numbers as a Markdown table (variants: the known names, in order)."""
  lines = ["| system | model | variant | status | max abs Δg (8 / 40 frames) | 1st peak Å (g) "
           "| D 1e-5 cm²/s (rel. err.) | T K (std) | drift kcal/mol/atom/ns |",
           "|---|---|---|---|---|---|---|---|---|"]
  for system, name, variant, m, c in figure2_rows(result, variants):
    status = m.get("status", "ok")
    drift = m.get("energy_drift_kcal_mol_atom_ns")
    drift = "—" if drift is None else format(drift, ".3g")
    temperature = f"{m['temperature_mean_K']:.1f} ({m['temperature_std_K']:.1f})"
    if "rdf" not in m:
      lines.append(f"| {system} | {name} | {variant} | {status} | | | | {temperature} | {drift} |")
      continue
    rel = "" if c is None else f" ({c['diffusion_relative_error']:+.0%})"
    long = "—" if c is None or "rdf_max_abs_diff_long" not in c else (
        format(c["rdf_max_abs_diff_long"], ".3f"))
    lines.append(
        f"| {system} | {name} | {variant} | {status} | "
        f"{'—' if c is None else format(c['rdf_max_abs_diff'], '.3f')} / {long} | "
        f"{m['rdf_first_peak_A']:.2f} ({m['rdf_first_peak_height']:.2f}) | "
        f"{m['diffusion_cm2_per_s'] * 1e5:.2f}{rel} | {temperature} | {drift} |")
  lines.append("")
  for system, entry in result.items():
    noise = entry["lammps"].get("noise")
    if noise:
      long = noise.get("rdf_max_abs_diff_between_windows_long")
      long = "" if long is None else f" ({long:.3f} between its 40-frame windows)"
      lines.append(f"- {system} ({entry['num_atoms']} atoms): the LAMMPS reference against "
                   f"itself — max |Δg| {noise['rdf_max_abs_diff_between_windows']:.3f} between "
                   f"its 8-frame RDF windows ending at half time and at the end{long}; D from "
                   f"the two halves of its MSD differs by "
                   f"{noise['diffusion_relative_diff_between_halves']:+.0%}.")
  return "\n".join(lines) + "\n"


# -- stability --------------------------------------------------------------------


def stability_markdown(results):
  """results: {model name: {variant: stability record}} -> Markdown."""
  lines = ["# Roll-out stability (`python launch/stability.py`)\n",
           "| model | variant | simulated | outcome | T mean (min–max) K | E/N start → end "
           "kcal/mol | drift kcal/mol/atom/ns | rescale infeasible/clipped |",
           "|---|---|---|---|---|---|---|---|"]
  for name, variants in by_dt(results).items():
    for variant, r in variants.items():
      f = r["failure"]
      outcome = ("reached target" if r["reached_target"] else
                 f"FAILED: {f['reason']}" if f else "no failure (budget ended)")
      lo, hi = r["temperature_min_max_K"]
      e0, e1 = r["total_energy_per_atom_start_end"]
      drift = r.get("energy_drift_kcal_mol_atom_ns")   # records before it was kept: none
      lines.append(f"| {name} | {variant} | {r['simulated_fs'] / 1000:g} ps | {outcome} | "
                   f"{r['temperature_mean_K']:.1f} ({lo:.1f}–{hi:.1f}) | {e0:.4f} → {e1:.4f} | "
                   f"{'—' if drift is None else f'{drift:+.3g}'} | "
                   f"{r['infeasible_rescales']}/{r['clipped_rescales']} |")
  return "\n".join(lines) + "\n"


# -- error against cost -----------------------------------------------------------


def error_cost_markdown(r):
  lines = ["# Error against cost (`python launch/error_cost.py`)", "",
           f"{r['num_atoms']} atoms, errors vs LAMMPS 1 fs averaged over "
           f"{len(r['starts_fs'])} starts; roll-out error after {r['horizon_fs']:g} fs. "
           f"Largest stable Verlet Δt: {r['verlet_largest_stable_dt_fs']} fs. LAMMPS at 1 fs "
           f"(the reference, one core): {r['lammps_1fs_serial_s_per_ps']:.3g} s per ps.", "",
           "| method | Δt fs | one-step RMSE Å | one-step velocity RMSE Å/fs | "
           "roll-out RMSE Å | s per simulated ps | stability (NVE) |",
           "|---|---|---|---|---|---|---|"]
  for name, rows in (("Verlet", by_dt(r["verlet"])),
                     (r.get("learned_label", "MDNet"), by_dt(r["mdnet"]))):
    for dt, v in rows.items():
      stab = "—"
      if "stable" in v:
        drift = v["drift_kcal_mol_atom_ns"]
        stab = ("stable" if v["stable"] else f"unstable ({v['note']})") + (
            "" if drift is None else f", drift {drift:.3g} kcal/mol/atom/ns")
      long = "—" if v["rollout_rmse_A"] is None else f"{v['rollout_rmse_A']:.3g}"
      vel = v.get("one_step_velocity_rmse_A_fs")   # absent in records before 2026-12-02
      vel = "—" if vel is None else f"{vel:.3g}"
      lines.append(f"| {name} | {dt} | {v['one_step_rmse_A']:.3g} | {vel} | {long} | "
                   f"{v['s_per_ps']:.3g} | {stab} |")
  return "\n".join(lines) + "\n"


# -- Table 2 ----------------------------------------------------------------------


_MODE_LABEL = {"graph/float32": "graph mode (oneDNN), float32",
               "xla/float32": "XLA, float32", "graph/bfloat16": "graph mode (oneDNN), bfloat16"}


def table2_markdown(r, big):
  """Table 2, the matmul roofline, the targets, scaling and training speed as Markdown."""
  m = by_dt(r["mdnet"])
  lmp2 = r["lammps_1fs_2threads_s_per_step"]
  best = r["best_matmul_gflops"]
  lines = [
      f"# Table 2 on this machine (`python launch/benchmark.py{' --quick' if r['quick'] else ''}`)",
      "", f"{r['num_atoms']} atoms; {r['machine']}; medians after warm-up; "
      f"run took {r['wall_seconds'] / 60:.1f} min.", "",
      "## Roofline: the fastest dense matmul of φ_o's shape ([E, 200] × [200, 200])", "",
      "| execution | GFLOP/s |", "|---|---|"]
  lines += [f"| {k} | {v:.0f} |" for k, v in r["roofline_gflops"].items()]
  lines += ["", "Efficiency below = MDNet's matmul FLOPs per second of the whole step "
            "(neighbor search, graph, model, float64 update) over the best matmul of the same "
            f"precision: float32 {best['float32']:.0f} GFLOP/s"
            + (f", bfloat16 {best['bfloat16']:.0f} GFLOP/s" if "bfloat16" in best else "") + ".",
            "", "| method | s per step | s per simulated fs | efficiency | paper (Tesla P4) s per step |",
            "|---|---|---|---|---|",
            f"| LAMMPS 1 fs, 1 core | {r['lammps_1fs_serial_s_per_step']:.2e} | "
            f"{r['lammps_1fs_serial_s_per_step']:.2e} | | — |",
            f"| LAMMPS 1 fs, 2 OpenMP threads | {lmp2:.2e} | {lmp2:.2e} | | — |",
            f"| TF Verlet 1 fs (XLA) | {r['verlet_1fs_s_per_step']:.2e} | "
            f"{r['verlet_1fs_s_per_step']:.2e} | | {paper.TABLE2['verlet_1fs_s_per_step']:.2e} |",
            f"| TF Verlet {r['verlet_stable_dt_fs']:g} fs (largest stable) | "
            f"{r['verlet_stable_s_per_step']:.2e} | "
            f"{r['verlet_stable_s_per_step'] / r['verlet_stable_dt_fs']:.2e} | | — |"]
  for dt, e in m.items():
    theirs = paper.TABLE2.get(f"mdnet{dt}_s_per_step")
    theirs = "—" if theirs is None else f"{theirs:.2e}"
    for key, step in e["step_s"].items():
      lines.append(f"| MDNet {dt} fs, {_MODE_LABEL.get(key, key)} | {step:.2e} | "
                   f"{step / float(dt):.2e} | {e['step_efficiency'][key]:.0%} | {theirs} |")
    lines.append(f"| MDNet {dt} fs, DGL forward only (eager) | {e['dgl_forward_s']:.2e} | "
                 f"{e['dgl_forward_s'] / float(dt):.2e} | | |")
  s = r["served"]
  lines += [
      f"| MDNet {big} fs served, `rollout` ({s['steps_per_call']} steps/call) | "
      f"{s['served_rollout']:.2e} | {s['served_rollout'] / float(big):.2e} | | |",
      f"| MDNet {big} fs served, single steps | {s['served_single_step']:.2e} | "
      f"{s['served_single_step'] / float(big):.2e} | | |", "",
      "## Targets", "", "| target | measured | met |", "|---|---|---|"]
  eff = min(e["step_efficiency"]["graph/float32"] for e in m.values())
  lines.append(f"| MDNet step (graph mode, float32) ≥ 60% of the best float32 matmul "
               f"({best['float32']:.0f} GFLOP/s) | {eff:.0%} (worst Δt) | "
               f"{'yes' if eff >= 0.6 else 'no'} |")
  per_fs = m[big]["step_s"]["graph/float32"] / float(big)
  lines.append(f"| MDNet {big} fs (float32) per fs ≤ LAMMPS 1 fs, 2 threads | "
               f"{lmp2 / per_fs:.2f}× LAMMPS speed | {'yes' if per_fs <= lmp2 else 'no'} |")
  if "graph/bfloat16" in m[big]["step_s"]:
    bf = m[big]["step_s"]["graph/bfloat16"] / float(big)
    lines.append(f"| MDNet {big} fs (bfloat16) ≥ 1.5× LAMMPS 1 fs, 2 threads | "
                 f"{lmp2 / bf:.2f}× LAMMPS speed | {'yes' if lmp2 / bf >= 1.5 else 'no'} |")
  if "ratio_32000_over_4000" in r:
    ratio = r["ratio_32000_over_4000"]
    lines.append(f"| t(32000) / t(4000) ≤ 8.8 | {ratio:.2f} | {'yes' if ratio <= 8.8 else 'no'} |")
  over = s["rollout_overhead_vs_in_process_savedmodel"]
  lines.append(f"| served `rollout` within 10% of in-process (same SavedModel) | {over:+.1%} | "
               f"{'yes' if over <= 0.1 else 'no'} |")
  lines.append(f"| served `rollout` vs the in-process step loop (graph, float32) | "
               f"{s['rollout_overhead_vs_in_process_loop']:+.1%} | (information) |")
  lines += ["", "## Scaling (MDNet step: neighbor search + graph + model)", "",
            "| atoms | edges | step s (graph) | step s (XLA) | XLA neighbor search + graph s |",
            "|---|---|---|---|---|"]
  for row in r["scaling"]:
    lines.append(f"| {row['num_atoms']} | {row['edges']} | {row['step_s']:.3e} | "
                 f"{row['step_xla_s']:.3e} | {row['neighbors_xla_s']:.3e} |")
  lines += ["", "## Training (batch 1, XLA path)", "", "| preset | s per step | frames per s |",
            "|---|---|---|"]
  for preset, t in r["training"].items():
    lines.append(f"| {preset} | {t['s_per_step']:.3f} | {t['frames_per_s']:.1f} |")
  return "\n".join(lines) + "\n"


# -- roll-outs and model cards ----------------------------------------------------


def implicit_cost_markdown(r):
  """The implicit step's cost table (benchmarking.implicit_cost) as Markdown."""
  lines = [f"# Cost of the symplectic step (`python launch/benchmark.py --model=mdnet_symplectic"
           f"{' --quick' if r['quick'] else ''}`)", "",
           f"{r['num_atoms']} atoms; {r['machine']}; medians after warm-up; run took "
           f"{r['wall_seconds'] / 60:.1f} min. A solved step costs its network evaluations "
           f"(Anderson iterations, plus Jacobian-vector products where Newton–Krylov takes "
           f"over), counted over the timed steps from the start state.", "",
           "| method | s per step | network evaluations per step | s per simulated ps | "
           "relative to LAMMPS (2 threads) |", "|---|---|---|---|---|"]
  lmp = r["per_ps"]["LAMMPS 1 fs (2 threads)"]
  steps = {"LAMMPS 1 fs (1 core)": (r["lammps_1fs_serial_s_per_step"], "—"),
           "LAMMPS 1 fs (2 threads)": (r["lammps_1fs_2threads_s_per_step"], "—"),
           f"TF Verlet {r['verlet_stable_dt_fs']:g} fs (XLA)": (r["verlet_stable_s_per_step"], "—")}
  for dt, e in by_dt(r["symplectic"]).items():
    steps[f"MDNet-symplectic {dt} fs"] = (e["step_s"], f"{e['evaluations_per_step']:.1f}")
  for dt, e in by_dt(r["mdnet"]).items():
    steps[f"MDNet {dt} fs"] = (e["step_s"], "1")
  for name, per_ps in sorted(r["per_ps"].items(), key=lambda kv: kv[1]):
    step, evaluations = steps[name]
    lines.append(f"| {name} | {step:.2e} | {evaluations} | {per_ps:.3g} | "
                 f"{per_ps / lmp:.2g}× |")
  return "\n".join(lines) + "\n"


def describe_rollout(result, dt_fs, num_atoms):
  """A few lines summarizing a rollout.Result for the terminal."""
  th = result.thermo
  lines = [f"roll-out: {result.steps_done} steps of {dt_fs:g} fs = "
           f"{result.steps_done * dt_fs / 1000:g} ps, {num_atoms} atoms → {result.out_dir}"]
  # A failed step's row may hold a non-finite state: the summary is of the good rows.
  good = np.isfinite(th["total_kcal_mol"]) if len(th) else []
  if np.any(good):
    total, temps = th["total_kcal_mol"][good], th["temperature_K"][good]
    drift = (total[-1] - total[0]) / num_atoms
    lines.append(f"  T mean {temps.mean():.2f} K (std {temps.std():.2f}); "
                 f"E_total per atom {total[0] / num_atoms:.5f} → {total[-1] / num_atoms:.5f} "
                 f"kcal/mol (Δ {drift:+.2e}); max |P| {th['momentum_norm'][good].max():.2e} "
                 f"g/mol·Å/fs; closest pair {th['min_distance_A'][good].min():.3f} Å")
    lines.append(f"  rescaling: {int(th['infeasible'].sum())} infeasible, "
                 f"{int(th['clipped'].sum())} clipped steps")
    iterations = th["solver_iterations"][1:]          # row 0 is the start state
    if len(iterations) and iterations.max() > 0:
      lines.append(f"  implicit solve: {iterations.mean():.1f} iterations per step on "
                   f"average, at most {iterations.max():.0f}")
  lines.append(f"  wall {result.seconds:.1f} s this call")
  if result.failure is not None:
    f = result.failure
    lines.append(f"  FAILED at step {f.step} (t = {f.time_fs:g} fs): {f.reason}. "
                 f"Frames up to the last good chunk are in the trajectory; see report.json.")
  return "\n".join(lines)


def card_rollouts(name, dt, figure2=None, error_cost=None, stabilities=()):
  """The roll-out lines of a model card: Markdown list items (may be empty).

  name: the model's name in the results (<family>_dt<Δt>); figure2 and
  error_cost: the dicts of launch/figure2.py and launch/error_cost.py results
  that include this model (error_cost's MDNet rows are keyed by Δt);
  stabilities: launch/stability.py result dicts (one per system: each keys
  the model's name, then the variant).
  """
  lines = []
  label = lambda variant: "NVE" if variant == "nve" else variant
  for system, entry in sorted((figure2 or {}).items(), key=lambda kv: kv[1]["num_atoms"]):
    if name in entry["models"]:
      for variant, m in entry["models"][name].items():
        c = m.get("vs_lammps")
        long = (f" (40 frames: {c['rdf_max_abs_diff_long']:.3f})"
                if c and "rdf_max_abs_diff_long" in c else "")
        metrics = (f"max|Δg| {c['rdf_max_abs_diff']:.3f}{long}, "
                   f"D {c['diffusion_relative_error']:+.1%} vs LAMMPS, " if c else "")
        drift = m.get("energy_drift_kcal_mol_atom_ns")
        lines.append(
            f"- {label(variant)} roll-out of "
            f"{entry['num_atoms']} atoms ({system}, `launch/figure2.py`): {m.get('status', 'ok')}; "
            f"T {m['temperature_mean_K']:.1f} ({m['temperature_std_K']:.1f}) K, {metrics}"
            f"energy drift {'—' if drift is None else format(drift, '.3g')} kcal/mol/atom/ns.")
  mine = (error_cost or {}).get("mdnet", {}).get(str(dt))
  if mine:
    verlet = error_cost["verlet"].get(str(dt))
    against = (f" (Verlet at {dt} fs: {verlet['rollout_rmse_A']:.3g} Å)"
               if verlet and verlet.get("stable", True) else "")
    lines.append(f"- Position RMSE after {error_cost['horizon_fs']:g} fs against LAMMPS at 1 fs "
                 f"({error_cost['num_atoms']} atoms, {len(error_cost['starts_fs'])} starts, "
                 f"`launch/error_cost.py`): {mine['rollout_rmse_A']:.3g} Å{against}.")
  runs = [item for stability in stabilities for item in stability.get(name, {}).items()]
  for variant, r in sorted(runs, key=lambda kv: kv[1].get("num_atoms", 0)):
    f = r["failure"]
    outcome = (f"reached {r['target_fs'] / 1000:g} ps" if r["reached_target"] else
               f"failed at {r['simulated_fs'] / 1000:g} ps: {f['reason']}" if f else
               f"ran {r['simulated_fs'] / 1000:g} ps (budget ended)")
    lo, hi = r["temperature_min_max_K"]
    atoms = f" of {r['num_atoms']} atoms" if "num_atoms" in r else ""
    drift = r.get("energy_drift_kcal_mol_atom_ns")
    drift = "" if drift is None else f", energy drift {drift:.3g} kcal/mol/atom/ns"
    lines.append(f"- Long {label(variant)} run{atoms} "
                 f"(`launch/stability.py`): {outcome}; T {r['temperature_mean_K']:.1f} K "
                 f"(min {lo:.1f}, max {hi:.1f}){drift}.")
  return lines


def model_card(config, run, parameters, checkpoint, split, num_pairs, rmse, verlet_rmse,
               out_dir, rollouts=()):
  """MODEL_CARD.md text of a published model (see launch/publish_model.py).

  run: the training run's run.json (command, data, time, optional "note" on the
  conditions it ran under).  rmse, verlet_rmse: (positions Å, velocities Å/fs).
  rollouts: Markdown list items from card_rollouts().
  """
  dt = int(config.dt_fs)
  label = paper.family_label(config.model)
  theirs = paper.table1_row(config.model, dt)
  paper_row = (f"| {label} (paper) | {theirs[0]:.2e} | {theirs[1]:.2e} |\n" if theirs else
               f"| {label} (paper) | — | — |\n" if label in paper.TABLE1 else "")
  width = f"m2 = {config.m2}; " if config.model == "mdnet" else ""
  if config.model == "mdnet" and config.baseline != "free_flight":
    width += f"network added to one {config.baseline} step (baseline); "
  options = run.get("options", {})
  hours = run.get("train_seconds_total", 0.0) / 3600
  note = f" {run['note']}" if run.get("note") else ""
  done = f"{run['steps_done']} steps of" if run.get("steps_done") else "steps not recorded;"
  time_text = (f"{hours:.2f} h of training time" if hours > 0 else
               "training time not recorded by the run")
  rollout_text = ("\nRoll-outs:\n\n" + "\n".join(rollouts) + "\n") if rollouts else ""
  return f"""# {config.name}

- Command: `{run.get('command', '?')}`
- Data: preset `{run.get('preset', '?')}` (seed {run.get('data_seed', '?')}), \
{run.get('train_pairs', '?')} training pairs (forward and time-reversed), LAMMPS ground truth;
  see the dataset's manifest.json.
- Model: {parameters} parameters; {width}cutoff {config.cutoff_angstrom} Å;
  mass {config.mass_amu} g/mol; LJ ε = {config.lj_epsilon} kcal/mol, σ = {config.lj_sigma} Å;
  units `{config.unit_style}`; normalization statistics in model_config.json.
- Training: {done} batch size {options.get('batch_size', 1)} \
(message passing: {options.get('graph_backend', '?')}), {time_text};
  best checkpoint on validation loss (`{os.path.basename(checkpoint)}`).{note}
- One-step RMSE on the {split} split ({num_pairs} pairs), positions Å / velocities Å/fs:

| | positions [Å] | velocities [Å/fs] |
|---|---|---|
| {config.model} (this model) | {rmse[0]:.2e} | {rmse[1]:.2e} |
| Verlet, one step of {dt} fs | {verlet_rmse[0]:.2e} | {verlet_rmse[1]:.2e} |
{paper_row}{rollout_text}
Load it with `mdnet_tf.models.io.load("{out_dir}")`.
"""
