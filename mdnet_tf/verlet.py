"""The TF velocity-Verlet baseline: LJ forces + cell-list neighbors, many steps
inside one compiled `tf.while_loop`, with an optional CSVR thermostat.

This is the "Verlet" of the paper's Table 1 (one step of the large Δt) and
Table 2 (timing). `VerletSimulator.run` is the host driver: it allocates the
neighbor list from the data, runs compiled chunks of `record_every` steps,
records thermodynamics between chunks, reallocates and re-runs a chunk if the
neighbor list overflowed (never truncates), and stops with an error on
non-finite values.

Shapes and units: positions [N, 3] Å (unwrapped), momenta [N, 3] g/mol·Å/fs,
box [3] Å, dt in fs, energies in kcal/mol, temperature in K.
"""

from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf

from mdnet_tf import capacity
from mdnet_tf import errors
from mdnet_tf import integrate
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import space


class CSVR(NamedTuple):
  """CSVR thermostat settings: target temperature [K], coupling time [fs]."""
  temperature: float
  tau_fs: float = 100.0


class Trajectory(NamedTuple):
  """Result of `VerletSimulator.run` (NumPy arrays).

  positions, momenta: [F, N, 3] frames every `record_every` steps, including
    the start (F = num_steps // record_every + 1); Å and g/mol·Å/fs.
  time_fs: [F].  potential, kinetic, total: [F] kcal/mol.  temperature: [F] K.
  """
  positions: np.ndarray
  momenta: np.ndarray
  time_fs: np.ndarray
  potential: np.ndarray
  kinetic: np.ndarray
  total: np.ndarray
  temperature: np.ndarray


class VerletSimulator:
  """Velocity Verlet for a single-species LJ system (NVE, or NVT with CSVR)."""

  def __init__(self, dt_fs, *, mass, lj, skin=1.0,
               thermostat: Optional[CSVR] = None, jit_compile=True,
               dtype=tf.float32, capacity_multiplier=capacity.HEADROOM,
               max_temperature=1.0e4):
    if dt_fs <= 0:
      raise errors.InputError(f"dt_fs must be positive, got {dt_fs}")
    self.dt_fs = float(dt_fs)
    self.mass = float(mass)
    self.lj = lj
    self.skin = float(skin)
    self.thermostat = thermostat
    self.jit_compile = jit_compile
    self.dtype = dtype
    self.capacity_multiplier = capacity_multiplier
    self.max_temperature = max_temperature  # K; hotter means the run blew up
    self.spec = None
    self._compiled = {}

  # -- compiled pieces ------------------------------------------------------
  def _forces(self, positions, box, neighbors, spec):
    neighbors = partition.update(positions, box, neighbors, spec)
    energy, _, forces = potentials.energy_and_forces(positions, box, neighbors,
                                                     self.lj)
    return forces, energy, neighbors

  def _chunk_fn(self, spec):
    """tf.function running `num_steps` Verlet steps (compiled once per spec)."""
    if spec in self._compiled:
      return self._compiled[spec]
    dt, mass, thermostat = self.dt_fs, self.mass, self.thermostat

    def chunk(positions, momenta, forces, neighbors, box, num_steps, step0, seed):
      def body(i, q, p, f, nl, overflow, _):
        def forces(q1):
          f1, energy, nl1 = self._forces(q1, box, nl, spec)
          return f1, (energy, nl1)

        q, p, f, (energy, nl) = integrate.verlet_step(q, p, f, dt, mass, forces)
        if thermostat is not None:
          step_seed = tf.random.experimental.stateless_fold_in(seed, step0 + i)
          p = integrate.csvr_rescale(p, mass, thermostat.temperature, dt,
                                     thermostat.tau_fs, step_seed)
        return i + 1, q, p, f, nl, overflow | nl.overflow, energy

      init = (tf.constant(0), positions, momenta, forces, neighbors,
              neighbors.overflow, tf.zeros([], positions.dtype))
      _, q, p, f, nl, overflow, energy = tf.while_loop(
          lambda i, *_: i < num_steps, body, init)
      return q, p, f, nl, overflow, energy

    fn = tf.function(chunk, jit_compile=self.jit_compile)
    self._compiled[spec] = fn
    return fn

  def _initial(self, positions, box):
    """Builds (allocating if needed) the neighbor list and the forces at t."""
    if self.spec is None:
      self.spec, _ = partition.allocate(positions, box, self.lj.cutoff, self.skin,
                                        self.capacity_multiplier)
    while True:
      nl = partition.build(positions, box, self.spec)
      if not bool(nl.overflow):
        break
      self.spec = partition.grow(self.spec, nl, self.capacity_multiplier)
    energy, _, forces = potentials.energy_and_forces(positions, box, nl, self.lj)
    return nl, forces, energy

  # -- host driver ----------------------------------------------------------
  def run(self, positions, momenta, box, num_steps, record_every=None, seed=0,
          progress=None):
    """Runs `num_steps` steps; returns a Trajectory recorded every `record_every`.

    Args:
      positions: [N, 3] Å.  momenta: [N, 3] g/mol·Å/fs.  box: [3] Å.
      num_steps: number of steps of dt_fs.
      record_every: steps between recorded frames (default: num_steps).
      seed: integer seed of the thermostat noise.
      progress: optional callable(steps_done) called after each chunk.
    Raises:
      errors.InputError: bad shapes, non-finite input, box < 2 × (cutoff + skin).
      errors.MDNetError: the run blew up (non-finite values or a temperature
        above max_temperature).
    """
    space.check_state(positions, momenta, box, self.lj.cutoff + self.skin)
    record_every = int(record_every or num_steps)
    if num_steps < 0 or record_every <= 0:
      raise errors.InputError(f"need num_steps ≥ 0 and record_every > 0, got "
                              f"{num_steps}, {record_every}")
    dt = self.dtype
    q = tf.constant(np.asarray(positions), dt)
    p = tf.constant(np.asarray(momenta), dt)
    box = tf.constant(np.asarray(box), dt)
    seed = tf.constant([int(seed) % (2**31), 0x6d646e], tf.int32)
    nl, f, energy = self._initial(q, box)
    frames = [self._record(q, p, energy, 0)]
    done = 0
    while done < num_steps:
      n = min(record_every, num_steps - done)
      while True:
        out = self._chunk_fn(self.spec)(q, p, f, nl, box, tf.constant(n),
                                        tf.constant(done), seed)
        if not bool(out[4]):
          break
        # Overflow somewhere in the chunk: grow, rebuild at the chunk start, redo.
        self.spec = partition.grow(self.spec, out[3], self.capacity_multiplier)
        nl, f, energy = self._initial(q, box)
      q, p, f, nl, _, energy = out
      done += n
      frames.append(self._record(q, p, energy, done))
      temperature = frames[-1][-1]
      if not (np.isfinite(frames[-1][0]).all() and np.isfinite(frames[-1][1]).all()
              and temperature < self.max_temperature):
        raise errors.MDNetError(
            f"Verlet integration blew up within steps {done - n}..{done} at "
            f"dt = {self.dt_fs} fs (temperature {temperature:.3g} K, limit "
            f"{self.max_temperature:.3g} K, or non-finite values); use a smaller dt_fs")
      if progress is not None:
        progress(done)
    return Trajectory(*[np.stack(x) for x in zip(*frames)])

  def _record(self, q, p, energy, step):
    kinetic = float(integrate.kinetic_energy(p, self.mass))
    potential = float(energy)
    return (q.numpy(), p.numpy(), step * self.dt_fs, potential, kinetic,
            potential + kinetic, float(integrate.temperature(p, self.mass)))
