"""Reader and writer for LAMMPS text dumps (`dump custom`, orthorhombic boxes).

The reader accepts any dump of the usual kind, so users can bring their own
LAMMPS runs:
  * unwrapped positions `xu yu zu`, or
  * wrapped `x y z` with image flags `ix iy iz` (unwrapped here), or
  * wrapped `x y z` alone (kept as they are), or scaled `xs ys zs` (+ images);
  * velocities `vx vy vz` are optional (Å/fs in `units real`).
Atoms are returned sorted by `id`. Any malformed content raises
`errors.DumpFormatError` naming the file and line.

Frame arrays: positions [N, 3] float64 Å (unwrapped where the dump allows),
velocities [N, 3] float64 Å/fs or None, box [3] Å (hi − lo), box_lo [3] Å.
"""

from typing import NamedTuple, Optional

import numpy as np

from mdnet_tf import errors
from mdnet_tf import io_utils


class Frame(NamedTuple):
  timestep: int
  box: np.ndarray            # [3] Å
  box_lo: np.ndarray         # [3] Å
  ids: np.ndarray            # [N] int
  types: np.ndarray          # [N] int
  positions: np.ndarray      # [N, 3] Å
  velocities: Optional[np.ndarray]  # [N, 3] Å/fs
  unwrapped: bool            # positions are continuous in time
  line: int = 0              # 1-based line of the frame's first header line
  atom_lines: Optional[np.ndarray] = None  # [N] 1-based line of each atom (id order)


def _fail(path, line_no, message):
  raise errors.DumpFormatError(f"{path}:{line_no}: {message}")


class _Lines:
  """Line cursor with 1-based line numbers for error messages."""

  def __init__(self, path, lines):
    self.path, self.lines, self.i = path, lines, 0

  def done(self):
    return self.i >= len(self.lines)

  def next(self, expect=None):
    if self.done():
      _fail(self.path, self.i + 1, f"file ends early (truncated?); expected "
            f"{expect or 'more data'}")
    line = self.lines[self.i]
    self.i += 1
    if expect is not None and not line.startswith(expect):
      _fail(self.path, self.i, f"expected '{expect}', found {line[:60]!r}")
    return line

  def number(self, kind, what):
    line = self.next()
    try:
      return kind(line.split()[0])
    except (ValueError, IndexError):
      _fail(self.path, self.i, f"expected {what}, found {line[:60]!r}")


def _parse_atoms(cur, num_atoms, columns):
  first = cur.i + 1
  block = cur.lines[cur.i:cur.i + num_atoms]
  if len(block) < num_atoms:
    _fail(cur.path, cur.i + len(block) + 1,
          f"file ends early (truncated?): {len(block)} of {num_atoms} atom lines "
          f"after the ATOMS header at line {first - 1}")
  cur.i += num_atoms
  try:
    values = np.array(" ".join(block).split(), dtype=np.float64)
  except ValueError:
    values = None
  if values is None or values.size != num_atoms * len(columns):
    for k, line in enumerate(block):
      tokens = line.split()
      if len(tokens) != len(columns):
        _fail(cur.path, first + k, f"expected {len(columns)} columns "
              f"({' '.join(columns)}), found {len(tokens)}: {line[:80]!r}")
      try:
        [float(t) for t in tokens]
      except ValueError:
        _fail(cur.path, first + k, f"non-numeric value in {line[:80]!r}")
  values = values.reshape(num_atoms, len(columns))
  if not np.all(np.isfinite(values)):
    k = int(np.argmax(~np.isfinite(values).all(axis=1)))
    _fail(cur.path, first + k, f"non-finite value in {block[k][:80]!r}")
  return values


def _columns(values, columns, names):
  return np.stack([values[:, columns.index(n)] for n in names], axis=1)


def _frame(cur):
  cur.next("ITEM: TIMESTEP")
  first_line = cur.i
  timestep = cur.number(int, "a timestep")
  cur.next("ITEM: NUMBER OF ATOMS")
  num_atoms = cur.number(int, "a number of atoms")
  header = cur.next("ITEM: BOX BOUNDS")
  if "xy" in header:
    _fail(cur.path, cur.i, "triclinic boxes are not supported (orthorhombic only)")
  bounds = []
  for _ in range(3):
    line = cur.next()
    try:
      lo, hi = (float(t) for t in line.split()[:2])
    except ValueError:
      _fail(cur.path, cur.i, f"expected 'lo hi' box bounds, found {line[:60]!r}")
    bounds.append((lo, hi))
  bounds = np.array(bounds)
  header = cur.next("ITEM: ATOMS")
  columns = header.split()[2:]
  header_line = cur.i
  values = _parse_atoms(cur, num_atoms, columns)
  if num_atoms == 0:
    _fail(cur.path, header_line, "the frame has no atoms")
  if "id" not in columns:
    _fail(cur.path, header_line, "the ATOMS section has no 'id' column")
  order = np.argsort(values[:, columns.index("id")], kind="stable")
  values = values[order]
  box = bounds[:, 1] - bounds[:, 0]
  has = lambda names: all(n in columns for n in names)
  images = ("ix", "iy", "iz")
  if has(("xu", "yu", "zu")):
    positions, unwrapped = _columns(values, columns, ("xu", "yu", "zu")), True
  elif has(("x", "y", "z")):
    positions, unwrapped = _columns(values, columns, ("x", "y", "z")), has(images)
  elif has(("xs", "ys", "zs")):
    scaled = _columns(values, columns, ("xs", "ys", "zs"))
    positions, unwrapped = bounds[:, 0] + scaled * box, has(images)
  else:
    _fail(cur.path, header_line, "no position columns (xu yu zu, x y z or xs ys zs)")
  if unwrapped and not has(("xu", "yu", "zu")):
    positions = positions + _columns(values, columns, images) * box
  velocities = (_columns(values, columns, ("vx", "vy", "vz"))
                if has(("vx", "vy", "vz")) else None)
  types = (values[:, columns.index("type")].astype(np.int64) if "type" in columns
           else np.ones(num_atoms, np.int64))
  return Frame(timestep, box, bounds[:, 0], values[:, columns.index("id")].astype(
      np.int64), types, positions, velocities, unwrapped, first_line,
                header_line + 1 + order.astype(np.int64))


def read_dump(path):
  """All frames of a LAMMPS text dump, as a list of Frame (see module doc).

  Raises:
    errors.DumpFormatError: malformed or truncated content (names file and line).
    FileNotFoundError: no such file.
  """
  path = str(path)
  with open(path) as f:
    lines = f.read().splitlines()
  cur = _Lines(path, lines)
  frames = []
  while not cur.done():
    if not cur.lines[cur.i].strip():
      cur.i += 1
      continue
    frames.append(_frame(cur))
  if not frames:
    _fail(path, 1, "no frames (empty file)")
  n = len(frames[0].ids)
  for frame in frames[1:]:
    if len(frame.ids) != n:
      _fail(path, frame.line, f"frame at timestep {frame.timestep} has {len(frame.ids)} "
            f"atoms, the first frame has {n}")
  return frames


def write_dump(path, frames, exact=False):
  """Atomically writes frames (Frame or dict-like) as `id type xu yu zu vx vy vz`.

  Values are written with 12 significant digits (LAMMPS `%.12g`), or with 17
  (float64 round trip: reading the file gives back the same numbers) if `exact`.

  Each frame needs timestep, box, box_lo, positions [N, 3] Å (unwrapped) and
  velocities [N, 3] Å/fs; ids default to 1..N and types to 1.
  """
  with io_utils.atomic_path(path) as tmp, open(tmp, "w") as f:
    for fr in frames:
      fr = fr._asdict() if hasattr(fr, "_asdict") else dict(fr)
      digits = 17 if exact else 12
      positions = np.asarray(fr["positions"], np.float64)
      n = len(positions)
      ids = np.asarray(fr.get("ids", np.arange(1, n + 1)))
      types = np.asarray(fr.get("types", np.ones(n, np.int64)))
      lo = np.asarray(fr.get("box_lo", np.zeros(3)), np.float64)
      hi = lo + np.asarray(fr["box"], np.float64)
      velocities = np.asarray(fr["velocities"], np.float64)
      f.write(f"ITEM: TIMESTEP\n{int(fr['timestep'])}\nITEM: NUMBER OF ATOMS\n{n}\n"
              "ITEM: BOX BOUNDS pp pp pp\n")
      for a, b in zip(lo.tolist(), hi.tolist()):
        f.write(f"{a!r} {b!r}\n")
      f.write("ITEM: ATOMS id type xu yu zu vx vy vz\n")
      table = np.column_stack([positions, velocities])
      for i, t, row in zip(ids, types, table):
        f.write(f"{int(i)} {int(t)} " + " ".join(f"{v:.{digits}g}" for v in row) + "\n")
