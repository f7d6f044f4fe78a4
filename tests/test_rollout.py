"""Roll-outs: thermostats, energy rescaling, blow-up detection, resume; analysis
(RDF, MSD, diffusion, equipartition) against hand-computed values."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import LOOSE
from mdnet_tf import analysis
from mdnet_tf import capacity
from mdnet_tf import errors
from mdnet_tf import extxyz
from mdnet_tf import integrate
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import propagators
from mdnet_tf import rollout
from mdnet_tf import signatures
from mdnet_tf import units
from mdnet_tf.data import dataset
from mdnet_tf.models import io as model_io

MASS = units.ARGON_MASS
LJ = potentials.LennardJones()


def _verlet(dt_fs):
  return propagators.verlet_propagator(dt_fs, LJ, MASS)


def _liquid(liquid_frame):
  q = liquid_frame.positions.astype(np.float64)
  p = liquid_frame.velocities * MASS
  return q, p - p.mean(0), liquid_frame.box.astype(np.float64)


def _scaled(propagator, factor, name):
  """A propagator whose momenta about the centre of mass come out `factor`
  times too large (heats up, conserves total momentum)."""
  def delta(q, p, box, nl, capacity):
    out = propagator.delta(q, p, box, nl, capacity)
    com = tf.reduce_mean(p + out.dp, 0, keepdims=True)
    return out._replace(dp=com + (p + out.dp - com) * factor - p)
  return propagator._replace(delta=delta, name=name)


@pytest.mark.parametrize("thermostat", ["csvr", "langevin"])
def test_thermostat_reaches_and_holds_the_target(liquid_frame, tmp_path, thermostat):
  q, p, box = _liquid(liquid_frame)
  settings = rollout.Settings(thermostat=thermostat, temperature=120.0, tau_fs=100.0,
                              write_every=50)
  result = rollout.Rollout(_verlet(4.0), settings).run(
      q, p, box, 600, str(tmp_path), progress=False)
  assert result.failure is None
  temps = result.thermo["temperature_K"]
  assert temps[0] < 100.0            # starts near 80 K
  held = temps[200:]                 # after 800 fs = 8 τ
  # 256 atoms: canonical std of T is T·sqrt(2/(3N − 3)) ≈ 6 K; the mean of
  # 400 correlated samples (τ = 100 fs = 25 steps) is good to ~1.5 K.
  assert abs(held.mean() - 120.0) < 4.0, held.mean()
  assert 3.0 < held.std() < 12.0, held.std()


def test_energy_rescaling_holds_energy_and_momentum(liquid_frame, tmp_path):
  q, p, box = _liquid(liquid_frame)
  p = p + np.array([0.02, -0.01, 0.005])   # nonzero centre-of-mass momentum
  heating = _scaled(_verlet(4.0), 1.002, "heating")
  settings = rollout.Settings(energy_rescale=True, write_every=25)
  result = rollout.Rollout(heating, settings).run(q, p, box, 100, str(tmp_path),
                                                   progress=False)
  assert result.failure is None
  report = dataset.read_json(os.path.join(str(tmp_path), rollout.REPORT))
  e0 = report["initial_total_energy_kcal_mol"]
  total = result.thermo["total_kcal_mol"]
  # Rescaling is exact in float64; float32 precision (1e-7 relative) is the bar.
  np.testing.assert_allclose(total, e0, rtol=1e-7)
  alpha = result.thermo["alpha"]
  assert np.all(alpha < 1.0) and np.all(alpha > 0.99)    # it removes the heating
  p0 = np.linalg.norm(p.sum(0))
  # The rescaling itself keeps P exactly (see the unit test below); the float32
  # Δp of the propagator moves P by float32 rounding, ~1e-7 relative per step.
  np.testing.assert_allclose(result.thermo["momentum_norm"], p0, rtol=2e-6)
  # Without rescaling the same propagator heats up.
  free = rollout.Rollout(heating, rollout.Settings(write_every=25)).run(
      q, p, box, 100, str(tmp_path / "free"), progress=False)
  assert free.thermo["temperature_K"][-1] > 1.15 * free.thermo["temperature_K"][0]


def test_rescale_to_energy_infeasible_and_clipped():
  rng = np.random.default_rng(0)
  p = tf.constant(rng.normal(size=(50, 3)) + 0.3)
  k = float(integrate.kinetic_energy(p, MASS))
  com = p.numpy().mean(0)
  # Exact case: target reachable within bounds.
  out, alpha, infeasible, clipped = integrate.rescale_to_energy(
      p, MASS, tf.constant(-10.0, tf.float64), tf.constant(k - 10.0 - 0.01 * k, tf.float64),
      (0.9, 1.1))
  assert not bool(infeasible) and not bool(clipped)
  assert abs(float(integrate.kinetic_energy(out, MASS)) - 0.99 * k) < 1e-9 * k
  np.testing.assert_allclose(out.numpy().mean(0), com, rtol=1e-12)
  # Potential above the target: infeasible, α takes the lower bound.
  out, alpha, infeasible, clipped = integrate.rescale_to_energy(
      p, MASS, tf.constant(100.0, tf.float64), tf.constant(50.0, tf.float64), (0.9, 1.1))
  assert bool(infeasible) and float(alpha) == 0.9
  # Reachable but beyond the bounds: clipped.
  _, alpha, infeasible, clipped = integrate.rescale_to_energy(
      p, MASS, tf.constant(0.0, tf.float64), tf.constant(3.0 * k, tf.float64), (0.9, 1.1))
  assert bool(clipped) and not bool(infeasible) and float(alpha) == 1.1


def test_blow_up_is_detected_and_not_written(liquid_frame, tmp_path):
  q, p, box = _liquid(liquid_frame)
  exploding = _scaled(_verlet(4.0), 1.5, "exploding")  # T × 2.25 per step
  result = rollout.Rollout(exploding, rollout.Settings(write_every=1)).run(
      q, p, box, 20, str(tmp_path), progress=False)
  assert result.failure is not None and "temperature" in result.failure.reason
  assert result.failure.step == 2          # 80 K × 2.25² > 3 × 80 K
  steps, _, _, _ = extxyz.read_frames(os.path.join(str(tmp_path), rollout.TRAJECTORY))
  assert steps.tolist() == [0, 1]          # the failing state is not in the trajectory
  # Two atoms planted 2 Å apart: the closest-pair check fires at once.
  q2 = q.copy()
  q2[1] = q2[0] + np.array([2.0, 0.0, 0.0])
  still = propagators.Propagator(
      lambda q, p, box, nl, capacity: propagators.Delta(tf.zeros_like(q), tf.zeros_like(p),
                                                        tf.constant(False)),
      4.0, 7.0, MASS, LJ, True, "still")
  result = rollout.Rollout(still, rollout.Settings()).run(q2, p, box, 5, str(tmp_path / "b"),
                                                          progress=False)
  assert result.failure.step == 1 and "apart" in result.failure.reason


def test_resume_after_kill_gives_the_same_trajectory(liquid_frame, tmp_path):
  q, p, box = _liquid(liquid_frame)
  settings = rollout.Settings(thermostat="csvr", temperature=90.0, tau_fs=50.0, write_every=5)
  prop = _verlet(8.0)
  full = str(tmp_path / "full")
  rollout.Rollout(prop, settings).run(q, p, box, 30, full, progress=False)
  killed = str(tmp_path / "killed")
  rollout.Rollout(prop, settings).run(q, p, box, 30, killed, progress=False,
                                      stop_after_chunks=2)
  with open(os.path.join(killed, rollout.TRAJECTORY), "a") as f:
    f.write("256\nLattice=\"torn")       # a frame torn by the kill
  with open(os.path.join(killed, rollout.THERMO_LOG), "a") as f:
    f.write("11 88 1.0")
  rollout.Rollout(prop, settings).run(q, p, box, 30, killed, progress=False)
  for name in (rollout.TRAJECTORY, rollout.THERMO_LOG):
    with open(os.path.join(full, name)) as a, open(os.path.join(killed, name)) as b:
      assert a.read() == b.read(), name
  # Other settings in the same directory are refused, not mixed.
  with pytest.raises(errors.InputError, match="other settings"):
    rollout.Rollout(prop, dataclasses.replace(settings, seed=1)).run(
        q, p, box, 30, killed, progress=False)


@pytest.fixture(scope="module")
def exported_model(smoke_export):
  """(barely trained MDNet, its model directory, its graph-mode SavedModel)."""
  work, path, _ = smoke_export
  return model_io.restore(work)[0], work, path


def test_model_rollout_equals_exported_signatures(exported_model, liquid_frame, tmp_path):
  """In-process XLA roll-out = SavedModel roll-out = StepModule.rollout (10 steps)."""
  model, work, path = exported_model
  q, p, box = _liquid(liquid_frame)
  runs = {}
  for name, prop in (("model", propagators.from_path(work)),
                     ("saved", propagators.from_path(os.path.dirname(path)))):
    # A barely trained model heats up: widen the failure window, compare numerics.
    loose = rollout.Settings(write_every=10, temperature_factor=100.0,
                             min_distance_sigma=1.0 / 3.432)
    res = rollout.Rollout(prop, loose).run(
        q, p, box, 10, str(tmp_path / name), progress=False)
    runs[name] = extxyz.read_frames(str(tmp_path / name / rollout.TRAJECTORY))
    assert res.failure is None
  module = signatures.StepModule(
      model, capacity.Capacity.from_spec(partition.NeighborSpec(7.0, 0.0, 200, 64)),
      temperature_factor=LOOSE["temperature_factor"], min_distance=1.0)
  out = module.rollout(tf.constant(q, tf.float32), tf.constant(p, tf.float32),
                       tf.constant(box, tf.float32), tf.constant(10))
  for name, (_, qs, ps, _) in runs.items():
    # float32 network and float64 state on every side; extxyz keeps 9 digits.
    np.testing.assert_allclose(qs[-1], out["positions"].numpy(), atol=1e-4, err_msg=name)
    np.testing.assert_allclose(ps[-1], out["momenta"].numpy(), atol=2e-4 * np.abs(p).max(),
                               err_msg=name)


def test_rdf_of_a_simple_cubic_lattice():
  a, n = 4.0, 8
  grid = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3) * a
  box = np.full(3, n * a)
  r, g = analysis.rdf(grid, box, r_max=9.0, bins=900)
  rho = len(grid) / box.prod()
  dr = r[1] - r[0]
  shell = rho * g * 4 * np.pi * r ** 2 * dr          # neighbors per bin
  for distance, count in ((a, 6), (a * np.sqrt(2), 12), (a * np.sqrt(3), 8), (2 * a, 6)):
    near = np.abs(r - distance) < 2 * dr
    assert abs(shell[near].sum() - count) < 0.05 * count, (distance, shell[near].sum())
  assert analysis.first_peak(r, g)[0] == pytest.approx(a, abs=dr)
  between = (r > a + 2 * dr) & (r < a * np.sqrt(2) - 2 * dr)
  assert np.all(g[between] == 0)


def test_rdf_windows_are_the_last_8_and_40_frames_and_the_reference_noise_uses_both():
  """trajectory_metrics' RDFs are freud's RDF of exactly the last 8 (the paper)
  and 40 (issue 12's target) frames 128 fs apart; identical trajectories
  differ by zero in both; the reference's 40-frame noise exists only when two
  40-frame windows fit."""
  from mdnet_tf.data import states  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  box = np.full(3, 12.0)
  frames = 100
  q = rng.uniform(0.0, 12.0, (frames, 60, 3))
  traj = states.Traj(np.arange(frames) * 128.0, q, rng.normal(size=q.shape), box)
  m = analysis.trajectory_metrics(traj, MASS)
  np.testing.assert_array_equal(m["rdf"]["g"], analysis.rdf(q[-8:], box)[1])
  np.testing.assert_array_equal(m["rdf_long"]["g"], analysis.rdf(q[-40:], box)[1])
  assert (m["rdf"]["frames"], m["rdf_long"]["frames"]) == (8, 40)
  same = analysis.compare_metrics(m, m)
  assert same["rdf_max_abs_diff"] == 0.0 and same["rdf_max_abs_diff_long"] == 0.0
  noise = analysis.reference_noise(traj)
  late, early = analysis.rdf(q[-40:], box)[1], analysis.rdf(q[11:51], box)[1]   # 51: ≤ half
  assert noise["rdf_max_abs_diff_between_windows_long"] == analysis.compare_rdf(late, early)
  short = analysis.reference_noise(states.Traj(*[x[:60] for x in traj[:3]], box))
  assert "rdf_max_abs_diff_between_windows" in short
  assert "rdf_max_abs_diff_between_windows_long" not in short


def test_msd_and_diffusion_of_a_translating_system():
  rng = np.random.default_rng(1)
  q0 = rng.uniform(0, 20, (30, 3))
  v = np.array([0.01, -0.02, 0.005])             # Å/fs
  t = np.arange(0, 2560, 256.0)
  frames = q0[None] + v[None, None] * t[:, None, None]
  # freud computes in float32: relative 1e-6.
  np.testing.assert_allclose(analysis.msd(frames), (v ** 2).sum() * t ** 2, rtol=1e-6)
  # Brownian-like: MSD = 6 D t exactly gives D back; VACF of constant velocity is |v|².
  d_true = 2.4e-5 * 10                           # Å²/fs (2.4e-5 cm²/s)
  d, d_cgs, residual = analysis.diffusion_from_msd(t, 6 * d_true * t)
  assert d == pytest.approx(d_true) and d_cgs == pytest.approx(2.4e-5) and residual < 1e-9
  p = np.broadcast_to(v * MASS, (10, 30, 3))
  np.testing.assert_allclose(analysis.vacf(p, MASS, 4), (v ** 2).sum(), rtol=1e-12)


def test_equipartition_of_maxwell_boltzmann_samples():
  rng = np.random.default_rng(2)
  t = 80.0
  sigma_p = np.sqrt(MASS * units.BOLTZMANN * t / units.MVV_TO_ENERGY)
  p = rng.normal(0, sigma_p, (20, 2000, 3))
  out = analysis.equipartition(p, MASS)
  np.testing.assert_allclose(out["component_temperature_K"], t, rtol=0.01)
  assert out["max_histogram_deviation"] < 0.05
  p[..., 0] *= 1.2                                # x hotter than y, z
  assert analysis.equipartition(p, MASS)["max_component_deviation"] > 0.2


def test_energy_drift_and_bad_input():
  t = np.linspace(0, 1e5, 50)                      # fs = 0.1 ns
  drift, residual = analysis.energy_drift(t, -700 + 864 * 0.5 * t * 1e-6, 864)
  assert drift == pytest.approx(0.5) and residual < 1e-9
  with pytest.raises(Exception, match="NaN"):
    analysis.msd(np.full((3, 4, 3), np.nan))
  with pytest.raises(Exception, match=r"\[frames, atoms, 3\]"):
    analysis.rdf(np.zeros((2, 3, 2)), np.ones(3) * 10)


def test_capacity_overflow_grows_and_repeats_the_chunk(liquid_frame, tmp_path):
  """A roll-out started with far too small capacities regrows them and gives the
  same trajectory as one with ample capacities (nothing is truncated)."""
  q, p, box = _liquid(liquid_frame)
  prop = _verlet(8.0)
  ample = rollout.Rollout(prop, rollout.Settings(write_every=5))
  ample.run(q, p, box, 10, str(tmp_path / "ample"), progress=False)
  tight = rollout.Rollout(prop, rollout.Settings(write_every=5))
  tight._allocate(q, box)  # pylint: disable=protected-access
  tight.capacity = tight.capacity._replace(
      spec=tight.capacity.spec._replace(max_neighbors=4, cell_capacity=2),
      edges_per_atom=10 / len(q))
  tight.run(q, p, box, 10, str(tmp_path / "tight"), progress=False)
  assert tight.capacity.spec.max_neighbors > ample.capacity.spec.max_neighbors * 0.5
  a = extxyz.read_frames(str(tmp_path / "ample" / rollout.TRAJECTORY))
  b = extxyz.read_frames(str(tmp_path / "tight" / rollout.TRAJECTORY))
  np.testing.assert_array_equal(a[1], b[1])


def test_rollout_cli_writes_lammps_dump_and_reports_failure(exported_model, smoke_dir, tmp_path):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from mdnet_tf.data import dump  # pylint: disable=import-outside-toplevel
  _, work, _ = exported_model
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  base = [sys.executable, os.path.join(root, "launch", "rollout.py"), f"--model={work}",
          f"--start={smoke_dir}", "--time_fs=64", "--write_every_fs=32",
          "--temperature_factor=100"]
  out = str(tmp_path / "ok")
  run = subprocess.run(base + [f"--out_dir={out}", "--energy_rescale", "--lammps_dump"],
                       capture_output=True, text=True, check=False)
  assert run.returncode == 0, run.stderr[-2000:]
  assert "roll-out: 4 steps of 16 fs" in run.stdout
  steps, q, p, _ = extxyz.read_frames(os.path.join(out, rollout.TRAJECTORY))
  frames = dump.read_dump(os.path.join(out, "trajectory.dump"))
  assert [f.timestep for f in frames] == [0, 32, 64] and steps.tolist() == [0, 2, 4]
  np.testing.assert_allclose(frames[-1].positions, q[-1], atol=1e-8)
  np.testing.assert_allclose(frames[-1].velocities * MASS, p[-1], rtol=1e-8, atol=1e-12)
  # Every liquid has pairs closer than 1.5 σ = 5.1 Å: the first step fails, exit code 2.
  run = subprocess.run(base + [f"--out_dir={tmp_path / 'bad'}", "--min_distance_sigma=1.5"],
                       capture_output=True, text=True, check=False)
  assert run.returncode == 2 and "FAILED at step 1" in run.stdout


def test_thermo_metrics_leave_out_the_record_of_a_diverged_step():
  """A roll-out that failed on a non-finite step keeps its finite history's
  temperature and drift (hand-computed: T = 80, 82, 84 K; E grows 1e-3
  kcal/mol per atom per 10 fs = 100 kcal/mol/atom/ns)."""
  from mdnet_tf import stepping, thermo  # pylint: disable=import-outside-toplevel
  values = np.zeros((4, len(stepping.RECORDED)))
  names = list(stepping.RECORDED)
  values[:, names.index("temperature_K")] = [80.0, 82.0, 84.0, np.nan]
  values[:, names.index("total_kcal_mol")] = [-100.0, -99.9, -99.8, np.nan]
  log = thermo.records(np.arange(4), 10.0 * np.arange(4), values)
  out = analysis.thermo_metrics(log, num_atoms=100)
  assert out["temperature_mean_K"] == pytest.approx(82.0)
  assert out["energy_drift_kcal_mol_atom_ns"] == pytest.approx(100.0)


def test_roll_out_summary_describes_the_good_steps_of_a_failed_run():
  """A failed step's non-finite row (a diverged solve) stays out of the
  summary's temperature and energy; the failure line reports it."""
  from mdnet_tf import reporting, thermo  # pylint: disable=import-outside-toplevel
  log = np.zeros(3, thermo.DTYPE)
  log["temperature_K"] = [80.0, 82.0, np.nan]
  log["total_kcal_mol"] = [-100.0, -99.0, np.nan]
  log["min_distance_A"] = [3.2, 3.1, np.nan]
  failure = rollout.Failure(2, 256.0, "the implicit (symplectic) step did not converge")
  text = reporting.describe_rollout(rollout.Result(1, failure, log, 1.0, "out"), 128.0, 10)
  assert "T mean 81.00 K" in text and "-10.00000 → -9.90000" in text and "nan" not in text
  assert "FAILED at step 2" in text


def test_model_card_states_the_roll_out_results_it_is_given():
  """A card's roll-out lines come from the figure2/error_cost/stability records
  of its own model (a failed run states its failure; other models' records
  add nothing)."""
  from mdnet_tf import reporting  # pylint: disable=import-outside-toplevel
  nve = {"status": "ok", "temperature_mean_K": 82.74, "temperature_std_K": 1.81,
         "energy_drift_kcal_mol_atom_ns": 0.684,
         "vs_lammps": {"rdf_max_abs_diff": 0.0823, "diffusion_relative_error": 0.071}}
  figure2 = {"paper": {"num_atoms": 4000, "models": {"mdnet_dt128": {"nve": nve},
                                                     "mdnet_dt64": {"nve": nve}}}}
  error_cost = {"horizon_fs": 768.0, "num_atoms": 864, "starts_fs": [0, 1, 2],
                "mdnet": {"128": {"rollout_rmse_A": 0.0375}},
                "verlet": {"128": {"rollout_rmse_A": 9.9, "stable": False}}}
  stability = {"mdnet_dt128": {"nve": {
      "failure": {"reason": "atoms 1.92 Å apart", "step": 127, "time_fs": 16256.0},
      "reached_target": False, "simulated_fs": 16256.0, "target_fs": 204800.0, "num_atoms": 4000,
      "temperature_mean_K": 106.0, "temperature_min_max_K": [79.5, 167.9]}}}
  small = {"mdnet_dt128": {"nve": {
      "failure": None, "reached_target": True, "simulated_fs": 2048.0, "target_fs": 2048.0,
      "num_atoms": 864, "temperature_mean_K": 81.0, "temperature_min_max_K": [79.0, 83.0],
      "energy_drift_kcal_mol_atom_ns": 0.0123}}}
  lines = reporting.card_rollouts("mdnet_dt128", 128, figure2, error_cost, [stability, small])
  assert len(lines) == 4
  assert "4000 atoms" in lines[0] and "T 82.7 (1.8) K" in lines[0]
  assert "max|Δg| 0.082" in lines[0] and "D +7.1%" in lines[0] and "0.684" in lines[0]
  assert "0.0375 Å" in lines[1] and "Verlet" not in lines[1]     # Verlet-128 is unstable
  assert "run of 864 atoms" in lines[2] and "reached 2.048 ps" in lines[2]   # smaller first
  assert "energy drift 0.0123 kcal/mol/atom/ns" in lines[2]
  assert "run of 4000 atoms" in lines[3] and "failed at 16.256 ps: atoms 1.92 Å apart" in lines[3]
  assert "drift" not in lines[3]                                   # none recorded
  assert reporting.card_rollouts("mdnet_dt16", 16, figure2, error_cost, [stability]) == []


def test_figure2_results_merge_or_replace_a_models_variants(tmp_path):
  """Re-running some variants keeps a model's others; --replace (a republished
  model) drops them; other models are kept either way."""
  from mdnet_tf import studies  # pylint: disable=import-outside-toplevel
  path = str(tmp_path / "figure2.json")
  old = {"num_atoms": 4000, "models": {"mdnet_dt16": {"nve": {"v": 1}, "nvt": {"v": 2}},
                                       "mdnet_dt32": {"nve": {"v": 3}}}}
  studies.merge_json(path, "paper", old)
  merged = studies.merge_json(path, "paper",
                              {"num_atoms": 4000, "models": {"mdnet_dt16": {"nve": {"v": 4}}}})
  assert merged["paper"]["models"]["mdnet_dt16"] == {"nve": {"v": 4}, "nvt": {"v": 2}}
  replaced = studies.merge_json(path, "paper", {"num_atoms": 4000, "models": {
      "mdnet_dt16": {"nve": {"v": 5}}}}, replace=True)
  assert replaced["paper"]["models"] == {"mdnet_dt16": {"nve": {"v": 5}},
                                         "mdnet_dt32": {"nve": {"v": 3}}}


def test_stability_table_states_the_drift_and_the_outcome():
  """A record with its energy drift shows it; one written before drift was kept shows —."""
  from mdnet_tf import reporting  # pylint: disable=import-outside-toplevel
  base = {"dt_fs": 64.0, "failure": None, "reached_target": True, "simulated_fs": 1e6,
          "target_fs": 1e6,
          "num_atoms": 864, "temperature_mean_K": 81.5, "temperature_min_max_K": [75.8, 86.2],
          "total_energy_per_atom_start_end": [-0.863, -0.8605], "infeasible_rescales": 0,
          "clipped_rescales": 0}
  failed = dict(base, dt_fs=128.0, reached_target=False, simulated_fs=95552.0,
                failure={"reason": "the implicit step did not converge", "step": 1493,
                         "time_fs": 95552.0})
  md = reporting.stability_markdown({
      "mdnet_symplectic_dt64": {"nve": dict(base, energy_drift_kcal_mol_atom_ns=0.0023)},
      "mdnet_symplectic_dt128": {"nve": failed}})
  rows = [line for line in md.splitlines() if line.startswith("| mdnet")]
  assert "| 1000 ps | reached target |" in rows[0] and "| +0.0023 |" in rows[0]
  assert "FAILED: the implicit step did not converge" in rows[1] and "| — |" in rows[1]
