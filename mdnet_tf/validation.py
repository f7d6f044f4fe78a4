"""Roll-out validation: the paper's Figure 2 (RDF, MSD against LAMMPS), our
energy/temperature control variants, and transfer to larger systems.

Roll-outs are cached (and resumed) under a runs directory, one folder per
system / model / variant, so an interrupted study continues where it stopped.

Variants of a learned roll-out (all start from the first frame of the LAMMPS
NVT reference trajectory, i.e. an equilibrated 80 K liquid):
  nve       — the paper: the learned step alone;
  rescale   — NVE with momenta rescaled to the initial total energy;
  nvt       — CSVR thermostat at 80 K (τ = 1 ps) split around the step;
  tailor    — NVE with Noether tailoring of the energy at prediction time.
"""

import glob
import math
import os
from typing import NamedTuple

import numpy as np

from mdnet_tf import analysis
from mdnet_tf import errors
from mdnet_tf import extxyz
from mdnet_tf import io_utils
from mdnet_tf import rollout
from mdnet_tf import units
from mdnet_tf.data import dataset
from mdnet_tf.data import dump

RDF_FRAMES, RDF_GAP_FS, MSD_EVERY_FS, FRAME_FS = 8, 128, 256, 128
VARIANTS = {
    "nve": dict(thermostat="none"),
    "rescale": dict(thermostat="none", energy_rescale=True),
    "nvt": dict(thermostat="csvr", temperature=80.0, tau_fs=1000.0),
    "tailor": dict(thermostat="none"),
}
TAILOR_LR = 0.1   # from a sweep {1e-3, 1e-2, 0.1, 1} on the 128 fs model: 0.1 cut |ΔE| per step most


class Traj(NamedTuple):
  """Frames of a trajectory: time_fs [F], positions [F,N,3] Å (unwrapped),
  momenta [F,N,3] g/mol·Å/fs, box [3] Å."""
  time_fs: np.ndarray
  positions: np.ndarray
  momenta: np.ndarray
  box: np.ndarray


def is_savedmodel(path):
  return os.path.exists(os.path.join(path, "saved_model.pb"))


def latest_version(base):
  """<base>/<highest integer>/ if base is a TF Serving model base path, else base."""
  versions = [d for d in glob.glob(os.path.join(base, "*")) if os.path.basename(d).isdigit()]
  if not is_savedmodel(base) and versions:
    return max(versions, key=lambda d: int(os.path.basename(d)))
  return base


def propagator_for(model_path, tailor="none", tailor_lr=TAILOR_LR):
  """A rollout.Propagator for a training workdir, pretrained model or SavedModel."""
  path = latest_version(model_path)
  if is_savedmodel(path):
    if tailor != "none":
      raise errors.InputError("prediction-time tailoring needs the checkpoint, not a "
                              "SavedModel: pass the training or pretrained directory")
    return rollout.savedmodel_propagator(path)
  from mdnet_tf import evaluation  # pylint: disable=import-outside-toplevel
  overrides = {}
  if tailor != "none":
    if tailor not in ("energy", "temperature"):
      raise errors.InputError(f"prediction-time tailoring supports energy or temperature, "
                              f"got {tailor!r}")
    overrides = dict(tailor=tailor, tailor_lr=tailor_lr)
  model, _ = evaluation.restore_model(model_path, **overrides)
  name = os.path.basename(os.path.normpath(model_path))
  return rollout.model_propagator(model, name + ("" if tailor == "none" else f"+tailor_{tailor}"))


def variant_settings(variant, dt_fs, seed=0, frame_fs=FRAME_FS):
  """rollout.Settings of a named variant writing a frame every frame_fs."""
  if variant not in VARIANTS:
    raise errors.InputError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
  every = max(1, int(round(frame_fs / dt_fs)))
  return rollout.Settings(write_every=every, seed=seed, **VARIANTS[variant])


def run_variant(model_path, start, variant, time_fs, out_dir, seed=0, progress=True,
                frame_fs=FRAME_FS, max_seconds=None):
  """Runs (or resumes, or reuses) one roll-out of at least time_fs; returns rollout.Result."""
  prop = propagator_for(model_path, tailor="energy" if variant == "tailor" else "none")
  settings = variant_settings(variant, prop.dt_fs, seed, frame_fs)
  steps = math.ceil(time_fs / prop.dt_fs - 1e-9)
  q, p, box = start
  return rollout.Rollout(prop, settings).run(q, p, box, steps, out_dir, progress=progress,
                                             max_seconds=max_seconds)


def reference(data_dir):
  """The LAMMPS NVT roll-out reference of a dataset as Traj (frames every 128 fs)."""
  manifest = dataset.load_manifest(data_dir)
  record = next(t for t in manifest["trajectories"] if t["kind"] == "rollout")
  frames = dump.read_dump(os.path.join(data_dir, record["dump"]))
  t0 = frames[0].timestep
  step_fs = manifest["preset"]["timestep_fs"]
  return Traj(np.array([(f.timestep - t0) * step_fs for f in frames], np.float64),
              np.stack([f.positions for f in frames]),
              np.stack([f.velocities for f in frames]) * units.ARGON_MASS,
              frames[0].box.astype(np.float64))


def start_state(traj):
  """(q, p, box) of a Traj's first frame."""
  return traj.positions[0], traj.momenta[0], traj.box


def load_rollout(out_dir, dt_fs):
  """The frames a roll-out wrote, as Traj."""
  steps, q, p, box = extxyz.read_frames(os.path.join(out_dir, rollout.TRAJECTORY))
  return Traj(steps * float(dt_fs), q, p, box)


def _every(traj, interval_fs, offset_fs=0.0):
  """Indices of frames at offset + multiples of interval_fs."""
  rel = traj.time_fs - traj.time_fs[0] - offset_fs
  return np.nonzero((rel >= -1e-6) & (np.abs(rel / interval_fs - np.round(rel / interval_fs))
                                       < 1e-6))[0]


def metrics(traj, thermo=None, mass=units.ARGON_MASS):
  """Figure 2 metrics of a trajectory (paper protocol; see analysis.py).

  thermo: the roll-out's per-step log (rollout.read_thermo) for temperature and
  energy drift at every step; without it temperatures come from the frames and
  no drift is reported (the LAMMPS reference is NVT).
  """
  num_atoms = traj.positions.shape[1]
  end = traj.time_fs[-1]
  rdf_idx = [i for i in _every(traj, RDF_GAP_FS) if traj.time_fs[i] > end - RDF_FRAMES * RDF_GAP_FS]
  r, g = analysis.rdf(traj.positions[rdf_idx], traj.box)
  msd_idx = _every(traj, MSD_EVERY_FS)
  msd = analysis.msd(traj.positions[msd_idx])
  t_msd = traj.time_fs[msd_idx] - traj.time_fs[0]
  d_msd, d_cgs, d_res = analysis.diffusion_from_msd(t_msd, msd)
  frame_dt = float(np.median(np.diff(traj.time_fs)))
  d_vacf = analysis.diffusion_from_vacf(traj.momenta, mass, frame_dt)
  peak_r, peak_g = analysis.first_peak(r, g)
  equi = analysis.equipartition(traj.momenta, mass)
  out = {
      "num_atoms": num_atoms, "simulated_fs": float(end - traj.time_fs[0]),
      "rdf": {"r_A": r.tolist(), "g": g.tolist(), "frames": len(rdf_idx),
              "frame_times_fs": traj.time_fs[rdf_idx].tolist()},
      "msd": {"time_fs": t_msd.tolist(), "msd_A2": msd.tolist()},
      "rdf_first_peak_A": peak_r, "rdf_first_peak_height": peak_g,
      "diffusion_A2_per_fs": d_msd, "diffusion_cm2_per_s": d_cgs,
      "msd_fit_residual_A2": d_res,
      "diffusion_vacf_A2_per_fs": d_vacf, "vacf_frame_spacing_fs": frame_dt,
      "equipartition": equi,
  }
  if thermo is not None and len(thermo):
    out.update(thermo_metrics(thermo, num_atoms))
  else:
    temps = [analysis.equipartition(p[None], mass)["temperature_K"] for p in traj.momenta]
    out.update(temperature_mean_K=float(np.mean(temps)), temperature_std_K=float(np.std(temps)))
  return out


def thermo_metrics(thermo, num_atoms, points=400):
  """Temperature, energy drift and rescaling counts from a roll-out's thermo
  log, plus a thinned time series (≤ points) for plots."""
  temps, total, time_fs = thermo[:, 2], thermo[:, 5], thermo[:, 1]
  out = {"temperature_mean_K": float(temps.mean()), "temperature_std_K": float(temps.std()),
         "momentum_norm_max": float(thermo[:, 6].max()),
         "infeasible_rescales": int(thermo[:, 9].sum()),
         "clipped_rescales": int(thermo[:, 10].sum())}
  if len(thermo) > 1:
    drift, residual = analysis.energy_drift(time_fs, total, num_atoms)
    out.update(energy_drift_kcal_mol_atom_ns=drift, energy_fit_residual_kcal_mol_atom=residual)
  k = max(1, len(time_fs) // points)
  out.update(thermo_time_fs=time_fs[::k].tolist(), thermo_temperature_K=temps[::k].tolist(),
             thermo_total_per_atom=(total[::k] / num_atoms).tolist())
  return out


def reference_noise(traj):
  """How much the LAMMPS reference differs from itself: max |Δg| between its
  last 8-frame RDF window and the window ending half-way, and the relative
  difference of D fitted on the first and the second half of its MSD.
  None for references too short to hold two windows (< 8 MSD points a half)."""
  if traj.time_fs[-1] - traj.time_fs[0] < 16 * MSD_EVERY_FS:
    return None
  half = traj.time_fs[0] + 0.5 * (traj.time_fs[-1] - traj.time_fs[0])
  early = Traj(*[x[traj.time_fs <= half] for x in traj[:3]], traj.box)
  g_late = analysis.rdf(traj.positions[-RDF_FRAMES:], traj.box)[1]
  g_early = analysis.rdf(early.positions[-RDF_FRAMES:], traj.box)[1]
  idx = _every(traj, MSD_EVERY_FS)
  t, q = traj.time_fs[idx] - traj.time_fs[0], traj.positions[idx]
  first = t <= t[-1] / 2
  d1 = analysis.diffusion_from_msd(t[first], analysis.msd(q[first]))[0]
  second = q[~first]
  d2 = analysis.diffusion_from_msd(t[~first] - t[~first][0], analysis.msd(second))[0]
  return {"rdf_max_abs_diff_between_windows": analysis.compare_rdf(g_late, g_early),
          "diffusion_relative_diff_between_halves": d2 / d1 - 1.0}


def compare(m, ref):
  """Differences of roll-out metrics m from the reference metrics ref."""
  return {
      "rdf_max_abs_diff": analysis.compare_rdf(m["rdf"]["g"], ref["rdf"]["g"]),
      "rdf_first_peak_shift_A": m["rdf_first_peak_A"] - ref["rdf_first_peak_A"],
      "rdf_first_peak_height_diff": m["rdf_first_peak_height"] - ref["rdf_first_peak_height"],
      "diffusion_relative_error": m["diffusion_A2_per_fs"] / ref["diffusion_A2_per_fs"] - 1.0,
  }


def by_dt(models):
  """{model name: ...} ordered by the Δt in the name (JSON sorts them as text)."""
  return dict(sorted(models.items(), key=lambda kv: float(kv[0].rsplit("_dt", 1)[-1])))


def summary_rows(result):
  """Flat rows (system, model, variant, numbers) of a figure2.json dict."""
  rows = []
  for system, entry in sorted(result.items(), key=lambda kv: kv[1]["num_atoms"]):
    ref = entry["lammps"]
    rows.append((system, "LAMMPS 1 fs", "NVT (NH)", ref, None))
    for name, variants in by_dt(entry["models"]).items():
      for variant in [v for v in VARIANTS if v in variants]:
        m = variants[variant]
        rows.append((system, name, variant, m, m.get("vs_lammps")))
  return rows


def markdown_table(result):
  """The Figure 2 numbers as a Markdown table."""
  head = ("| system | model | variant | status | max abs Δg | 1st peak Å (g) | D 1e-5 cm²/s "
          "(rel. err.) | T K (std) | drift kcal/mol/atom/ns |\n|---|---|---|---|---|---|---|---|---|")
  lines = [head]
  for system, name, variant, m, c in summary_rows(result):
    status = m.get("status", "ok")
    if "rdf" not in m:
      drift = m.get("energy_drift_kcal_mol_atom_ns")
      lines.append(f"| {system} | {name} | {variant} | {status} | | | | "
                   f"{m['temperature_mean_K']:.1f} ({m['temperature_std_K']:.1f}) | "
                   f"{'—' if drift is None else format(drift, '.3g')} |")
      continue
    drift = m.get("energy_drift_kcal_mol_atom_ns")
    rel = "" if c is None else f" ({c['diffusion_relative_error']:+.0%})"
    lines.append(
        f"| {system} | {name} | {variant} | {status} | "
        f"{'—' if c is None else format(c['rdf_max_abs_diff'], '.3f')} | "
        f"{m['rdf_first_peak_A']:.2f} ({m['rdf_first_peak_height']:.2f}) | "
        f"{m['diffusion_cm2_per_s'] * 1e5:.2f}{rel} | "
        f"{m['temperature_mean_K']:.1f} ({m['temperature_std_K']:.1f}) | "
        f"{'—' if drift is None else format(drift, '.3g')} |")
  lines.append("")
  for system, entry in result.items():
    noise = entry["lammps"].get("noise")
    if noise:
      lines.append(f"- {system} ({entry['num_atoms']} atoms): the LAMMPS reference against "
                   f"itself — max |Δg| {noise['rdf_max_abs_diff_between_windows']:.3f} between "
                   f"its 8-frame RDF windows ending at half time and at the end; D from the "
                   f"two halves of its MSD differs by "
                   f"{noise['diffusion_relative_diff_between_halves']:+.0%}.")
  return "\n".join(lines) + "\n"


def study(system, data_dir, models, variants, time_fs, runs_dir, progress=True):
  """Runs every (model, variant) roll-out of one system and measures it.

  models: {name: model path}.  Returns the system's entry of figure2.json.
  """
  ref_traj = reference(data_dir)
  ref = metrics(ref_traj)
  ref["noise"] = reference_noise(ref_traj)
  start = start_state(ref_traj)
  entry = {"data_dir": data_dir, "num_atoms": int(ref_traj.positions.shape[1]),
           "box_A": ref_traj.box.tolist(), "lammps": ref, "models": {}}
  for name, path in models.items():
    entry["models"][name] = {}
    for variant in variants:
      out_dir = os.path.join(runs_dir, system, f"{name}_{variant}")
      res = run_variant(path, start, variant, time_fs, out_dir, progress=progress)
      dt = res.thermo[0, 1] if len(res.thermo) else 1.0
      if res.failure is not None:
        m = thermo_metrics(res.thermo, entry["num_atoms"])
        m["status"] = f"failed at {res.failure.time_fs:g} fs: {res.failure.reason}"
      else:
        m = metrics(load_rollout(out_dir, dt), res.thermo)
        m["status"] = "ok"
        m["vs_lammps"] = compare(m, ref)
      m["wall_seconds_last_call"] = res.seconds
      entry["models"][name][variant] = m
  return entry


def merge_json(path, system, entry):
  """Updates one system's entry of a results JSON (atomic write); variants
  measured earlier and not in `entry` are kept."""
  result = dataset.read_json(path) if os.path.exists(path) else {}
  old = result.get(system, {}).get("models", {})
  for name, variants in entry["models"].items():
    merged = {**old.get(name, {}), **variants}
    entry["models"][name] = {k: merged[k] for k in VARIANTS if k in merged}
  for name in old:
    entry["models"].setdefault(name, old[name])
  result[system] = entry
  io_utils.write_json(path, result)
  return result


def plot(result, system, path, variants=("nve", "rescale", "nvt")):
  """Figure 2 (RDF, MSD) plus temperature and total energy of the roll-outs."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  entry = result[system]
  ref = entry["lammps"]
  fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
  (ax_rdf, ax_msd), (ax_t, ax_e) = axes
  ax_rdf.plot(ref["rdf"]["r_A"], ref["rdf"]["g"], "k-", lw=2.5, label="LAMMPS 1 fs")
  ax_msd.plot(np.array(ref["msd"]["time_fs"]) / 1000, ref["msd"]["msd_A2"], "k-", lw=2.5,
              label="LAMMPS 1 fs")
  models = by_dt(entry["models"])
  colors = dict(zip(models, plt.cm.viridis(np.linspace(0, 0.9, len(models)))))
  styles = {"nve": "-", "rescale": "--", "nvt": ":", "tailor": "-."}
  for name, vs in models.items():
    for variant in variants:
      m = vs.get(variant)
      if not m:
        continue
      label = f"{name} {variant}"
      if "rdf" not in m:   # failed: its temperature and energy up to the failure
        t = np.array(m["thermo_time_fs"]) / 1000
        ax_t.plot(t, m["thermo_temperature_K"], styles[variant], color=colors[name], lw=1,
                  label=f"{label} (failed)")
        ax_t.plot(t[-1], m["thermo_temperature_K"][-1], "kx", ms=10)
        ax_e.plot(t, m["thermo_total_per_atom"], styles[variant], color=colors[name], lw=1)
        ax_e.plot(t[-1], m["thermo_total_per_atom"][-1], "kx", ms=10)
        continue
      nve_failed = "rdf" not in vs.get("nve", {})
      if variant == "nve" or (variant == "rescale" and nve_failed):
        tag = name if variant == "nve" else f"{name} rescaled (NVE failed)"
        ax_rdf.plot(m["rdf"]["r_A"], m["rdf"]["g"], styles[variant], color=colors[name],
                    lw=1.2, label=tag)
        ax_msd.plot(np.array(m["msd"]["time_fs"]) / 1000, m["msd"]["msd_A2"], styles[variant],
                    color=colors[name], lw=1.2, label=tag)
      if "thermo_time_fs" in m:
        t = np.array(m["thermo_time_fs"]) / 1000
        ax_t.plot(t, m["thermo_temperature_K"], styles[variant], color=colors[name],
                  lw=1, label=label)
        if variant != "nvt":
          ax_e.plot(t, m["thermo_total_per_atom"], styles[variant], color=colors[name],
                    lw=1, label=label)
  ax_rdf.set(xlabel="r [Å]", ylabel="g(r)", title=f"RDF ({entry['num_atoms']} atoms, NVE roll-outs)")
  ax_msd.set(xlabel="t [ps]", ylabel="MSD [Å²]", title="MSD against the first frame")
  ax_t.set(xlabel="t [ps]", ylabel="T [K]", title="temperature (— NVE, -- rescaled, : CSVR)")
  ax_e.set(xlabel="t [ps]", ylabel="E_total / N [kcal/mol]",
           title="total energy per atom (— NVE, -- rescaled; x = failure)")
  ax_e.set_ylim(ax_e.get_ylim()[0], min(ax_e.get_ylim()[1], -0.7))
  for ax in (ax_rdf, ax_msd):
    ax.legend(fontsize=8)
  ax_t.legend(fontsize=6, ncol=2)
  fig.tight_layout()
  with io_utils.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=110, format="png")
  plt.close(fig)
