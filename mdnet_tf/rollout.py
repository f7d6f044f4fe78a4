"""Long roll-outs: the step loop (stepping.py) in compiled chunks, with
monitoring, blow-up detection, trajectory files, checkpoint and resume.

Ensembles (see stepping.py for one step):
  NVE — the learned step alone (the paper);
  NVE with energy rescaling (FlashMD) — after each step the momenta are
    rescaled about the centre of mass so that kinetic + exact LJ potential
    equals the initial total E0; α is kept within `rescale_bounds`, and steps
    where no α reaches E0 ("infeasible") or α was clipped are counted;
  NVT — CSVR or Langevin for ½Δt before and after each learned step.

After every step the thermo values are recorded (thermo.py); a step fails if
any value is non-finite, the temperature leaves [T_ref / f, T_ref · f] (T_ref:
the target in NVT, the start temperature in NVE) or two atoms come closer than
`min_distance`. The roll-out then stops at that step with a report; the
failing state is not written to the trajectory.

Steps run in chunks of `write_every` steps (one compiled program, XLA for
in-process models). After each chunk the frame is appended to an extended XYZ
file, the thermo rows to the log, and a checkpoint (state + byte sizes of both
files) is written atomically; a killed roll-out resumes from it, cutting
anything written after the checkpoint, and continues bit for bit. A capacity
overflow grows the capacities and repeats the chunk (never truncates).
"""

import dataclasses
import json
import os
import time
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf
import tqdm

from mdnet_tf import capacity as capacity_lib
from mdnet_tf import errors
from mdnet_tf import extxyz
from mdnet_tf import integrate
from mdnet_tf import io_utils
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import space
from mdnet_tf import stepping
from mdnet_tf import thermo

THERMOSTATS = stepping.THERMOSTATS
CHECKPOINT = "rollout_checkpoint.npz"
TRAJECTORY = "trajectory.extxyz"
THERMO_LOG = "thermo.dat"
REPORT = "report.json"


@dataclasses.dataclass(frozen=True)
class Settings:
  """What a roll-out does (independent of the propagator).

  thermostat: 'none' (NVE), 'csvr' or 'langevin'.  temperature: target, K (None: the start state's temperature).
  tau_fs: coupling time (CSVR) or 1/friction (Langevin), fs.
  energy_rescale: NVE only; hold kinetic + LJ potential at its initial value.
  rescale_bounds: allowed range of the rescaling factor α per step.
  write_every: steps per chunk (frame + thermo flush + checkpoint).
  temperature_factor: failure if T leaves [T_ref / f, T_ref · f].
  min_distance_sigma: failure if two atoms come closer, in units of the
    propagator's LJ σ.
  seed: thermostat noise seed.
  """
  thermostat: str = "none"
  temperature: Optional[float] = None
  tau_fs: float = 1000.0
  energy_rescale: bool = False
  rescale_bounds: tuple = (0.9, 1.1)
  write_every: int = 1
  temperature_factor: float = 3.0
  min_distance_sigma: float = stepping.MIN_DISTANCE_SIGMA
  seed: int = 0

  def __post_init__(self):
    if self.thermostat not in THERMOSTATS:
      raise errors.InputError(f"thermostat must be one of {THERMOSTATS}, got "
                              f"{self.thermostat!r}")
    if self.thermostat != "none" and self.energy_rescale:
      raise errors.InputError("energy rescaling holds the NVE total energy; it "
                              "cannot be combined with a thermostat")
    if ((self.temperature is not None and self.temperature <= 0) or self.tau_fs <= 0
        or self.write_every < 1 or self.min_distance_sigma < 0):
      raise errors.InputError("need temperature > 0 K, tau_fs > 0 fs, write_every ≥ 1, "
                              "min_distance_sigma ≥ 0")
    lo, hi = self.rescale_bounds
    if not 0 < lo <= 1 <= hi:
      raise errors.InputError(f"rescale_bounds must satisfy 0 < lo ≤ 1 ≤ hi, got "
                              f"{self.rescale_bounds}")

  @property
  def ensemble(self):
    return "nve" if self.thermostat == "none" else "nvt"

  def loop(self, record_steps, sigma):
    """The stepping.Loop of these settings (monitoring on) for LJ σ `sigma` Å."""
    return stepping.Loop(self.thermostat, self.energy_rescale, tuple(self.rescale_bounds),
                         True, record_steps, self.min_distance_sigma * sigma)


class Failure(NamedTuple):
  """Why and when a roll-out stopped early."""
  step: int
  time_fs: float
  reason: str


class Result(NamedTuple):
  """What `Rollout.run` did. thermo: the structured log (thermo.py) of the
  whole roll-out, earlier calls included when resumed."""
  steps_done: int
  failure: Optional[Failure]
  thermo: np.ndarray
  seconds: float
  out_dir: str


def diagnose(row, settings, t_low, t_high, sigma):
  """Why a monitored step failed, from its thermo row (a structured record);
  sigma: the potential's σ, Å."""
  values = np.array([row[name] for name in stepping.RECORDED])
  temp, r_min = row["temperature_K"], row["min_distance_A"]
  if row["solver_converged"] == 0:
    return (f"the implicit (symplectic) step did not converge in "
            f"{row['solver_iterations']:.0f} iterations")
  if not np.all(np.isfinite(values)):
    return "non-finite positions, momenta or energies"
  if temp > t_high or temp < t_low:
    return (f"temperature {temp:.4g} K outside [{t_low:.4g}, {t_high:.4g}] K "
            f"(factor {settings.temperature_factor} around the reference)")
  limit = settings.min_distance_sigma * sigma
  if r_min < limit:
    return (f"atoms {r_min:.3g} Å apart (< {settings.min_distance_sigma:.3g} σ = "
            f"{limit:.3g} Å)")
  return "non-finite positions"


class Rollout:
  """Runs a propagator for many steps with monitoring and checkpoints."""

  def __init__(self, propagator, settings=Settings()):
    self.propagator = propagator
    self.settings = settings
    self.capacity = None
    self._compiled = {}

  def _chunk(self, capacity, num_steps):
    """The compiled chunk of num_steps steps (one program per capacity and length)."""
    key = (capacity, num_steps)
    if key not in self._compiled:
      prop, loop = self.propagator, self.settings.loop(num_steps, self.propagator.lj.sigma)

      def chunk(q, p, box, dyn):
        return stepping.run(prop, capacity, loop, q, p, box, num_steps, dyn)

      self._compiled[key] = tf.function(chunk, jit_compile=prop.jit_compile)
    return self._compiled[key]

  def _allocate(self, q, box):
    if self.capacity is None:
      self.capacity, _ = capacity_lib.Capacity.fit(
          q.astype(np.float32), box.astype(np.float32), self.propagator.cutoff)

  def energy(self, q, box):
    """Exact LJ potential energy of positions q [N, 3] (kcal/mol, float64)."""
    self._allocate(q, box)
    while True:
      nl = partition.build(tf.constant(q, tf.float32), tf.constant(box, tf.float32),
                           self.capacity.spec)
      if not bool(nl.overflow):
        break
      self.capacity = self.capacity.grow(nl)
    return float(potentials.energy_and_forces(tf.constant(q), tf.constant(box), nl,
                                              self.propagator.lj)[0])

  def run(self, positions, momenta, box, num_steps, out_dir, progress=True,
          stop_after_chunks=None, max_seconds=None):
    """Rolls out `num_steps` steps (resuming from out_dir's checkpoint if any).

    Args:
      positions: [N, 3] Å.  momenta: [N, 3] g/mol·Å/fs.  box: [3] Å.
      num_steps: total steps of the roll-out (including resumed ones).
      out_dir: trajectory.extxyz, thermo.dat, rollout_checkpoint.npz, report.json.
      stop_after_chunks: for tests, return after this many chunks (as if killed).
      max_seconds: stop (checkpointed, resumable) after this much wall time.
    Returns:
      Result.
    Raises:
      errors.InputError: bad state, box < 2 r_c, or a checkpoint of another run.
    """
    s, prop = self.settings, self.propagator
    q = np.asarray(positions, np.float64)
    p = np.asarray(momenta, np.float64)
    box = np.asarray(box, np.float64)
    space.check_state(q, p, box, prop.cutoff)
    os.makedirs(out_dir, exist_ok=True)
    paths = {k: os.path.join(out_dir, v) for k, v in (
        ("ckpt", CHECKPOINT), ("traj", TRAJECTORY), ("thermo", THERMO_LOG),
        ("report", REPORT))}
    fingerprint = json.dumps({"settings": dataclasses.asdict(s), "dt_fs": prop.dt_fs,
                              "num_atoms": len(q), "propagator": prop.name}, sort_keys=True)
    self._allocate(q, box)
    if os.path.exists(paths["ckpt"]):
      q, p, step, e0, t_ref = self._resume(paths, fingerprint, out_dir)
    else:
      for key in ("traj", "thermo", "report"):
        if os.path.exists(paths[key]):
          os.remove(paths[key])
      step = 0
      e0 = self.energy(q, box) + float(integrate.kinetic_energy(tf.constant(p), prop.mass))
      t_start = float(integrate.temperature(tf.constant(p), prop.mass))
      t_ref = s.temperature if s.thermostat != "none" and s.temperature else t_start
      extxyz.append_frame(paths["traj"], 0, q, p, box, prop.dt_fs)
      thermo.start(paths["thermo"], prop.dt_fs, prop.name, s.ensemble)
      self._checkpoint(paths, q, p, 0, e0, t_ref, fingerprint)
    t_low, t_high = t_ref / s.temperature_factor, t_ref * s.temperature_factor
    failure, chunks, started = None, 0, time.time()
    bar = tqdm.tqdm(total=num_steps, initial=step, unit="step", disable=not progress,
                    desc=f"roll-out {prop.name} {s.ensemble}"
                         f"{'+rescale' if s.energy_rescale else ''}")
    while step < num_steps and failure is None:
      n = min(s.write_every, num_steps - step)
      dyn = stepping.Dynamic(step0=tf.constant(step), seed=tf.constant(s.seed % 2 ** 31),
                             temperature=tf.constant(t_ref, tf.float64),
                             tau_fs=tf.constant(s.tau_fs, tf.float64),
                             e0=tf.constant(e0, tf.float64),
                             t_low=tf.constant(t_low, tf.float64),
                             t_high=tf.constant(t_high, tf.float64))
      while True:
        out = self._chunk(self.capacity, n)(tf.constant(q), tf.constant(p), tf.constant(box),
                                            dyn)
        if not bool(out.overflow):
          break
        self.capacity = self.capacity.grow(out.neighbors)
      done = int(out.steps_done)
      steps = np.arange(step + 1, step + done + 1)
      log = thermo.records(steps, steps * prop.dt_fs, out.rows.numpy()[:done])
      thermo.append(paths["thermo"], log)
      if bool(out.failed):
        failure = Failure(step + done, (step + done) * prop.dt_fs,
                          diagnose(log[-1], s, t_low, t_high, prop.lj.sigma))
        step += done
        break
      q, p = out.positions.numpy(), out.momenta.numpy()
      step += n
      extxyz.append_frame(paths["traj"], step, q, p, box, prop.dt_fs)
      self._checkpoint(paths, q, p, step, e0, t_ref, fingerprint)
      bar.update(n)
      chunks += 1
      if stop_after_chunks is not None and chunks >= stop_after_chunks:
        break
      if max_seconds is not None and time.time() - started > max_seconds:
        break
    bar.close()
    seconds = time.time() - started
    log = thermo.read(paths["thermo"])
    report = {"propagator": prop.name, "dt_fs": prop.dt_fs, "num_atoms": len(q),
              "mass_amu": prop.mass, "potential": prop.lj._asdict(),
              "settings": dataclasses.asdict(s), "steps_requested": num_steps,
              "steps_done": step, "simulated_fs": step * prop.dt_fs,
              "initial_total_energy_kcal_mol": e0, "reference_temperature_K": t_ref,
              "failure": failure._asdict() if failure else None,
              "infeasible_rescales": int(log["infeasible"].sum()),
              "clipped_rescales": int(log["clipped"].sum()),
              "wall_seconds_this_call": seconds}
    io_utils.write_json(paths["report"], report)
    return Result(step, failure, log, seconds, out_dir)

  def _resume(self, paths, fingerprint, out_dir):
    """State of the checkpoint; files cut back to what it covered."""
    ck = np.load(paths["ckpt"])
    if str(ck["fingerprint"]) != fingerprint:
      raise errors.InputError(f"{out_dir} holds a roll-out with other settings; use a new "
                              f"--out_dir or the same flags to resume")
    for key, size in (("traj", int(ck["traj_bytes"])), ("thermo", int(ck["thermo_bytes"]))):
      with open(paths[key], "r+b") as f:
        f.truncate(size)
    self.capacity = capacity_lib.Capacity.from_array(ck["capacity"])
    return ck["q"], ck["p"], int(ck["step"]), float(ck["e0"]), float(ck["t_ref"])

  def _checkpoint(self, paths, q, p, step, e0, t_ref, fingerprint):
    with io_utils.atomic_path(paths["ckpt"]) as tmp:
      with open(tmp, "wb") as f:
        np.savez(f, q=q, p=p, step=step, e0=e0, t_ref=t_ref, fingerprint=fingerprint,
                 capacity=self.capacity.to_array(),
                 traj_bytes=os.path.getsize(paths["traj"]),
                 thermo_bytes=os.path.getsize(paths["thermo"]))


def write_lammps_dump(out_dir, dt_fs, mass, name="trajectory.dump"):
  """Converts out_dir's extended XYZ to a LAMMPS text dump (`xu yu zu vx vy vz`)
  with velocities = momenta / mass (g/mol)."""
  from mdnet_tf.data import dump  # pylint: disable=import-outside-toplevel
  steps, q, p, box = extxyz.read_frames(os.path.join(out_dir, TRAJECTORY))
  dump.write_dump(os.path.join(out_dir, name), [
      {"timestep": int(round(s * dt_fs)), "box": box, "positions": qi, "velocities": pi / mass}
      for s, qi, pi in zip(steps, q, p)])
