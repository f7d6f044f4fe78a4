"""Extended XYZ trajectory writing (append, fsync) and resuming (ASE/OVITO readable).

Frame layout:
  N
  Lattice="Lx 0 0 0 Ly 0 0 0 Lz" Properties=species:S:1:pos:R:3:momenta:R:3 step=K time_fs=T pbc="T T T"
  Ar x y z px py pz            (positions Å unwrapped, momenta g/mol·Å/fs)
"""

import os
import re

import numpy as np

from mdnet_tf import errors


def append_frame(path, step, positions, momenta, box, dt_fs=None):
  """Appends one frame and flushes it to disk before returning."""
  time_fs = "" if dt_fs is None else f" time_fs={step * dt_fs:g}"
  lx, ly, lz = (float(b) for b in box)
  lines = [f"{len(positions)}",
           f'Lattice="{lx!r} 0 0 0 {ly!r} 0 0 0 {lz!r}" '
           f"Properties=species:S:1:pos:R:3:momenta:R:3 step={step}{time_fs} "
           f'pbc="T T T"']
  table = np.column_stack([positions, momenta]).astype(np.float64)
  lines += ["Ar " + " ".join(f"{v:.9g}" for v in row) for row in table]
  with open(path, "a") as f:
    f.write("\n".join(lines) + "\n")
    f.flush()
    os.fsync(f.fileno())


def last_frame(path):
  """(step, positions, momenta, box) of the last complete frame, float32.

  A partially written last frame (the writer was killed) is cut off the file,
  so appending continues cleanly. Returns None for an empty file.
  """
  with open(path) as f:
    lines = f.read().splitlines()
  i, good_end, last = 0, 0, None
  while i < len(lines):
    try:
      n = int(lines[i])
    except ValueError:
      break
    if i + 2 + n > len(lines):
      break
    rows = [l.split() for l in lines[i + 2:i + 2 + n]]
    if any(len(r) != 7 for r in rows):
      break
    values = np.array([r[1:] for r in rows], np.float64)
    comment = lines[i + 1]
    step = int(re.search(r"step=(\d+)", comment).group(1))
    lattice = [float(x) for x in re.search(r'Lattice="([^"]+)"', comment).group(1).split()]
    last = (step, values[:, :3].astype(np.float32), values[:, 3:].astype(np.float32),
            np.float32([lattice[0], lattice[4], lattice[8]]))
    i += 2 + n
    good_end = i
  if good_end < len(lines):
    with open(path, "w") as f:
      f.write("\n".join(lines[:good_end]) + ("\n" if good_end else ""))
  return last


def read_frames(path, every=1):
  """All complete frames: (steps [F] int, positions [F,N,3], momenta [F,N,3],
  box [3]) as float64; `every` keeps every k-th frame (from the first).

  Raises errors.InputError if the file holds no complete frame.
  """
  with open(path) as f:
    lines = f.read().splitlines()
  if not lines:
    raise errors.InputError(f"{path} is empty")
  n = int(lines[0])
  stride = n + 2
  count = len(lines) // stride
  steps, tables, box = [], [], None
  for k in range(0, count, every):
    block = lines[k * stride:(k + 1) * stride]
    if int(block[0]) != n or len(block) != stride:
      break
    steps.append(int(re.search(r"step=(\d+)", block[1]).group(1)))
    if box is None:
      lattice = [float(x) for x in re.search(r'Lattice="([^"]+)"', block[1]).group(1).split()]
      box = np.array([lattice[0], lattice[4], lattice[8]])
    values = np.array(" ".join(block[2:]).split(), dtype=object).reshape(n, 7)[:, 1:]
    tables.append(values.astype(np.float64))
  if not tables:
    raise errors.InputError(f"{path} holds no complete frame")
  tables = np.stack(tables)
  return np.array(steps), tables[..., :3], tables[..., 3:], box
