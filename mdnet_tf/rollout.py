"""Long roll-outs of a learned (or Verlet) step: NVE, energy rescaling, NVT,
monitoring, blow-up detection, checkpoint and resume.

One step of the roll-out, for a propagator that maps (q, p) to (q + Δq, p + Δp)
over Δt (MDNet, EGNN, SIMPLE, an exported SavedModel, or velocity Verlet):

  NVT:  p ← O(Δt/2) p;  (q, p) ← learned step;  p ← O(Δt/2) p
        O = CSVR (Bussi) or Langevin, split around the learned step (FlashMD).
  NVE with energy rescaling (FlashMD): after the learned step, momenta are
        rescaled about the centre of mass, p ← P/N + α (p − P/N), so that
        kinetic + exact LJ potential equals the initial total energy E0:
        α² = (E0 − U(q) − K_com) / K_rel.  α is kept within `rescale_bounds`;
        when E0 − U(q) − K_com ≤ 0 no α can reach E0 ("infeasible"): the step
        takes the bound α_min (the largest feasible move towards E0) and the
        event is counted, as are steps where α was clipped.

State is carried in float64 (positions unwrapped, Å; momenta g/mol·Å/fs); the
model sees float32 inputs. After every step the exact LJ energy (same cutoff as
the training data, unshifted like LAMMPS), temperature, total momentum and the
closest pair distance are recorded; a step fails if any value is non-finite,
the temperature leaves [T_ref / f, T_ref · f] or two atoms come closer than
`min_distance`. The roll-out then stops at that step with a report (the failing
state is not written to the trajectory).

Steps run in compiled chunks of `write_every` steps (one XLA program for
in-process models). After each chunk the frame is appended to an extended XYZ
file, the thermo rows to a text log, and a checkpoint (state + byte sizes of
both files) is written atomically; a killed roll-out resumes from it, cutting
anything written after the checkpoint, and continues bit for bit (thermostat
noise is a stateless function of the seed and the step number).
"""

import dataclasses
import json
import math
import os
import time
from typing import Callable, NamedTuple, Optional

import numpy as np
import tensorflow as tf
import tqdm

from mdnet_tf import errors
from mdnet_tf import extxyz
from mdnet_tf import integrate
from mdnet_tf import io_utils
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import space
from mdnet_tf import units

THERMO_COLUMNS = ("step", "time_fs", "temperature_K", "potential_kcal_mol",
                  "kinetic_kcal_mol", "total_kcal_mol", "momentum_norm",
                  "min_distance_A", "alpha", "infeasible", "clipped")
_NUM_RECORDED = len(THERMO_COLUMNS) - 2   # step and time are added on the host
THERMOSTATS = ("none", "csvr", "langevin")
CHECKPOINT = "rollout_checkpoint.npz"
TRAJECTORY = "trajectory.extxyz"
THERMO_LOG = "thermo.dat"
REPORT = "report.json"


@dataclasses.dataclass(frozen=True)
class Settings:
  """What a roll-out does (independent of the propagator).

  thermostat: 'none' (NVE), 'csvr' or 'langevin'.  temperature: target, K.
  tau_fs: coupling time (CSVR) or 1/friction (Langevin), fs.
  energy_rescale: NVE only; hold kinetic + LJ potential at its initial value.
  rescale_bounds: allowed range of the rescaling factor α per step.
  write_every: steps per chunk (frame + thermo flush + checkpoint).
  temperature_factor: failure if T leaves [T_ref / f, T_ref · f], with T_ref
    the target (NVT) or the start temperature (NVE).
  min_distance: failure if two atoms come closer, Å.
  seed: thermostat noise seed.
  """
  thermostat: str = "none"
  temperature: float = 80.0
  tau_fs: float = 1000.0
  energy_rescale: bool = False
  rescale_bounds: tuple = (0.9, 1.1)
  write_every: int = 1
  temperature_factor: float = 3.0
  min_distance: float = 2.5
  seed: int = 0

  def __post_init__(self):
    if self.thermostat not in THERMOSTATS:
      raise errors.InputError(f"thermostat must be one of {THERMOSTATS}, got "
                              f"{self.thermostat!r}")
    if self.thermostat != "none" and self.energy_rescale:
      raise errors.InputError("energy rescaling holds the NVE total energy; it "
                              "cannot be combined with a thermostat")
    if self.temperature <= 0 or self.tau_fs <= 0 or self.write_every < 1:
      raise errors.InputError("need temperature > 0 K, tau_fs > 0 fs, write_every ≥ 1")
    lo, hi = self.rescale_bounds
    if not 0 < lo <= 1 <= hi:
      raise errors.InputError(f"rescale_bounds must satisfy 0 < lo ≤ 1 ≤ hi, got "
                              f"{self.rescale_bounds}")

  @property
  def ensemble(self):
    return "nve" if self.thermostat == "none" else "nvt"


class Propagator(NamedTuple):
  """One learned step: delta(q, p, box, neighbors, capacity) -> (Δq, Δp, overflow).

  q, p, box float32; neighbors: the partition.NeighborList of q within
  `cutoff`, built by the roll-out with capacity.spec; capacity.max_edges:
  static edge capacity of a graph; overflow: [] bool, a capacity was too small
  (the roll-out grows the capacities and repeats the chunk).

  dt_fs: the step, fs.  cutoff: neighbor list radius the delta needs, Å.
  mass: g/mol.  jit_compile: whether the chunk loop can run under XLA.
  name: for reports.
  """
  delta: Callable
  dt_fs: float
  cutoff: float
  mass: float
  jit_compile: bool
  name: str


def model_propagator(model, name="model"):
  """An in-process model (MDNet, EGNN, SIMPLE; tailoring included) on the XLA path."""
  from mdnet_tf import models  # pylint: disable=import-outside-toplevel
  from mdnet_tf.models import graph as graph_lib  # pylint: disable=import-outside-toplevel
  from mdnet_tf.models import segment_ops  # pylint: disable=import-outside-toplevel
  c = model.config

  def delta(q, p, box, nl, capacity):
    graph = graph_lib.from_neighbors(q, box, nl, c.cutoff_angstrom, capacity.max_edges)
    dq, dp = models.forward(model, q, p, box, graph, segment_ops)
    return dq, dp, graph.overflow

  return Propagator(delta, float(c.dt_fs), float(c.cutoff_angstrom), float(c.mass_amu),
                    True, name)


def savedmodel_propagator(path, signature="serving_default"):
  """An exported SavedModel (its own in-graph neighbor search; not XLA)."""
  loaded = tf.saved_model.load(path)
  meta_path = os.path.join(path, "assets.extra", "mdnet_metadata.json")
  with open(meta_path) as f:
    meta = json.load(f)
  fn = loaded.signatures[signature]

  def delta(q, p, box, nl, capacity):
    del nl, capacity
    assert loaded is not None  # the closure keeps the loaded variables alive
    out = fn(positions=q, momenta=p, box=box)  # overflow raises inside the SavedModel
    return out["positions"] - q, out["momenta"] - p, tf.constant(False)

  return Propagator(delta, float(meta["dt_fs"]), float(meta["cutoff_angstrom"]),
                    float(meta["mass_amu"]), False, f"savedmodel:{path}")


def verlet_propagator(dt_fs, lj=potentials.LennardJones(), mass=units.ARGON_MASS):
  """One velocity-Verlet step of dt_fs as a propagator (forces at both ends)."""
  def delta(q, p, box, nl, capacity):
    _, _, f0 = potentials.energy_and_forces(q, box, nl, lj)
    half = integrate.half_kick(p, f0, dt_fs)
    q1 = integrate.drift(q, half, dt_fs, mass)
    nl1 = partition.build(q1, box, capacity.spec)
    _, _, f1 = potentials.energy_and_forces(q1, box, nl1, lj)
    return q1 - q, integrate.half_kick(half, f1, dt_fs) - p, nl1.overflow

  return Propagator(delta, float(dt_fs), float(lj.cutoff), float(mass), True,
                    f"verlet:{dt_fs:g}fs")


def load_start(path, frame=0):
  """(positions [N,3] Å, momenta [N,3] g/mol·Å/fs, box [3] Å) as float64.

  `path` is a LAMMPS dump (frame index `frame`, negative counts from the end),
  an extended XYZ file (its last complete frame), or a dataset directory (the
  first frame of its long NVT roll-out trajectory).
  """
  from mdnet_tf.data import dataset, dump  # pylint: disable=import-outside-toplevel
  path = str(path)
  if os.path.isdir(path):
    manifest = dataset.load_manifest(path)
    record = next(t for t in manifest["trajectories"] if t["kind"] == "rollout")
    path = os.path.join(path, record["dump"])
  if path.endswith((".xyz", ".extxyz")):
    last = extxyz.last_frame(path)
    if last is None:
      raise errors.InputError(f"{path} holds no complete frame")
    return tuple(np.asarray(x, np.float64) for x in last[1:])
  frames = dump.read_dump(path)
  fr = frames[frame]
  if fr.velocities is None:
    raise errors.InputError(f"{path} has no velocities (vx vy vz): cannot start a roll-out")
  mass = units.ARGON_MASS
  return fr.positions.astype(np.float64), fr.velocities * mass, fr.box.astype(np.float64)


# -- in-graph pieces -----------------------------------------------------------


def min_pair_distance(positions, box, neighbors, cutoff):
  """Closest pair distance within `cutoff` (cutoff if none), Å."""
  n = tf.shape(positions)[0]
  idx = neighbors.indices
  other = tf.gather(positions, tf.minimum(idx, n - 1))
  d = space.displacement(positions[:, None, :], other, tf.cast(box, positions.dtype))
  r2 = tf.where(idx < n, tf.reduce_sum(d * d, -1), tf.cast(cutoff ** 2, positions.dtype))
  return tf.sqrt(tf.reduce_min(r2))


def rescale_to_energy(momenta, mass, potential, target_total, bounds):
  """Momenta rescaled about the centre of mass so that K + U = target_total.

  Args:
    momenta: [N, 3] g/mol·Å/fs (float64).  mass: g/mol (one species).
    potential: [] kcal/mol at the current positions.  target_total: [] kcal/mol.
    bounds: (α_min, α_max).
  Returns:
    (momenta [N, 3], α [], infeasible [] bool, clipped [] bool). Total momentum
    is unchanged; with α inside the bounds K + U equals target_total.
  """
  com = tf.reduce_mean(momenta, axis=0, keepdims=True)
  relative = momenta - com
  k_rel = integrate.kinetic_energy(relative, mass)
  k_com = integrate.kinetic_energy(momenta, mass) - k_rel
  wanted = target_total - potential - k_com
  infeasible = wanted <= 0.0
  exact = tf.sqrt(tf.maximum(wanted, 0.0) / tf.maximum(k_rel, 1e-300))
  lo, hi = (tf.constant(b, momenta.dtype) for b in bounds)
  alpha = tf.where(infeasible, lo, tf.clip_by_value(exact, lo, hi))
  clipped = tf.logical_and(tf.logical_not(infeasible), tf.not_equal(alpha, exact))
  return com + alpha * relative, alpha, infeasible, clipped


def langevin_half(momenta, mass, temperature, dt_fs, tau_fs, seed):
  """Exact Ornstein–Uhlenbeck update of momenta over dt_fs (friction 1/tau_fs).

  p ← c p + sqrt((1 − c²) m k_B T) ξ, c = exp(−dt/τ); the variance is in
  (g/mol·Å/fs)²: m k_B T / MVV_TO_ENERGY.
  """
  c = tf.exp(tf.constant(-dt_fs / tau_fs, momenta.dtype))
  sigma = tf.sqrt((1.0 - c * c) * mass * units.BOLTZMANN * temperature / units.MVV_TO_ENERGY)
  noise = tf.random.stateless_normal(tf.shape(momenta), seed, dtype=momenta.dtype)
  return c * momenta + tf.cast(sigma, momenta.dtype) * noise


class Capacity(NamedTuple):
  """Static capacities of a roll-out: neighbor list spec and graph edges."""
  spec: partition.NeighborSpec
  max_edges: int

  @classmethod
  def fit(cls, spec, nl, multiplier):
    """Edge capacity from the undirected pairs of a built list, with head-room."""
    pairs = int(tf.reduce_sum(tf.cast(nl.indices < nl.indices.shape[0], tf.int32))) // 2
    return cls(spec, max(1, int(math.ceil(pairs * multiplier))))

  def to_array(self):
    return np.array(list(self.spec) + [self.max_edges], np.float64)

  @classmethod
  def from_array(cls, values):
    cutoff, skin, k, cell, edges = values.tolist()
    return cls(partition.NeighborSpec(cutoff, skin, int(k), int(cell)), int(edges))


class Failure(NamedTuple):
  """Why and when a roll-out stopped early."""
  step: int
  time_fs: float
  reason: str


class Result(NamedTuple):
  """What `Rollout.run` did. thermo: [S, len(THERMO_COLUMNS)] rows of this call
  (and earlier calls when resumed: it is read back from the log)."""
  steps_done: int
  failure: Optional[Failure]
  thermo: np.ndarray
  seconds: float
  out_dir: str


class Rollout:
  """Runs a propagator for many steps with monitoring and checkpoints."""

  def __init__(self, propagator, settings=Settings(), capacity_multiplier=1.3,
               lj=None):
    self.propagator = propagator
    self.settings = settings
    self.capacity_multiplier = capacity_multiplier
    self.lj = lj or potentials.LennardJones(cutoff=propagator.cutoff)
    self.capacity = None
    self._compiled = {}

  # -- compiled chunk ----------------------------------------------------------
  def _chunk(self, capacity, num_steps):
    key = (capacity, num_steps)
    if key in self._compiled:
      return self._compiled[key]
    prop, s, lj = self.propagator, self.settings, self.lj
    dt, mass = prop.dt_fs, prop.mass

    def thermostat(p, step, half):
      seed_pair = tf.random.experimental.stateless_fold_in(
          tf.stack([s.seed % (2**31), 0x726f6c]), 2 * step + half)
      if s.thermostat == "csvr":
        return integrate.csvr_rescale(p, mass, s.temperature, 0.5 * dt, s.tau_fs, seed_pair)
      return langevin_half(p, mass, s.temperature, 0.5 * dt, s.tau_fs, seed_pair)

    def chunk(q, p, box, step0, e0, t_low, t_high):
      box32 = tf.cast(box, tf.float32)
      nl0 = partition.build(tf.cast(q, tf.float32), box32, capacity.spec)

      def body(i, q, p, nl, overflow, failed, rows):
        step = step0 + i
        if s.thermostat != "none":
          p = thermostat(p, step, 0)
        dq, dp, delta_overflow = prop.delta(tf.cast(q, tf.float32), tf.cast(p, tf.float32),
                                            box32, nl, capacity)
        q = q + tf.cast(dq, tf.float64)
        p = p + tf.cast(dp, tf.float64)
        if s.thermostat != "none":
          p = thermostat(p, step, 1)
        nl = partition.build(tf.cast(q, tf.float32), box32, capacity.spec)
        potential, _, _ = potentials.energy_and_forces(q, box, nl, lj)
        alpha = tf.ones([], tf.float64)
        infeasible = clipped = tf.constant(False)
        if s.energy_rescale:
          p, alpha, infeasible, clipped = rescale_to_energy(
              p, mass, potential, e0, s.rescale_bounds)
        kinetic = integrate.kinetic_energy(p, mass)
        temp = integrate.temperature(p, mass)
        r_min = min_pair_distance(q, box, nl, lj.cutoff)
        row = tf.stack([temp, potential, kinetic, potential + kinetic,
                        tf.norm(tf.reduce_sum(p, 0)), r_min, alpha,
                        tf.cast(infeasible, tf.float64), tf.cast(clipped, tf.float64)])
        finite = tf.logical_and(tf.reduce_all(tf.math.is_finite(row)),
                                tf.reduce_all(tf.math.is_finite(q)))
        bad = tf.logical_not(finite) | (temp < t_low) | (temp > t_high) | (
            r_min < s.min_distance)
        rows = tf.tensor_scatter_nd_update(rows, [[i]], row[None])
        return i + 1, q, p, nl, overflow | nl.overflow | delta_overflow, bad, rows

      init = (tf.constant(0), q, p, nl0, nl0.overflow, tf.constant(False),
              tf.zeros([num_steps, _NUM_RECORDED], tf.float64))
      i, q, p, nl, overflow, failed, rows = tf.while_loop(
          lambda i, q, p, nl, overflow, failed, rows: (i < num_steps) & ~failed,
          body, init)
      return i, q, p, overflow, failed, rows, nl

    fn = tf.function(chunk, jit_compile=prop.jit_compile)
    self._compiled[key] = fn
    return fn

  def _allocate(self, q, box):
    if self.capacity is None:
      spec, nl = partition.allocate(q.astype(np.float32), box.astype(np.float32),
                                    self.propagator.cutoff,
                                    capacity_multiplier=self.capacity_multiplier)
      self.capacity = Capacity.fit(spec, nl, self.capacity_multiplier)

  def _grow(self, nl):
    """Larger capacities after an overflow (never truncates)."""
    c = self.capacity
    self.capacity = Capacity(partition.grow(c.spec, nl, self.capacity_multiplier),
                             int(math.ceil(c.max_edges * self.capacity_multiplier)))

  def energy(self, q, box):
    """Exact LJ potential energy of positions q [N,3] (kcal/mol, float64)."""
    self._allocate(q, box)
    while True:
      nl = partition.build(tf.constant(q, tf.float32), tf.constant(box, tf.float32),
                           self.capacity.spec)
      if not bool(nl.overflow):
        break
      self._grow(nl)
    return float(potentials.energy_and_forces(tf.constant(q), tf.constant(box), nl,
                                              self.lj)[0])

  # -- host driver -----------------------------------------------------------
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
    step, e0, t_ref = 0, None, None
    if os.path.exists(paths["ckpt"]):
      ck = np.load(paths["ckpt"])
      if str(ck["fingerprint"]) != fingerprint:
        raise errors.InputError(
            f"{out_dir} holds a roll-out with other settings; use a new --out_dir "
            f"or the same flags to resume")
      q, p, step, e0, t_ref = ck["q"], ck["p"], int(ck["step"]), float(ck["e0"]), float(ck["t_ref"])
      for key, size in (("traj", int(ck["traj_bytes"])), ("thermo", int(ck["thermo_bytes"]))):
        with open(paths[key], "r+b") as f:
          f.truncate(size)
      self.capacity = Capacity.from_array(ck["capacity"])
    else:
      for key in ("traj", "thermo", "report"):
        if os.path.exists(paths[key]):
          os.remove(paths[key])
      e0 = self.energy(q, box) + float(integrate.kinetic_energy(tf.constant(p), prop.mass))
      t_ref = (s.temperature if s.thermostat != "none"
               else float(integrate.temperature(tf.constant(p), prop.mass)))
      extxyz.append_frame(paths["traj"], 0, q, p, box, prop.dt_fs)
      with open(paths["thermo"], "w") as f:
        f.write("# " + " ".join(THERMO_COLUMNS) + f"\n# dt_fs={prop.dt_fs:g} "
                f"propagator={prop.name} ensemble={s.ensemble} units=real\n")
      self._checkpoint(paths, q, p, 0, e0, t_ref, fingerprint)
    t_low, t_high = t_ref / s.temperature_factor, t_ref * s.temperature_factor
    failure, chunks, start = None, 0, time.time()
    bar = tqdm.tqdm(total=num_steps, initial=step, unit="step", disable=not progress,
                    desc=f"roll-out {prop.name} {s.ensemble}{'+rescale' if s.energy_rescale else ''}")
    while step < num_steps and failure is None:
      n = min(s.write_every, num_steps - step)
      while True:
        out = self._chunk(self.capacity, n)(tf.constant(q), tf.constant(p), tf.constant(box),
                                        tf.constant(step), tf.constant(e0, tf.float64),
                                        tf.constant(t_low, tf.float64),
                                        tf.constant(t_high, tf.float64))
        done, q_new, p_new, overflow, failed, rows, nl = out
        if not bool(overflow):
          break
        self._grow(nl)
      done = int(done)
      rows = rows.numpy()[:done]
      with open(paths["thermo"], "a") as f:
        for k, row in enumerate(rows):
          t = step + k + 1
          f.write(f"{t} {t * prop.dt_fs:g} " + " ".join(f"{v:.10g}" for v in row) + "\n")
        f.flush()
        os.fsync(f.fileno())
      if bool(failed):
        failure = self._diagnose(step + done, rows[-1], t_low, t_high)
        step += done
        break
      q, p = q_new.numpy(), p_new.numpy()
      step += n
      extxyz.append_frame(paths["traj"], step, q, p, box, prop.dt_fs)
      self._checkpoint(paths, q, p, step, e0, t_ref, fingerprint)
      bar.update(n)
      chunks += 1
      if stop_after_chunks is not None and chunks >= stop_after_chunks:
        break
      if max_seconds is not None and time.time() - start > max_seconds:
        break
    bar.close()
    seconds = time.time() - start
    thermo = read_thermo(paths["thermo"])
    report = {"propagator": prop.name, "dt_fs": prop.dt_fs, "num_atoms": len(q),
              "settings": dataclasses.asdict(s), "steps_requested": num_steps,
              "steps_done": step, "simulated_fs": step * prop.dt_fs,
              "initial_total_energy_kcal_mol": e0, "reference_temperature_K": t_ref,
              "failure": failure._asdict() if failure else None,
              "infeasible_rescales": int(thermo[:, -2].sum()) if len(thermo) else 0,
              "clipped_rescales": int(thermo[:, -1].sum()) if len(thermo) else 0,
              "wall_seconds_this_call": seconds}
    io_utils.write_json(paths["report"], report)
    return Result(step, failure, thermo, seconds, out_dir)

  def _diagnose(self, step, row, t_low, t_high):
    s = self.settings
    temp, r_min = row[0], row[5]
    if not np.all(np.isfinite(row)):
      reason = "non-finite positions, momenta or energies"
    elif temp > t_high or temp < t_low:
      reason = (f"temperature {temp:.4g} K outside [{t_low:.4g}, {t_high:.4g}] K "
                f"(factor {s.temperature_factor} around the reference)")
    elif r_min < s.min_distance:
      reason = f"atoms {r_min:.3g} Å apart (< min_distance {s.min_distance} Å)"
    else:
      reason = "non-finite positions"
    return Failure(step, step * self.propagator.dt_fs, reason)

  def _checkpoint(self, paths, q, p, step, e0, t_ref, fingerprint):
    with io_utils.atomic_path(paths["ckpt"]) as tmp:
      with open(tmp, "wb") as f:
        np.savez(f, q=q, p=p, step=step, e0=e0, t_ref=t_ref, fingerprint=fingerprint,
                 capacity=self.capacity.to_array(),
                 traj_bytes=os.path.getsize(paths["traj"]),
                 thermo_bytes=os.path.getsize(paths["thermo"]))


def read_thermo(path):
  """The thermo log as [S, len(THERMO_COLUMNS)] float64 (no rows: shape [0, C])."""
  rows = [l.split() for l in open(path) if l.strip() and not l.startswith("#")]
  return np.array(rows, np.float64).reshape(-1, len(THERMO_COLUMNS))


def write_lammps_dump(out_dir, dt_fs, name="trajectory.dump"):
  """Converts out_dir's extended XYZ to a LAMMPS text dump (`xu yu zu vx vy vz`)."""
  from mdnet_tf.data import dump  # pylint: disable=import-outside-toplevel
  steps, q, p, box = extxyz.read_frames(os.path.join(out_dir, TRAJECTORY))
  mass = units.ARGON_MASS
  dump.write_dump(os.path.join(out_dir, name), [
      {"timestep": int(round(s * dt_fs)), "box": box, "positions": qi, "velocities": pi / mass}
      for s, qi, pi in zip(steps, q, p)])


def describe(result, dt_fs, num_atoms):
  """A few lines summarizing a roll-out for the terminal."""
  th = result.thermo
  lines = [f"roll-out: {result.steps_done} steps of {dt_fs:g} fs = "
           f"{result.steps_done * dt_fs / 1000:g} ps, {num_atoms} atoms → {result.out_dir}"]
  if len(th):
    drift = (th[-1, 5] - th[0, 5]) / num_atoms
    lines.append(f"  T mean {th[:, 2].mean():.2f} K (std {th[:, 2].std():.2f}); "
                 f"E_total per atom {th[0, 5] / num_atoms:.5f} → {th[-1, 5] / num_atoms:.5f} "
                 f"kcal/mol (Δ {drift:+.2e}); max |P| {th[:, 6].max():.2e} g/mol·Å/fs; "
                 f"closest pair {th[:, 7].min():.3f} Å")
    lines.append(f"  rescaling: {int(th[:, 9].sum())} infeasible, {int(th[:, 10].sum())} "
                 f"clipped steps")
  lines.append(f"  wall {result.seconds:.1f} s this call")
  if result.failure is not None:
    f = result.failure
    lines.append(f"  FAILED at step {f.step} (t = {f.time_fs:g} fs): {f.reason}. "
                 f"Frames up to the last good chunk are in the trajectory; see report.json.")
  return "\n".join(lines)
