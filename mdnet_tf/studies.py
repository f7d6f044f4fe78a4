"""Roll-out studies: the paper's Figure 2 (RDF, MSD against LAMMPS) with our
energy/temperature control variants and transfer, stability to 1 ns, and
error against cost.

Roll-outs are cached (and resumed) under a runs directory, one folder per
system / model / variant, so an interrupted study continues where it stopped.
Variants of a learned roll-out (all start from the first frame of the LAMMPS
NVT reference trajectory, i.e. an equilibrated 80 K liquid):
  nve       — the paper: the learned step alone;
  rescale   — NVE with momenta rescaled to the initial total energy;
  nvt       — CSVR thermostat at 80 K (τ = 1 ps) split around the step;
  tailor    — NVE with Noether tailoring of the energy at prediction time.
Masses and potentials come from the models and datasets (models/io.py,
the dataset manifest), never from constants.
"""

import functools
import math
import os
import tempfile

import numpy as np
import tqdm

from mdnet_tf import analysis
from mdnet_tf import benchmarking
from mdnet_tf import errors
from mdnet_tf import io_utils
from mdnet_tf import paper
from mdnet_tf import potentials
from mdnet_tf import propagators
from mdnet_tf import rollout
from mdnet_tf import verlet
from mdnet_tf.data import dataset
from mdnet_tf.data import lammps_driver
from mdnet_tf.data import states
from mdnet_tf.models import io as model_io

FRAME_FS = 128
VARIANTS = {
    "nve": dict(thermostat="none"),
    "rescale": dict(thermostat="none", energy_rescale=True),
    "nvt": dict(thermostat="csvr", tau_fs=1000.0),   # target: see variant_settings
    "tailor": dict(thermostat="none"),
}


def variant_settings(variant, dt_fs, seed=0, frame_fs=FRAME_FS, temperature=None):
  """rollout.Settings of a named variant writing a frame every frame_fs;
  temperature: the NVT target, K (None: the start state's temperature)."""
  if variant not in VARIANTS:
    raise errors.InputError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
  every = max(1, int(round(frame_fs / dt_fs)))
  return rollout.Settings(write_every=every, seed=seed, temperature=temperature,
                          **VARIANTS[variant])


def run_variant(model_path, start, variant, time_fs, out_dir, seed=0, progress=True,
                frame_fs=FRAME_FS, max_seconds=None, precision="float32", temperature=None):
  """Runs (or resumes, or reuses) one roll-out of at least time_fs; returns
  (rollout.Result, propagator). precision: of the network's matmuls;
  temperature: NVT target, K (None: the start state's)."""
  prop = propagators.from_path(model_path, tailor="energy" if variant == "tailor" else "none",
                               precision=precision)
  settings = variant_settings(variant, prop.dt_fs, seed, frame_fs, temperature)
  steps = math.ceil(time_fs / prop.dt_fs - 1e-9)
  q, p, box = start
  result = rollout.Rollout(prop, settings).run(q, p, box, steps, out_dir, progress=progress,
                                               max_seconds=max_seconds)
  return result, prop


# -- Figure 2 ---------------------------------------------------------------------


def figure2(system, data_dir, models, variants, time_fs, runs_dir, progress=True,
            precision="float32"):
  """Runs every (model, variant) roll-out of one system and measures it.

  models: {name: model path}.  precision: of the models' matmuls.
  Returns the system's entry of figure2.json.
  """
  manifest = dataset.load_manifest(data_dir)
  mass, temperature = manifest["mass_amu"], manifest["preset"]["temperature"]
  ref_traj = states.reference(data_dir)
  ref = analysis.trajectory_metrics(ref_traj, mass)
  ref["noise"] = analysis.reference_noise(ref_traj)
  entry = {"data_dir": data_dir, "num_atoms": int(ref_traj.positions.shape[1]),
           "box_A": ref_traj.box.tolist(), "lammps": ref, "models": {}}
  for name, path in models.items():
    entry["models"][name] = {}
    for variant in variants:
      out_dir = os.path.join(runs_dir, system, f"{name}_{variant}")
      res, prop = run_variant(path, ref_traj.start, variant, time_fs, out_dir,
                              progress=progress, precision=precision,
                              temperature=temperature)
      if res.failure is not None:
        m = analysis.thermo_metrics(res.thermo, entry["num_atoms"])
        m["status"] = f"failed at {res.failure.time_fs:g} fs: {res.failure.reason}"
      else:
        traj = states.load_frames(os.path.join(out_dir, rollout.TRAJECTORY), prop.dt_fs)
        m = analysis.trajectory_metrics(traj, prop.mass, res.thermo)
        m["status"] = "ok"
        m["vs_lammps"] = analysis.compare_metrics(m, ref)
      m["dt_fs"] = prop.dt_fs
      m["wall_seconds_last_call"] = res.seconds
      entry["models"][name][variant] = m
  return entry


def merge_json(path, system, entry, replace=False):
  """Updates one system's entry of a results JSON (atomic write); variants
  measured earlier and not in `entry` are kept, unless `replace` (the models of
  `entry` were republished: their earlier results belong to other weights)."""
  result = dataset.read_json(path) if os.path.exists(path) else {}
  old = result.get(system, {}).get("models", {})
  for name, variants in entry["models"].items():
    merged = variants if replace else {**old.get(name, {}), **variants}
    entry["models"][name] = {k: merged[k] for k in VARIANTS if k in merged}
  for name in old:
    entry["models"].setdefault(name, old[name])
  result[system] = entry
  io_utils.write_json(path, result)
  return result


# -- stability --------------------------------------------------------------------


def stability(model_path, start, variant, time_fs, out_dir, frame_fs, max_seconds=None):
  """How long one model rolls out in one variant before a failure criterion
  trips (or time_fs is reached, or the wall budget ends): a results record."""
  res, prop = run_variant(model_path, start, variant, time_fs, out_dir, frame_fs=frame_fs,
                          max_seconds=max_seconds)
  steps = math.ceil(time_fs / prop.dt_fs - 1e-9)
  record = {"dt_fs": prop.dt_fs, "target_fs": time_fs, "num_atoms": len(start[0]),
            "simulated_fs": res.steps_done * prop.dt_fs,
            "failure": res.failure._asdict() if res.failure else None,
            "reached_target": res.failure is None and res.steps_done >= steps}
  summary = analysis.thermo_metrics(res.thermo, len(start[0]))
  for key in ("temperature_mean_K", "temperature_std_K", "temperature_min_max_K",
              "total_energy_per_atom_start_end", "energy_drift_kcal_mol_atom_ns",
              "infeasible_rescales", "clipped_rescales", "closest_pair_A"):
    if key in summary:
      record[key] = summary[key]
  return record


# -- error against cost -----------------------------------------------------------


def rmse(a, b):
  return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def lammps_truth(q, p, box, times_fs, mass, lj):
  """LAMMPS 1 fs states at the requested times (fs): {t: (positions [N, 3] Å,
  velocities [N, 3] Å/fs)}."""
  end = int(max(times_fs))
  out = lammps_driver.run_from_state(q, p / mass, box, 1.0, end, record_every=1, lj=lj,
                                     mass=mass)
  return {t: (out["positions"][int(t)], out["velocities"][int(t)]) for t in times_fs}


@functools.lru_cache(maxsize=None)
def _float64_verlet(dt_fs, mass, lj):
  """One simulator (compiled loop) per Δt and system, reused across starts."""
  return verlet.VerletSimulator(dt_fs, mass=mass, lj=lj, dtype=np.float64)


def verlet_state(q, p, box, dt_fs, steps, mass, lj):
  """(positions Å, velocities Å/fs) after `steps` float64 velocity-Verlet steps of dt_fs."""
  traj = _float64_verlet(float(dt_fs), float(mass), lj).run(q, p, box, steps)
  return traj.positions[-1], traj.momenta[-1] / mass


def learned_roller(prop, steps):
  """A loose-criteria NVE Rollout that writes only the state after `steps`
  steps; reuse it across starts (one traced step loop)."""
  return rollout.Rollout(prop, rollout.Settings(write_every=steps, temperature_factor=100.0,
                                                min_distance_sigma=0.15))


def learned_state(roller, q, p, box):
  """(positions Å, velocities Å/fs) after the steps of a learned_roller(prop,
  steps) (its one written interval), or None if the roll-out failed."""
  with tempfile.TemporaryDirectory() as tmp:
    res = roller.run(q, p, box, roller.settings.write_every, tmp, progress=False)
    if res.failure is not None:
      return None
    frames = states.load_frames(os.path.join(tmp, rollout.TRAJECTORY), roller.propagator.dt_fs)
    return frames.positions[-1], frames.momenta[-1] / roller.propagator.mass


def verlet_stability(q, p, box, dt_fs, picoseconds, mass, lj, drift_tol):
  """(stable, drift kcal/mol/atom/ns, max T K, note) of an NVE run (energy shifted
  at the cutoff, so the drift measures the integrator)."""
  steps = int(picoseconds * 1000 / dt_fs)
  shifted = potentials.LennardJones(lj.epsilon, lj.sigma, lj.cutoff, shift=True)
  sim = verlet.VerletSimulator(dt_fs, mass=mass, lj=shifted, dtype=np.float64)
  try:
    traj = sim.run(q, p, box, steps, record_every=max(1, steps // 100))
  except errors.MDNetError as e:
    return False, None, None, str(e).split(";")[0]
  drift, _ = analysis.energy_drift(traj.time_fs, traj.total, len(q))
  stable = abs(drift) < drift_tol
  return stable, drift, float(traj.temperature.max()), "" if stable else "energy drift"


def one_step_errors(states_after, truths, dt_fs):
  """Mean over starts of the one-step position (Å) and velocity (Å/fs) RMSE of
  (positions, velocities) pairs against the LAMMPS truths at dt_fs; a failed
  step (None) raises."""
  if any(x is None for x in states_after):
    raise errors.MDNetError(f"a single {dt_fs:g} fs step failed from a reference state")
  return {"one_step_rmse_A": float(np.mean(
              [rmse(x[0], t[dt_fs][0]) for x, t in zip(states_after, truths)])),
          "one_step_velocity_rmse_A_fs": float(np.mean(
              [rmse(x[1], t[dt_fs][1]) for x, t in zip(states_after, truths)]))}


def error_cost(data_dir, model_paths, verlet_dts, starts, horizon_fs, stability_ps, drift_tol):
  """Errors against LAMMPS 1 fs and cost per simulated ps of Verlet at
  verlet_dts and of the learned models (model_paths: {Δt: path}), measured in
  one run on the dataset's reference liquid (see launch/error_cost.py)."""
  manifest = dataset.load_manifest(data_dir)
  mass, lj = manifest["mass_amu"], potentials.LennardJones(**manifest["potential"])
  ref = states.reference(data_dir)
  idx = [min(len(ref.time_fs) - 1, k * 100) for k in range(starts)]
  starts = [(ref.positions[i], ref.momenta[i], ref.box) for i in idx]
  mdts = sorted(model_paths)
  for dt in list(verlet_dts) + mdts:
    if abs(horizon_fs / dt - round(horizon_fs / dt)) > 1e-9:
      raise errors.InputError(f"horizon {horizon_fs} fs is not a multiple of Δt = {dt} fs")
  times = sorted(set(list(verlet_dts) + mdts + [horizon_fs]))
  truths = [lammps_truth(*s, times, mass, lj) for s in tqdm.tqdm(starts, desc="LAMMPS 1 fs truth")]
  family = model_io.read_config(model_paths[mdts[0]]).model if mdts else "mdnet"
  result = {"num_atoms": len(starts[0][0]), "starts_fs": [float(ref.time_fs[i]) for i in idx],
            "horizon_fs": horizon_fs, "verlet": {}, "mdnet": {},
            "learned_label": paper.family_label(family)}
  q0, p0, box = starts[0]
  for dt in tqdm.tqdm(verlet_dts, desc="Verlet"):
    steps = int(round(horizon_fs / dt))
    one = one_step_errors([verlet_state(*s, dt, 1, mass, lj) for s in starts], truths, dt)
    try:
      long = [rmse(verlet_state(*s, dt, steps, mass, lj)[0], t[horizon_fs][0])
              for s, t in zip(starts, truths)]
    except errors.MDNetError:
      long = None
    stable, drift, t_max, note = verlet_stability(q0, p0, box, dt, stability_ps, mass, lj,
                                                  drift_tol)
    n = min(1000, int(20000 / dt))     # ≤ 20 ps, so even the unstable Δt do not blow up
    cost = benchmarking.verlet_seconds_per_step(q0, p0, box, dt, mass, lj, n, repeats=5)
    result["verlet"][f"{dt:g}"] = {
        **one, "rollout_rmse_A": None if long is None else float(np.mean(long)),
        "stable": stable, "drift_kcal_mol_atom_ns": drift, "max_temperature_K": t_max,
        "note": note, "s_per_step": cost, "s_per_ps": cost * 1000 / dt}
  for dt in tqdm.tqdm(mdts, desc="MDNet"):
    prop = propagators.from_path(model_paths[dt])
    steps = int(round(horizon_fs / dt))
    one_step, long_run = learned_roller(prop, 1), learned_roller(prop, steps)
    one = one_step_errors([learned_state(one_step, *s) for s in starts], truths, dt)
    longs = [learned_state(long_run, *s) for s in starts]
    long = None if any(x is None for x in longs) else float(np.mean(
        [rmse(x[0], t[horizon_fs][0]) for x, t in zip(longs, truths)]))
    model, _ = model_io.restore(model_paths[dt])
    cost = benchmarking.ModelTimer(model, q0, p0, box).time_steps(10, 3)
    result["mdnet"][f"{dt:g}"] = {**one, "rollout_rmse_A": long, "s_per_step": cost,
                                  "s_per_ps": cost * 1000 / dt}
  lmp = benchmarking.lammps_seconds_per_step(q0, p0, box, mass, lj, 2000, threads=1)
  result["lammps_1fs_serial_s_per_ps"] = lmp * 1000
  stable = [float(d) for d, v in result["verlet"].items() if v["stable"]]
  result["verlet_largest_stable_dt_fs"] = max(stable) if stable else None
  return result
