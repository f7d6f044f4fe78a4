"""Datasets from users' own trajectories: LAMMPS text dumps or extended XYZ.

`make_dataset` turns trajectories of one species at fixed volume (NVE, or
NVT with a gentle thermostat) into the layout `generate.py` writes, so that
training, evaluation, roll-outs and export work on them unchanged:

  trajectories/traj_NNN/nve.dump   the source frames, `id type xu yu zu vx vy vz`,
                                   written with 17 digits (float64 round trip)
  trajectories/rollout/nvt.dump    optional long reference trajectory (RDF, MSD,
                                   roll-out starts)
  pairs/{train,test,validation}.npz  frame pairs per Δt (dataset.py)
  manifest.json                    mass, potential, units, split, frame times and
                                   provenance (source files and their SHA-256);
                                   written last: it marks the dataset complete

Every source file is one trajectory; the split is by file (frames of one
trajectory are correlated, so splitting inside one would leak). Pairs start at
the sampled frames t with t + max(Δt) inside the trajectory (the same starts
for every Δt, as in the paper); the training split also gets the time-reversed
pairs. Wrapped positions without image flags are unwrapped by the minimum
image between consecutive frames (valid while atoms move less than half a box
between frames). Units: LAMMPS `real` (Å, fs, g/mol, kcal/mol).
"""

import os

import numpy as np

from mdnet_tf import errors
from mdnet_tf import extxyz
from mdnet_tf import io_utils
from mdnet_tf import units
from mdnet_tf.data import dataset
from mdnet_tf.data import dump

XYZ_SUFFIXES = (".xyz", ".extxyz")


def read_trajectory(path, mass, timestep_fs=1.0):
  """Frames (dump.Frame) of a LAMMPS text dump or an extended XYZ file."""
  if str(path).endswith(XYZ_SUFFIXES):
    return extxyz.read_as_frames(path, mass, timestep_fs)
  return dump.read_dump(path)


def _fail(path, line, message):
  raise errors.DumpFormatError(f"{path}:{line}: {message}")


def check_trajectory(path, frames, dts_fs, timestep_fs, cutoff):
  """Checks that a trajectory can give frame pairs; returns its frame spacing (fs).

  Raises errors.DumpFormatError naming the file and line for: missing
  velocities, atom ids or types that differ between frames, more than one atom
  type, a box smaller than 2 × cutoff or changing between frames, unevenly
  spaced frames, a spacing that does not divide every Δt, a trajectory shorter
  than the longest Δt.
  """
  first = frames[0]
  for fr in frames:
    if fr.velocities is None:
      _fail(path, fr.line, f"frame at timestep {fr.timestep} has no velocities (vx vy vz "
            f"in a dump, vel or momenta in extended XYZ): pairs need momenta")
    if not np.array_equal(fr.ids, first.ids):
      k = int(np.argmax(fr.ids != first.ids))
      _fail(path, fr.atom_lines[k], f"frame at timestep {fr.timestep} has other atom ids "
            f"than the first frame (id {fr.ids[k]} where the first frame has "
            f"{first.ids[k]}); frames must hold the same atoms")
    mixed = np.flatnonzero(fr.types != first.types[0])
    if len(mixed):
      k = int(mixed[0])
      _fail(path, fr.atom_lines[k], f"atom id {fr.ids[k]} has type {fr.types[k]}, atom id "
            f"{first.ids[0]} has type {first.types[0]}: make_dataset takes one species")
    if np.any(fr.box < 2.0 * cutoff):
      _fail(path, fr.line, f"box {np.round(fr.box, 4).tolist()} Å is smaller than 2 × the "
            f"cutoff {cutoff:g} Å (the minimum image would miss neighbors)")
    if np.any(np.abs(fr.box - first.box) > 1e-6 * first.box):
      _fail(path, fr.line, f"the box changes from {first.box.tolist()} to "
            f"{fr.box.tolist()} Å (NPT?): pairs need a fixed volume")
  times = np.array([f.timestep * timestep_fs for f in frames], np.float64)
  if len(frames) < 2:
    _fail(path, first.line, "one frame only: pairs need a trajectory")
  steps = np.diff(times)
  if np.any(steps <= 0):
    k = int(np.argmax(steps <= 0)) + 1
    _fail(path, frames[k].line, f"frame at timestep {frames[k].timestep} does not come "
          f"after the previous one (timestep {frames[k - 1].timestep})")
  spacing = float(steps[0])
  uneven = np.flatnonzero(np.abs(steps - spacing) > 1e-6 * spacing)
  if len(uneven):
    k = int(uneven[0]) + 1
    _fail(path, frames[k].line, f"uneven time spacing: frame at timestep "
          f"{frames[k].timestep} is {steps[k - 1]:g} fs after the previous one, the first "
          f"frames are {spacing:g} fs apart (timestep {timestep_fs:g} fs)")
  for dt in dts_fs:
    ratio = dt / spacing
    if abs(ratio - round(ratio)) > 1e-6 or round(ratio) < 1:
      _fail(path, frames[1].line, f"Δt = {dt:g} fs is not a multiple of the frame spacing "
            f"{spacing:g} fs (timestep {timestep_fs:g} fs × {spacing / timestep_fs:g}); "
            f"dump more often or choose other --dts")
  if dts_fs and times[-1] - times[0] < max(dts_fs) - 1e-9:
    _fail(path, frames[-1].line, f"the trajectory spans {times[-1] - times[0]:g} fs, "
          f"shorter than Δt = {max(dts_fs):g} fs")
  return spacing


def unwrap(frames):
  """Frames with continuous positions: as they are if unwrapped, else unwrapped
  by the minimum image between consecutive frames."""
  if all(f.unwrapped for f in frames):
    return frames
  out, previous = [], None
  for fr in frames:
    q = fr.positions
    if previous is not None:
      step = q - previous
      q = previous + step - fr.box * np.round(step / fr.box)
    out.append(fr._replace(positions=q, unwrapped=True))
    previous = q
  return out


def assign_splits(num_files, fractions, seed):
  """Split name per file from (train, test, validation) fractions, files in a
  seeded random order; at least one training file, one validation file when
  there are two or more, one test file when there are three or more."""
  fractions = np.asarray(fractions, np.float64)
  if fractions.shape != (3,) or np.any(fractions < 0) or fractions.sum() <= 0:
    raise errors.InputError(f"split fractions must be three non-negative numbers "
                            f"(train, test, validation), got {fractions.tolist()}")
  fractions = fractions / fractions.sum()
  n_test = int(round(fractions[1] * num_files))
  n_val = int(round(fractions[2] * num_files))
  if num_files >= 2:
    n_val = max(n_val, 1)
  if num_files >= 3:
    n_test = max(n_test, 1)
  while n_test + n_val > num_files - 1:
    if n_test >= n_val and n_test > 0:
      n_test -= 1
    else:
      n_val -= 1
  names = ["test"] * n_test + ["validation"] * n_val
  names += ["train"] * (num_files - len(names))
  order = np.random.default_rng(seed).permutation(num_files)
  out = [None] * num_files
  for name, k in zip(names, order.tolist()):
    out[k] = name
  return out


def _temperature(frames, mass):
  """Mean kinetic temperature [K] of frames (3N − 3 degrees of freedom)."""
  v = np.stack([f.velocities for f in frames])
  n = v.shape[1]
  kinetic = 0.5 * mass * np.sum(v * v, axis=(1, 2)) * units.MVV_TO_ENERGY
  return float(np.mean(units.temperature_from_kinetic(kinetic, 3 * n - 3)))


def _start_times(times, dts_fs, frames_per_trajectory, rng):
  """Start times [fs] with t + max(Δt) inside the trajectory (all, or a sample)."""
  starts = times[times + max(dts_fs) <= times[-1] + 1e-9]
  if frames_per_trajectory is not None and frames_per_trajectory < len(starts):
    starts = np.sort(rng.choice(starts, frames_per_trajectory, replace=False))
  return [float(t) for t in starts]


def make_dataset(sources, out_dir, *, timestep_fs, dts_fs, mass_amu, lj, splits=None,
                 split_fractions=(0.7, 0.15, 0.15), frames_per_trajectory=None, seed=0,
                 reference=None, progress=None):
  """Builds a dataset from trajectory files; returns its manifest (dict).

  Args:
    sources: paths of LAMMPS text dumps or extended XYZ files, one trajectory each.
    out_dir: new dataset directory (refused if it already holds a dataset).
    timestep_fs: fs per dump timestep (LAMMPS `timestep`; 1 fs in `real` units
      unless the run set another).
    dts_fs: the Δt of the pairs, each a multiple of the frame spacing.
    mass_amu: g/mol of the species.  lj: potentials.LennardJones (or any
      object with epsilon, sigma, cutoff, shift) the data was simulated with.
    splits: explicit split per source ('train', 'test', 'validation'), or None
      to assign them from `split_fractions` with `seed`.
    frames_per_trajectory: pair starts sampled per trajectory (None: all frames).
    reference: optional long trajectory (RDF/MSD reference, roll-out starts).
    progress: callable(message) for one line per file, or None.
  Raises:
    errors.DumpFormatError naming file and line (see check_trajectory),
    errors.InputError for bad arguments, errors.DatasetError if out_dir is taken.
  """
  sources = [str(s) for s in sources]
  if not sources:
    raise errors.InputError("no trajectory files given")
  if os.path.exists(os.path.join(out_dir, "manifest.json")):
    raise errors.DatasetError(f"{out_dir} already holds a dataset; choose another "
                              f"--out_dir or delete it")
  dts_fs = sorted({int(d) for d in dts_fs})
  if not dts_fs or dts_fs[0] <= 0 or timestep_fs <= 0 or mass_amu <= 0:
    raise errors.InputError(f"need positive Δt, timestep and mass; got dts {dts_fs}, "
                            f"timestep {timestep_fs}, mass {mass_amu}")
  if splits is None:
    splits = assign_splits(len(sources), split_fractions, seed)
  splits = list(splits)
  if len(splits) != len(sources) or set(splits) - set(dataset.SPLITS):
    raise errors.InputError(f"need one split of {dataset.SPLITS} per file; got {splits} "
                            f"for {len(sources)} files")
  if "train" not in splits:
    raise errors.InputError("no file is in the training split")
  rngs = np.random.SeedSequence(seed).spawn(len(sources))
  say = progress or (lambda message: None)
  records, num_atoms, spacing = [], None, None
  jobs = [(s, split, f"traj_{i:03d}", "nve") for i, (s, split) in enumerate(zip(sources, splits))]
  if reference:
    jobs.append((str(reference), "rollout", "rollout", "rollout"))
  for (path, split, name, kind), rng in zip(jobs, rngs + [None]):
    frames = read_trajectory(path, mass_amu, timestep_fs)
    own = check_trajectory(path, frames, dts_fs if kind == "nve" else [], timestep_fs,
                           lj.cutoff)
    if num_atoms is not None and len(frames[0].ids) != num_atoms:
      _fail(path, frames[0].line, f"{len(frames[0].ids)} atoms, the first file has "
            f"{num_atoms}: all trajectories must hold the same system")
    num_atoms = len(frames[0].ids)
    if kind == "nve":
      if spacing is not None and abs(own - spacing) > 1e-6 * spacing:
        _fail(path, frames[1].line, f"frames are {own:g} fs apart, those of "
              f"{sources[0]} {spacing:g} fs: use one spacing for all files")
      spacing = own
    frames = unwrap(frames)
    relpath = (f"trajectories/{name}/nve.dump" if kind == "nve"
               else "trajectories/rollout/nvt.dump")
    target = os.path.join(out_dir, relpath)
    dump.write_dump(target, frames, exact=True)
    times = np.array([f.timestep * timestep_fs for f in frames], np.float64)
    record = {"name": name, "kind": kind, "split": split, "dump": relpath,
              "sha256": io_utils.sha256(target), "box": frames[0].box.tolist(),
              "num_atoms": num_atoms, "num_frames": len(frames),
              "time_span_fs": float(times[-1] - times[0]),
              "thermo": {"temp": _temperature(frames, mass_amu)},
              "source": {"path": os.path.abspath(path), "sha256": io_utils.sha256(path)}}
    if kind == "nve":
      record["frame_times_fs"] = _start_times(times, dts_fs, frames_per_trajectory,
                                              np.random.default_rng(rng))
    records.append(record)
    say(f"  {path}: {len(frames)} frames, {num_atoms} atoms, {split}, "
        f"T = {record['thermo']['temp']:.1f} K")
  pairs = dataset.build_pairs(out_dir, records, dts_fs, mass_amu, timestep_fs)
  temperature = float(np.mean([r["thermo"]["temp"] for r in records if r["kind"] == "nve"]))
  manifest = {
      "format": dataset.FORMAT,
      "protocol": ("user trajectories (launch/make_dataset.py); one file = one trajectory; "
                   "time-reversed pairs added to train"),
      "preset": {"name": "make_dataset", "dts_fs": dts_fs, "dump_every_fs": spacing,
                 "timestep_fs": float(timestep_fs),
                 "frames_per_trajectory": frames_per_trajectory,
                 "num_atoms": num_atoms, "temperature": temperature,
                 "split": [splits.count(s) for s in dataset.SPLITS]},
      "seed": seed, "num_atoms": num_atoms, "mass_amu": float(mass_amu),
      "units": units.UNITS, "unit_style": units.UNIT_STYLE,
      "potential": lj._asdict(),
      "split": {s: [r["name"] for r in records if r["split"] == s] for s in dataset.SPLITS},
      "trajectories": records,
      "pairs": pairs,
  }
  io_utils.write_json(os.path.join(out_dir, "manifest.json"), manifest)
  return manifest
