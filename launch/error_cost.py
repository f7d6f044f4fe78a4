"""Error against cost: velocity Verlet at Δt = 1 fs … beyond its stability
limit and MDNet at 16–128 fs, against wall time per simulated ps, all measured
here in one run on the same system (the small preset's 80 K liquid).

  python launch/error_cost.py                      # ~10 min
  python launch/error_cost.py --starts=1 --stability_ps=5   # quicker

Errors against LAMMPS at 1 fs (the ground truth) from --starts states of the
LAMMPS NVT reference trajectory:
  one-step — position RMSE after one step of Δt;
  roll-out — position RMSE after --horizon_fs (768 fs: a multiple of every Δt).
Stability — each Verlet Δt runs --stability_ps in NVE: "stable" if it neither
blows up (non-finite, T > 10⁴ K) nor drifts more than --drift_tol kcal/mol per
atom per ns. Writes <out>.json, <out>.md and <out>.png.
"""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
import tqdm  # noqa: E402

from mdnet_tf import analysis  # noqa: E402
from mdnet_tf import benchmarking  # noqa: E402
from mdnet_tf import errors  # noqa: E402
from mdnet_tf import evaluation  # noqa: E402
from mdnet_tf import io_utils  # noqa: E402
from mdnet_tf import potentials  # noqa: E402
from mdnet_tf import rollout  # noqa: E402
from mdnet_tf import units  # noqa: E402
from mdnet_tf import validation  # noqa: E402
from mdnet_tf import verlet  # noqa: E402
from mdnet_tf.data import lammps_driver  # noqa: E402

_DATA = flags.DEFINE_string("data_dir", "data/small", "Dataset with the LAMMPS reference.")
_MODELS = flags.DEFINE_string("models_dir", "pretrained", "Where mdnet_dt<Δt>/ live.")
_VERLET_DTS = flags.DEFINE_list("verlet_dts", ["1", "2", "4", "8", "16", "32", "48", "64"],
                                "Verlet Δt, fs.")
_MDNET_DTS = flags.DEFINE_list("mdnet_dts", ["16", "32", "64", "128"], "MDNet Δt, fs.")
_STARTS = flags.DEFINE_integer("starts", 3, "Start states (frames 12.8 ps apart).")
_HORIZON = flags.DEFINE_float("horizon_fs", 768.0, "Roll-out error horizon, fs.")
_STAB_PS = flags.DEFINE_float("stability_ps", 20.0, "Verlet NVE stability run, ps.")
_DRIFT = flags.DEFINE_float("drift_tol", 1.0, "Stable if |drift| below, kcal/mol/atom/ns.")
_OUT = flags.DEFINE_string("out", "results/error_cost", "Results prefix.")


def rmse(a, b):
  return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def lammps_truth(q, p, box, times_fs):
  """LAMMPS 1 fs positions at the requested times (fs): {t: [N, 3]}."""
  end = int(max(times_fs))
  out = lammps_driver.run_from_state(q, p / units.ARGON_MASS, box, 1.0, end, record_every=1)
  return {t: out["positions"][int(t)] for t in times_fs}


def verlet_positions(q, p, box, dt, steps):
  sim = verlet.VerletSimulator(dt, dtype=np.float64)
  return sim.run(q, p, box, steps).positions[-1]


def mdnet_positions(prop, q, p, box, steps):
  with tempfile.TemporaryDirectory() as tmp:
    settings = rollout.Settings(write_every=steps, temperature_factor=100.0, min_distance=0.5)
    res = rollout.Rollout(prop, settings).run(q, p, box, steps, tmp, progress=False)
    if res.failure is not None:
      return None
    return validation.load_rollout(tmp, prop.dt_fs).positions[-1]


def verlet_stability(q, p, box, dt, picoseconds):
  """(stable, drift kcal/mol/atom/ns, max T K, note) of an NVE run."""
  steps = int(picoseconds * 1000 / dt)
  sim = verlet.VerletSimulator(dt, lj=potentials.LennardJones(shift=True), dtype=np.float64)
  try:
    traj = sim.run(q, p, box, steps, record_every=max(1, steps // 100))
  except errors.MDNetError as e:
    return False, None, None, str(e).split(";")[0]
  drift, _ = analysis.energy_drift(traj.time_fs, traj.total, len(q))
  stable = abs(drift) < _DRIFT.value
  return stable, drift, float(traj.temperature.max()), "" if stable else "energy drift"


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  ref = validation.reference(_DATA.value)
  idx = [min(len(ref.time_fs) - 1, k * 100) for k in range(_STARTS.value)]
  starts = [(ref.positions[i], ref.momenta[i], ref.box) for i in idx]
  vdts = [float(d) for d in _VERLET_DTS.value]
  mdts = [float(d) for d in _MDNET_DTS.value]
  horizon = _HORIZON.value
  for dt in vdts + mdts:
    if abs(horizon / dt - round(horizon / dt)) > 1e-9:
      raise errors.InputError(f"horizon {horizon} fs is not a multiple of Δt = {dt} fs")
  times = sorted(set(vdts + mdts + [horizon]))
  truths = [lammps_truth(*s, times) for s in tqdm.tqdm(starts, desc="LAMMPS 1 fs truth")]
  result = {"num_atoms": len(starts[0][0]), "starts_fs": [float(ref.time_fs[i]) for i in idx],
            "horizon_fs": horizon, "verlet": {}, "mdnet": {}}
  q0, p0, box = starts[0]

  for dt in tqdm.tqdm(vdts, desc="Verlet"):
    steps = int(round(horizon / dt))
    one = [rmse(verlet_positions(*s, dt, 1), t[dt]) for s, t in zip(starts, truths)]
    try:
      long = [rmse(verlet_positions(*s, dt, steps), t[horizon]) for s, t in zip(starts, truths)]
    except errors.MDNetError:
      long = None
    stable, drift, t_max, note = verlet_stability(q0, p0, box, dt, _STAB_PS.value)
    sim = verlet.VerletSimulator(dt)   # one simulator: compiled once, in the warm-up
    n = min(1000, int(20000 / dt))     # ≤ 20 ps, so even the unstable Δt do not blow up
    cost = benchmarking.median_seconds(lambda: sim.run(q0, p0, box, n), 5, warmup=1)[0] / n
    result["verlet"][f"{dt:g}"] = {
        "one_step_rmse_A": float(np.mean(one)),
        "rollout_rmse_A": None if long is None else float(np.mean(long)),
        "stable": stable, "drift_kcal_mol_atom_ns": drift, "max_temperature_K": t_max,
        "note": note, "s_per_step": cost, "s_per_ps": cost * 1000 / dt}

  for dt in tqdm.tqdm(mdts, desc="MDNet"):
    path = os.path.join(_MODELS.value, f"mdnet_dt{dt:g}")
    prop = validation.propagator_for(path)
    steps = int(round(horizon / dt))
    one = [rmse(mdnet_positions(prop, *s, 1), t[dt]) for s, t in zip(starts, truths)]
    longs = [mdnet_positions(prop, *s, steps) for s in starts]
    long = None if any(x is None for x in longs) else float(np.mean(
        [rmse(x, t[horizon]) for x, t in zip(longs, truths)]))
    model, _ = evaluation.restore_model(path)
    cost = benchmarking.ModelTimer(model, q0, p0, box).time_steps(10, 3)
    result["mdnet"][f"{dt:g}"] = {"one_step_rmse_A": float(np.mean(one)),
                                  "rollout_rmse_A": long, "s_per_step": cost,
                                  "s_per_ps": cost * 1000 / dt}
  lmp = float(np.median([lammps_driver.seconds_per_step(q0, p0 / units.ARGON_MASS, box, 1.0,
                                                        2000) for _ in range(3)]))
  result["lammps_1fs_serial_s_per_ps"] = lmp * 1000
  stable = [float(d) for d, v in result["verlet"].items() if v["stable"]]
  result["verlet_largest_stable_dt_fs"] = max(stable) if stable else None
  io_utils.write_json(_OUT.value + ".json", result)
  md = markdown(result)
  io_utils.write_text(_OUT.value + ".md", md)
  plot(result, _OUT.value + ".png")
  print(md)


def markdown(r):
  lines = ["# Error against cost (`python launch/error_cost.py`)", "",
           f"{r['num_atoms']} atoms, errors vs LAMMPS 1 fs averaged over "
           f"{len(r['starts_fs'])} starts; roll-out error after {r['horizon_fs']:g} fs. "
           f"Largest stable Verlet Δt: {r['verlet_largest_stable_dt_fs']} fs. LAMMPS at 1 fs "
           f"(the reference, one core): {r['lammps_1fs_serial_s_per_ps']:.3g} s per ps.", "",
           "| method | Δt fs | one-step RMSE Å | roll-out RMSE Å | s per simulated ps | "
           "stability (NVE) |", "|---|---|---|---|---|---|"]
  for name, rows in (("Verlet", _by_dt(r["verlet"])), ("MDNet", _by_dt(r["mdnet"]))):
    for dt, v in rows.items():
      stab = "—"
      if "stable" in v:
        drift = v["drift_kcal_mol_atom_ns"]
        stab = ("stable" if v["stable"] else f"unstable ({v['note']})") + (
            "" if drift is None else f", drift {drift:.3g} kcal/mol/atom/ns")
      long = "—" if v["rollout_rmse_A"] is None else f"{v['rollout_rmse_A']:.3g}"
      lines.append(f"| {name} | {dt} | {v['one_step_rmse_A']:.3g} | {long} | "
                   f"{v['s_per_ps']:.3g} | {stab} |")
  return "\n".join(lines) + "\n"


def _by_dt(rows):
  """Rows in order of Δt (JSON keys come back sorted as strings)."""
  return dict(sorted(rows.items(), key=lambda kv: float(kv[0])))


def plot(r, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
  for ax, key, title, where in (
      (axes[0], "one_step_rmse_A", "one-step error", "center right"),
      (axes[1], "rollout_rmse_A", f"error after {r['horizon_fs']:g} fs", "lower right")):
    for name, rows, color in (("Verlet", _by_dt(r["verlet"]), "tab:blue"),
                              ("MDNet", _by_dt(r["mdnet"]), "tab:red")):
      shown = [v for v in rows.values() if v[key] is not None and v[key] >= 1e-8]
      xs, ys = [v["s_per_ps"] for v in shown], [v[key] for v in shown]
      ax.loglog(xs, ys, "o-", color=color, label=name)
      for dt, v in rows.items():
        if v[key] is None:
          continue
        unstable = "stable" in v and not v["stable"]
        if unstable:
          ax.plot(v["s_per_ps"], v[key], "x", color="k", ms=12)
        ax.annotate(f"{dt} fs", (v["s_per_ps"], v[key]), fontsize=8,
                    textcoords="offset points", xytext=(4, 4))
    tiny = {dt: v[key] for dt, v in r["verlet"].items() if v[key] is not None and v[key] < 1e-8}
    if tiny:   # Verlet at 1 fs is the reference's own algorithm: round-off, off the axis
      ax.set_ylim(bottom=1e-8)
      ax.text(0.02, 0.02, "below the axis: " + ", ".join(
          f"Verlet {dt} fs {e:.0e} Å" for dt, e in tiny.items()) + " (the reference's algorithm)",
              transform=ax.transAxes, fontsize=7)
    ax.axvline(r["lammps_1fs_serial_s_per_ps"], color="gray", ls="--",
               label="LAMMPS 1 fs (reference), 1 core")
    ax.set(xlabel="wall seconds per simulated ps (this machine)", ylabel="position RMSE [Å]",
           title=title + " (x = Verlet unstable in NVE)")
    ax.legend(loc=where)
  fig.tight_layout()
  with io_utils.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=110, format="png")
  plt.close(fig)


if __name__ == "__main__":
  app.run(main)
