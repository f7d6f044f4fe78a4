"""Structure and transport of a trajectory: RDF and MSD (freud), diffusion,
energy drift, temperature and equipartition.

The paper's protocol (Section 4, "Roll-out performance"), `trajectory_metrics`:
  RDF — after a 40000 fs roll-out, averaged over 8 frames 128 fs apart
        (and, as issue 12's target defines it, over the last 40 frames:
        five times the samples, so the RDF difference resolves structure
        below the 8-frame window's own noise);
  MSD — unwrapped positions every 256 fs, displacement against the first frame.
Thermo-log metrics (temperature, drift, rescaling counts) read the named
columns of thermo.py's log.

Shapes and units: positions [F, N, 3] Å (unwrapped), momenta [F, N, 3]
g/mol·Å/fs, box [3] Å, times fs, energies kcal/mol, D in Å²/fs and cm²/s
(1 Å²/fs = 0.1 cm²/s).
"""

import numpy as np

from mdnet_tf import errors
from mdnet_tf import units
from mdnet_tf.data import states

ANGSTROM2_PER_FS_TO_CM2_PER_S = 0.1


def _freud():
  try:
    import freud  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise errors.MissingDependencyError(
        "freud is needed for RDF/MSD: pip install freud-analysis") from e
  return freud


def _frames(positions, name="positions"):
  positions = np.asarray(positions, np.float64)
  if positions.ndim == 2:
    positions = positions[None]
  if positions.ndim != 3 or positions.shape[-1] != 3 or positions.shape[0] < 1:
    raise errors.InputError(f"{name} must be [frames, atoms, 3], got {positions.shape}")
  if not np.isfinite(positions).all():
    raise errors.InputError(f"{name} contain NaN or inf")
  return positions


RDF_R_MAX, RDF_BINS = 15.0, 150   # Å; the same 0.1 Å grid for every system


def rdf(positions, box, r_max=RDF_R_MAX, bins=RDF_BINS):
  """g(r) averaged over frames (freud.density.RDF, periodic, exact normalization).

  Args:
    positions: [F, N, 3] or [N, 3] Å (wrapped or not).  box: [3] Å.
    r_max: largest r, Å (capped just under half the smallest box edge).
    bins: number of r bins.
  Returns:
    (r [bins] bin centres Å, g [bins]).
  """
  freud = _freud()
  positions = _frames(positions)
  box = np.asarray(box, np.float64)
  r_max = min(float(r_max), 0.4999 * box.min())
  fbox = freud.box.Box(*box)
  calc = freud.density.RDF(bins=bins, r_max=r_max)
  for frame in positions:
    calc.compute(system=(fbox, fbox.wrap(frame - box / 2)), reset=False)
  return np.asarray(calc.bin_centers), np.asarray(calc.rdf)


def msd(positions):
  """MSD(t) = ⟨|r_i(t) − r_i(0)|²⟩ against the first frame (freud 'direct'), Å².

  Args:
    positions: [F, N, 3] unwrapped Å.
  Returns:
    [F] Å² (MSD[0] = 0).
  """
  freud = _freud()
  positions = _frames(positions)
  return np.asarray(freud.msd.MSD(mode="direct").compute(positions).msd)


def linear_fit(t, y):
  """(slope, intercept, rms residual) of a least-squares line."""
  t, y = np.asarray(t, np.float64), np.asarray(y, np.float64)
  if len(t) < 2:
    raise errors.InputError("a linear fit needs at least 2 points")
  slope, intercept = np.polyfit(t, y, 1)
  residual = y - (slope * t + intercept)
  return float(slope), float(intercept), float(np.sqrt(np.mean(residual ** 2)))


def diffusion_from_msd(time_fs, msd_values, fit_from_fs=None):
  """Self-diffusion D = slope / 6 of the MSD's linear (diffusive) part.

  fit_from_fs: start of the fit window (default: 20% of the span, past the
  ballistic regime of ~1 ps). Returns (D Å²/fs, D cm²/s, fit residual Å²).
  """
  time_fs = np.asarray(time_fs, np.float64)
  start = time_fs[0] + 0.2 * (time_fs[-1] - time_fs[0]) if fit_from_fs is None else fit_from_fs
  use = time_fs >= start
  slope, _, residual = linear_fit(time_fs[use], np.asarray(msd_values)[use])
  d = slope / 6.0
  return d, d * ANGSTROM2_PER_FS_TO_CM2_PER_S, residual


def vacf(momenta, mass, max_lag):
  """Velocity autocorrelation ⟨v(0)·v(τ)⟩ averaged over atoms and time origins.

  Args:
    momenta: [F, N, 3] g/mol·Å/fs, equally spaced frames.  mass: g/mol.
    max_lag: number of lags (frames) to compute.
  Returns:
    [max_lag] (Å/fs)².
  """
  v = _frames(momenta, "momenta") / mass
  max_lag = min(int(max_lag), len(v))
  return np.array([np.mean(np.sum(v[:len(v) - k] * v[k:], -1)) for k in range(max_lag)])


def diffusion_from_vacf(momenta, mass, frame_dt_fs, max_lag_fs=5000.0):
  """Green–Kubo D = ⅓ ∫₀^τ ⟨v(0)·v(t)⟩ dt (trapezoid), Å²/fs.

  The integral is only as good as the frame spacing resolves the VACF (it
  decays within ~1 ps in liquid argon): check against the MSD estimate.
  """
  c = vacf(momenta, mass, int(max_lag_fs / frame_dt_fs) + 1)
  return float(np.trapezoid(c, dx=frame_dt_fs) / 3.0)


def energy_drift(time_fs, total_energy, num_atoms):
  """Linear drift of the total energy: (kcal/mol per atom per ns, residual kcal/mol/atom)."""
  per_atom = np.asarray(total_energy, np.float64) / num_atoms
  slope, _, residual = linear_fit(np.asarray(time_fs, np.float64) * 1e-6, per_atom)
  return slope, residual


def equipartition(momenta, mass, bins=61):
  """Kinetic temperature per Cartesian component and the velocity distribution
  against Maxwell–Boltzmann at the measured temperature.

  Args:
    momenta: [F, N, 3] g/mol·Å/fs.  mass: g/mol.
  Returns:
    dict: component_temperature_K [3] (⟨p_a²⟩/(m k_B) per component, COM
    motion removed), temperature_K, max_component_deviation (relative),
    histogram (v centres Å/fs, measured density, Maxwell–Boltzmann density),
    max_histogram_deviation (relative to the MB peak).
  """
  p = _frames(momenta, "momenta")
  p = p - p.mean(axis=1, keepdims=True)
  comp_t = np.mean(p * p, axis=(0, 1)) / mass * units.MVV_TO_ENERGY / units.BOLTZMANN
  temp = float(comp_t.mean())
  sigma = np.sqrt(units.BOLTZMANN * temp / (mass * units.MVV_TO_ENERGY))   # Å/fs
  v = (p / mass).ravel()
  edges = np.linspace(-4.5 * sigma, 4.5 * sigma, bins + 1)
  density, _ = np.histogram(v, edges, density=True)
  centres = 0.5 * (edges[1:] + edges[:-1])
  mb = np.exp(-centres ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
  return {"component_temperature_K": comp_t.tolist(), "temperature_K": temp,
          "max_component_deviation": float(np.max(np.abs(comp_t / temp - 1.0))),
          "histogram": {"v_A_per_fs": centres.tolist(), "measured": density.tolist(),
                        "maxwell_boltzmann": mb.tolist()},
          "max_histogram_deviation": float(np.max(np.abs(density - mb)) / mb.max())}


def first_peak(r, g, window=1.0):
  """(position Å, height) of g(r)'s first peak: the maximum within `window` Å
  after g first exceeds 1."""
  r, g = np.asarray(r), np.asarray(g)
  above = np.nonzero(g > 1.0)[0]
  if not len(above):
    raise errors.InputError("g(r) never exceeds 1: no first peak")
  near = np.nonzero((r >= r[above[0]]) & (r <= r[above[0]] + window))[0]
  k = near[np.argmax(g[near])]
  return float(r[k]), float(g[k])


def compare_rdf(g, g_ref):
  """max |g − g_ref| over the bins of one r grid."""
  g, g_ref = np.asarray(g), np.asarray(g_ref)
  if g.shape != g_ref.shape:
    raise errors.InputError(f"RDFs on different grids: {g.shape} vs {g_ref.shape}")
  return float(np.max(np.abs(g - g_ref)))


# -- the paper's roll-out protocol ---------------------------------------------

RDF_FRAMES, RDF_GAP_FS, MSD_EVERY_FS = 8, 128, 256
RDF_FRAMES_LONG = 40


def _every(traj, interval_fs, offset_fs=0.0):
  """Indices of frames at offset + multiples of interval_fs."""
  rel = traj.time_fs - traj.time_fs[0] - offset_fs
  return np.nonzero((rel >= -1e-6) & (np.abs(rel / interval_fs - np.round(rel / interval_fs))
                                       < 1e-6))[0]


def _last_frames(traj, count):
  """Indices of the last `count` frames RDF_GAP_FS apart (fewer if it is short)."""
  end = traj.time_fs[-1]
  return [i for i in _every(traj, RDF_GAP_FS) if traj.time_fs[i] > end - count * RDF_GAP_FS]


def trajectory_metrics(traj, mass, thermo_log=None):
  """Figure 2 metrics of a states.Traj (paper protocol) for atoms of `mass` g/mol.

  thermo_log: the roll-out's per-step log (thermo.py) for temperature and
  energy drift at every step; without it temperatures come from the frames and
  no drift is reported (the LAMMPS reference is NVT).
  """
  num_atoms = traj.positions.shape[1]
  end = traj.time_fs[-1]
  rdf_idx = _last_frames(traj, RDF_FRAMES)
  r, g = rdf(traj.positions[rdf_idx], traj.box)
  long_idx = _last_frames(traj, RDF_FRAMES_LONG)
  msd_idx = _every(traj, MSD_EVERY_FS)
  msd_values = msd(traj.positions[msd_idx])
  t_msd = traj.time_fs[msd_idx] - traj.time_fs[0]
  d_msd, d_cgs, d_res = diffusion_from_msd(t_msd, msd_values)
  frame_dt = float(np.median(np.diff(traj.time_fs)))
  peak_r, peak_g = first_peak(r, g)
  out = {
      "num_atoms": num_atoms, "simulated_fs": float(end - traj.time_fs[0]),
      "rdf": {"r_A": r.tolist(), "g": g.tolist(), "frames": len(rdf_idx),
              "frame_times_fs": traj.time_fs[rdf_idx].tolist()},
      "rdf_long": {"g": rdf(traj.positions[long_idx], traj.box)[1].tolist(),
                   "frames": len(long_idx)},
      "msd": {"time_fs": t_msd.tolist(), "msd_A2": msd_values.tolist()},
      "rdf_first_peak_A": peak_r, "rdf_first_peak_height": peak_g,
      "diffusion_A2_per_fs": d_msd, "diffusion_cm2_per_s": d_cgs,
      "msd_fit_residual_A2": d_res,
      "diffusion_vacf_A2_per_fs": diffusion_from_vacf(traj.momenta, mass, frame_dt),
      "vacf_frame_spacing_fs": frame_dt,
      "equipartition": equipartition(traj.momenta, mass),
  }
  if thermo_log is not None and len(thermo_log):
    out.update(thermo_metrics(thermo_log, num_atoms))
  else:
    temps = [equipartition(p[None], mass)["temperature_K"] for p in traj.momenta]
    out.update(temperature_mean_K=float(np.mean(temps)), temperature_std_K=float(np.std(temps)))
  return out


def thermo_metrics(log, num_atoms, points=400):
  """Temperature, energy drift and rescaling counts of a thermo log, plus a
  thinned time series (≤ points) for plots. Rows with non-finite values (the
  record of a failed, diverged step, which the roll-out did not take) are left out."""
  log = log[np.isfinite(log["temperature_K"]) & np.isfinite(log["total_kcal_mol"])]
  temps, total, time_fs = log["temperature_K"], log["total_kcal_mol"], log["time_fs"]
  out = {"temperature_mean_K": float(temps.mean()), "temperature_std_K": float(temps.std()),
         "temperature_min_max_K": [float(temps.min()), float(temps.max())],
         "momentum_norm_max": float(log["momentum_norm"].max()),
         "closest_pair_A": float(log["min_distance_A"].min()),
         "total_energy_per_atom_start_end": [float(total[0] / num_atoms),
                                             float(total[-1] / num_atoms)],
         "infeasible_rescales": int(log["infeasible"].sum()),
         "clipped_rescales": int(log["clipped"].sum())}
  if len(log) > 1:
    drift, residual = energy_drift(time_fs, total, num_atoms)
    out.update(energy_drift_kcal_mol_atom_ns=drift, energy_fit_residual_kcal_mol_atom=residual)
  k = max(1, len(time_fs) // points)
  out.update(thermo_time_fs=time_fs[::k].tolist(), thermo_temperature_K=temps[::k].tolist(),
             thermo_total_per_atom=(total[::k] / num_atoms).tolist())
  return out


def reference_noise(traj):
  """How much a reference trajectory differs from itself: max |Δg| between its
  last 8-frame (and 40-frame) RDF window and the window ending half-way, and
  the relative difference of D fitted on the first and the second half of its
  MSD. None for trajectories too short to hold two 8-frame windows (< 8 MSD
  points a half); no 40-frame entry for one too short to hold two of those."""
  span = traj.time_fs[-1] - traj.time_fs[0]
  if span < 16 * MSD_EVERY_FS:
    return None
  half = traj.time_fs[0] + 0.5 * span
  early = states.Traj(*[x[traj.time_fs <= half] for x in traj[:3]], traj.box)
  windows = {}
  for count in (RDF_FRAMES, RDF_FRAMES_LONG):
    if span >= 2 * count * RDF_GAP_FS:
      g_late = rdf(traj.positions[_last_frames(traj, count)], traj.box)[1]
      g_early = rdf(early.positions[_last_frames(early, count)], traj.box)[1]
      windows[count] = compare_rdf(g_late, g_early)
  idx = _every(traj, MSD_EVERY_FS)
  t, q = traj.time_fs[idx] - traj.time_fs[0], traj.positions[idx]
  first = t <= t[-1] / 2
  d1 = diffusion_from_msd(t[first], msd(q[first]))[0]
  d2 = diffusion_from_msd(t[~first] - t[~first][0], msd(q[~first]))[0]
  out = {"rdf_max_abs_diff_between_windows": windows[RDF_FRAMES],
         "diffusion_relative_diff_between_halves": d2 / d1 - 1.0}
  if RDF_FRAMES_LONG in windows:
    out["rdf_max_abs_diff_between_windows_long"] = windows[RDF_FRAMES_LONG]
  return out


def compare_metrics(m, ref):
  """Differences of trajectory metrics m from the reference metrics ref
  (rdf_max_abs_diff_long: of the 40-frame RDFs, where both have one)."""
  out = {
      "rdf_max_abs_diff": compare_rdf(m["rdf"]["g"], ref["rdf"]["g"]),
      "rdf_first_peak_shift_A": m["rdf_first_peak_A"] - ref["rdf_first_peak_A"],
      "rdf_first_peak_height_diff": m["rdf_first_peak_height"] - ref["rdf_first_peak_height"],
      "diffusion_relative_error": m["diffusion_A2_per_fs"] / ref["diffusion_A2_per_fs"] - 1.0,
  }
  if "rdf_long" in m and "rdf_long" in ref:
    out["rdf_max_abs_diff_long"] = compare_rdf(m["rdf_long"]["g"], ref["rdf_long"]["g"])
  return out
