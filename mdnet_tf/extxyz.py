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


def _property_columns(path, line_no, comment):
  """{name: (first column, width)} of an extended XYZ Properties= entry."""
  found = re.search(r"Properties=(\S+)", comment)
  if not found:
    raise errors.DumpFormatError(f"{path}:{line_no}: no Properties= in the comment line")
  parts = found.group(1).split(":")
  if len(parts) % 3:
    raise errors.DumpFormatError(f"{path}:{line_no}: malformed Properties={found.group(1)}")
  columns, start = {}, 0
  for name, _, width in zip(parts[0::3], parts[1::3], parts[2::3]):
    columns[name] = (start, int(width))
    start += int(width)
  return columns, start


def read_as_frames(path, mass=None, timestep_fs=1.0):
  """Any extended XYZ trajectory as a list of `data.dump.Frame` (for datasets).

  Needs, per frame, an orthorhombic `Lattice="Lx 0 0 0 Ly 0 0 0 Lz"`, a `pos`
  column (Å, taken as unwrapped), velocities as `vel`/`velo`/`velocities`
  (Å/fs) or `momenta` (g/mol·Å/fs, divided by `mass`), and the time as
  `step=` (in units of timestep_fs) or `time_fs=`. A species column becomes
  the atom type (1, 2, ... by first appearance); ids are 1..N in file order.

  Raises:
    errors.DumpFormatError naming the file and line.
  """
  from mdnet_tf.data import dump  # pylint: disable=import-outside-toplevel
  with open(path) as f:
    lines = f.read().splitlines()
  frames, i, species = [], 0, {}
  while i < len(lines):
    if not lines[i].strip():
      i += 1
      continue
    try:
      n = int(lines[i].split()[0])
    except (ValueError, IndexError):
      raise errors.DumpFormatError(f"{path}:{i + 1}: expected a number of atoms, found "
                                   f"{lines[i][:60]!r}") from None
    if i + 2 + n > len(lines):
      raise errors.DumpFormatError(f"{path}:{i + 1}: frame of {n} atoms ends early "
                                   f"(truncated?)")
    comment = lines[i + 1]
    columns, width = _property_columns(path, i + 2, comment)
    lattice = re.search(r'Lattice="([^"]+)"', comment)
    if not lattice:
      raise errors.DumpFormatError(f"{path}:{i + 2}: no Lattice= (a periodic box is needed)")
    cell = np.array(lattice.group(1).split(), np.float64).reshape(3, 3)
    if np.any(cell[~np.eye(3, dtype=bool)] != 0):
      raise errors.DumpFormatError(f"{path}:{i + 2}: triclinic Lattice is not supported "
                                   f"(orthorhombic only)")
    step = re.search(r"\bstep=(-?\d+)", comment)
    time_fs = re.search(r"\btime_fs=(\S+)", comment)
    if step:
      timestep = int(step.group(1))
    elif time_fs:
      timestep = int(round(float(time_fs.group(1)) / timestep_fs))
    else:
      raise errors.DumpFormatError(f"{path}:{i + 2}: no step= or time_fs= in the comment "
                                   f"line (the frame's time is needed)")
    rows = [line.split() for line in lines[i + 2:i + 2 + n]]
    for k, row in enumerate(rows):
      if len(row) != width:
        raise errors.DumpFormatError(f"{path}:{i + 3 + k}: expected {width} columns, "
                                     f"found {len(row)}")
    table = np.array(rows, dtype=object)
    if "pos" not in columns:
      raise errors.DumpFormatError(f"{path}:{i + 2}: no pos column in Properties")

    def block(name):
      start, size = columns[name]
      try:
        return table[:, start:start + size].astype(np.float64)
      except ValueError:
        raise errors.DumpFormatError(f"{path}:{i + 3}: non-numeric {name} values") from None

    velocities = None
    for name in ("vel", "velo", "velocities"):
      if name in columns:
        velocities = block(name)
    if velocities is None and "momenta" in columns:
      if mass is None:
        raise errors.DumpFormatError(f"{path}:{i + 2}: momenta need the atom mass")
      velocities = block("momenta") / mass
    types = np.ones(n, np.int64)
    if "species" in columns:
      names = table[:, columns["species"][0]]
      types = np.array([species.setdefault(s, len(species) + 1) for s in names], np.int64)
    positions = block("pos")
    if not (np.all(np.isfinite(positions)) and
            (velocities is None or np.all(np.isfinite(velocities)))):
      raise errors.DumpFormatError(f"{path}:{i + 3}: non-finite values in the frame")
    frames.append(dump.Frame(timestep, np.diag(cell).copy(), np.zeros(3),
                             np.arange(1, n + 1), types, positions, velocities, True,
                             i + 1, np.arange(i + 3, i + 3 + n)))
    i += 2 + n
  if not frames:
    raise errors.DumpFormatError(f"{path}:1: no frames (empty file)")
  return frames
