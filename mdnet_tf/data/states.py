"""Start states and reference trajectories, read from files (NumPy only).

A start state is (positions [N, 3] Å unwrapped, momenta [N, 3] g/mol·Å/fs,
box [3] Å), float64. It comes from
  - a dataset directory: the first frame of its long LAMMPS NVT trajectory
    (an equilibrated liquid), momenta with the manifest's mass;
  - a LAMMPS text dump (any layout `dump.read_dump` accepts; frame index
    `frame`, negative counts from the end), momenta = mass × velocities;
  - an extended XYZ file written by a roll-out or the client (its last
    complete frame; momenta are stored).
A Traj is a whole trajectory: the dataset's LAMMPS reference or the frames a
roll-out wrote. This module imports no TensorFlow, so light clients can use it.
"""

import os
from typing import NamedTuple

import numpy as np

from mdnet_tf import errors
from mdnet_tf import extxyz
from mdnet_tf.data import dataset
from mdnet_tf.data import dump


class Traj(NamedTuple):
  """Frames of a trajectory: time_fs [F], positions [F, N, 3] Å (unwrapped),
  momenta [F, N, 3] g/mol·Å/fs, box [3] Å."""
  time_fs: np.ndarray
  positions: np.ndarray
  momenta: np.ndarray
  box: np.ndarray

  @property
  def start(self):
    """(q, p, box) of the first frame."""
    return self.positions[0], self.momenta[0], self.box


def _rollout_record(data_dir):
  manifest = dataset.load_manifest(data_dir)
  record = next((t for t in manifest["trajectories"] if t["kind"] == "rollout"), None)
  if record is None:
    raise errors.DatasetError(f"{data_dir} has no long NVT roll-out trajectory")
  return manifest, os.path.join(data_dir, record["dump"])


def reference(data_dir):
  """A dataset's LAMMPS NVT roll-out reference as a Traj (momenta with the
  manifest's mass)."""
  manifest, path = _rollout_record(data_dir)
  frames = dump.read_dump(path)
  t0 = frames[0].timestep
  step_fs = manifest["preset"]["timestep_fs"]
  mass = manifest["mass_amu"]
  return Traj(np.array([(f.timestep - t0) * step_fs for f in frames], np.float64),
              np.stack([f.positions for f in frames]),
              np.stack([f.velocities for f in frames]) * mass,
              frames[0].box.astype(np.float64))


def load_start(path, frame=0, mass=None):
  """(positions, momenta, box) float64 from a dataset dir, LAMMPS dump or extended XYZ.

  mass: g/mol, needed for a LAMMPS dump (it stores velocities); a dataset
  uses its manifest's mass, an extended XYZ file stores momenta.
  """
  path = str(path)
  if os.path.isdir(path):
    manifest, dump_path = _rollout_record(path)
    mass = manifest["mass_amu"]
    path = dump_path
  elif path.endswith((".xyz", ".extxyz")):
    last = extxyz.last_frame(path)
    if last is None:
      raise errors.InputError(f"{path} holds no complete frame")
    return tuple(np.asarray(x, np.float64) for x in last[1:])
  if mass is None:
    raise errors.InputError(f"{path} is a LAMMPS dump (velocities): the atom mass is "
                            f"needed to make momenta; pass the model's mass")
  frames = dump.read_dump(path)
  try:
    fr = frames[frame]
  except IndexError:
    raise errors.InputError(f"{path} has {len(frames)} frames; frame {frame} does not "
                            f"exist") from None
  if fr.velocities is None:
    raise errors.InputError(f"{path} has no velocities (vx vy vz): cannot start a roll-out")
  return fr.positions.astype(np.float64), fr.velocities * mass, fr.box.astype(np.float64)


def load_frames(path, dt_fs):
  """The frames of an extended XYZ trajectory as a Traj (time = step × dt_fs)."""
  steps, q, p, box = extxyz.read_frames(path)
  return Traj(steps * float(dt_fs), q, p, box)
