"""Frame-pair datasets: built from LAMMPS dumps, stored as .npz, read with tf.data.

A pair is a state (q(t), p(t)) and its target (q(t+Δt), p(t+Δt)) from the NVE
stage of one trajectory. `pairs/<split>.npz` holds, for every Δt in the preset,
arrays named `dt<Δt>_<field>`:
  positions, next_positions: [P, N, 3] float64, Å (unwrapped)
  momenta, next_momenta:     [P, N, 3] float64, g/mol·Å/fs
  box: [P, 3] Å; trajectory: [P] int; time_fs: [P] float; reversed: [P] bool
Positions are kept in float64 so that Δq = q(t+Δt) − q(t) is exact before it is
cast to float32 (MDNet's errors reach 1e-5 Å, below float32 rounding of q).
The training split also holds the time-reversed pairs
(q(t+Δt), −p(t+Δt)) → (q(t), −p(t)).
"""

import json
import os
import zipfile
from typing import NamedTuple

import numpy as np

from mdnet_tf import errors
from mdnet_tf import io_utils
from mdnet_tf.data import dump

SPLITS = ("train", "test", "validation")
FORMAT = "mdnet_tf-dataset-v1"
FIELDS = ("positions", "momenta", "next_positions", "next_momenta", "box",
          "trajectory", "time_fs", "reversed")


class FramePairs(NamedTuple):
  """Pairs for one split and one Δt (NumPy arrays, see module doc)."""
  dt_fs: int
  positions: np.ndarray
  momenta: np.ndarray
  next_positions: np.ndarray
  next_momenta: np.ndarray
  box: np.ndarray
  trajectory: np.ndarray
  time_fs: np.ndarray
  reversed: np.ndarray

  def __len__(self):
    return len(self.positions)


def read_json(path):
  """Reads a JSON file; a corrupt one is a DatasetError naming the file."""
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise errors.DatasetError(f"{path} is not valid JSON ({e}); delete it to "
                              f"regenerate that part") from e


def frame_times(preset, seed):
  """The sorted start times [fs] of the sampled frames of one trajectory."""
  candidates = np.arange(0, preset.nve_steps * preset.timestep_fs - max(preset.dts_fs)
                         + 1, preset.dump_every_fs)
  rng = np.random.default_rng(seed)
  return np.sort(rng.choice(candidates, preset.frames_per_trajectory, replace=False))


def frames_by_time(frames, timestep_fs):
  """{time fs (rounded to 1e-6): Frame} of dump frames with timestep × timestep_fs."""
  return {round(f.timestep * timestep_fs, 6): f for f in frames}


def _pairs_of(by_time, times, dt_fs, traj_index, mass, path):
  out = {k: [] for k in FIELDS}
  for t in times:
    a, b = by_time.get(round(t, 6)), by_time.get(round(t + dt_fs, 6))
    if a is None or b is None:
      raise errors.DatasetError(f"{path} lacks the frame at {t:g} or {t + dt_fs:g} fs")
    for rev, (s, e, sign) in enumerate([(a, b, 1.0), (b, a, -1.0)]):
      out["positions"].append(s.positions)
      out["momenta"].append(sign * s.velocities * mass)
      out["next_positions"].append(e.positions)
      out["next_momenta"].append(sign * e.velocities * mass)
      out["box"].append(s.box)
      out["trajectory"].append(traj_index)
      out["time_fs"].append(float(t))
      out["reversed"].append(bool(rev))
  return out


def build_pairs(out_dir, records, dts_fs, mass, timestep_fs=1.0):
  """Writes pairs/<split>.npz from the NVE trajectories; returns their summary.

  records: the manifest's trajectory records; those of kind 'nve' give
  "dump" (path under out_dir), "split" and "frame_times_fs" (the start times
  of their pairs, the same for every Δt). Atoms have `mass` g/mol (momenta =
  mass × velocities); dump time = timestep × timestep_fs. The training split
  also gets the time-reversed pairs.
  """
  collected = {}
  for index, record in enumerate(records):
    if record["kind"] != "nve":
      continue
    path = os.path.join(out_dir, record["dump"])
    by_time = frames_by_time(dump.read_dump(path), timestep_fs)
    keep_reversed = record["split"] == "train"
    for dt in dts_fs:
      pairs = _pairs_of(by_time, record["frame_times_fs"], dt, index, mass, path)
      for field, values in pairs.items():
        values = [v for v, r in zip(values, pairs["reversed"]) if keep_reversed or not r]
        collected.setdefault(record["split"], {}).setdefault(
            f"dt{dt}_{field}", []).extend(values)
  summary = {}
  for split, arrays in collected.items():
    path = os.path.join(out_dir, "pairs", f"{split}.npz")
    with io_utils.atomic_path(path) as tmp:
      with open(tmp, "wb") as f:
        np.savez(f, **{k: np.stack(v) for k, v in arrays.items()})
    summary[split] = {
        "file": f"pairs/{split}.npz", "sha256": io_utils.sha256(path),
        "pairs_per_dt": len(arrays[f"dt{dts_fs[0]}_positions"]),
        "reversed_pairs_included": split == "train"}
  return summary


def load_manifest(data_dir):
  """The dataset's manifest; a clear error if the directory is not a dataset."""
  path = os.path.join(data_dir, "manifest.json")
  if not os.path.exists(path):
    raise errors.DatasetError(
        f"{data_dir} has no manifest.json: not a (finished) mdnet_tf dataset. "
        f"Generate one with `python launch/generate_data.py --out_dir={data_dir}`")
  return read_json(path)


def load_pairs(data_dir, split, dt_fs, verify=True):
  """FramePairs of `split` at `dt_fs` from a generated dataset directory.

  Raises:
    errors.DatasetError: unknown split or Δt, missing/corrupt file, checksum
      mismatch with the manifest.
  """
  manifest = load_manifest(data_dir)
  if split not in manifest["pairs"]:
    raise errors.DatasetError(f"split {split!r} not in {data_dir}; available: "
                              f"{sorted(manifest['pairs'])}")
  if dt_fs not in manifest["preset"]["dts_fs"]:
    raise errors.DatasetError(f"Δt {dt_fs} fs not in {data_dir}; available: "
                              f"{manifest['preset']['dts_fs']} fs")
  entry = manifest["pairs"][split]
  path = os.path.join(data_dir, entry["file"])
  if verify and (not os.path.exists(path) or io_utils.sha256(path) != entry["sha256"]):
    raise errors.DatasetError(f"{path} is missing or does not match the checksum "
                              f"in manifest.json; regenerate the dataset")
  try:
    with np.load(path) as data:
      return FramePairs(int(dt_fs), *[data[f"dt{dt_fs}_{k}"] for k in FIELDS])
  except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
    raise errors.DatasetError(f"cannot read {path}: {e}") from e


class FrameSequences(NamedTuple):
  """Short true trajectories for multi-step training (NumPy arrays).

  positions [S, k+1, N, 3] Å (unwrapped, float64), momenta [S, k+1, N, 3]
  g/mol·Å/fs: the states at t, t + Δt, ..., t + kΔt. box [S, 3] Å;
  trajectory [S] int; time_fs [S] start times; reversed [S] bool (the
  time-reversed sequence (q(t+kΔt), −p(t+kΔt)) → ... → (q(t), −p(t))).
  """
  dt_fs: int
  positions: np.ndarray
  momenta: np.ndarray
  box: np.ndarray
  trajectory: np.ndarray
  time_fs: np.ndarray
  reversed: np.ndarray

  def __len__(self):
    return len(self.positions)

  @property
  def num_steps(self):
    return self.positions.shape[1] - 1


def load_sequences(data_dir, split, dt_fs, num_steps, starts_per_trajectory=None, seed=0,
                   time_reversed=None):
  """FrameSequences of k = num_steps steps of dt_fs from a dataset's NVE dumps.

  Start times are all dump frames with t + kΔt inside the NVE stage, or
  `starts_per_trajectory` of them drawn with `seed` (per trajectory). Time-reversed
  sequences are added for the training split unless time_reversed says otherwise.
  Dumps are checked against the manifest's checksums.

  Raises:
    errors.DatasetError: unknown split, Δt not a multiple of the dump spacing,
      a sequence longer than the NVE stage, a dump that does not match.
  """
  manifest = load_manifest(data_dir)
  preset = manifest["preset"]
  every = preset["dump_every_fs"]
  if num_steps < 1 or dt_fs % every:
    raise errors.DatasetError(f"need num_steps ≥ 1 and Δt a multiple of the dump spacing "
                              f"{every} fs; got {num_steps} steps of {dt_fs} fs")
  span = num_steps * dt_fs
  records = [t for t in manifest["trajectories"] if t["split"] == split and t["kind"] == "nve"]
  if not records:
    raise errors.DatasetError(f"split {split!r} has no trajectories in {data_dir}")
  if time_reversed is None:
    time_reversed = split == "train"
  out = {k: [] for k in ("positions", "momenta", "box", "trajectory", "time_fs", "reversed")}
  for index, record in enumerate(manifest["trajectories"]):
    if record not in records:
      continue
    path = os.path.join(data_dir, record["dump"])
    if io_utils.sha256(path) != record["sha256"]:
      raise errors.DatasetError(f"{path} does not match its checksum in manifest.json")
    frames = frames_by_time(dump.read_dump(path), preset["timestep_fs"])
    times = sorted(frames)
    starts = np.array([t for t in times if round(t + span, 6) in frames])
    if not len(starts):
      raise errors.DatasetError(f"{num_steps} steps of {dt_fs} fs = {span} fs exceed the "
                                f"{times[-1] - times[0]:g} fs of {path}")
    if starts_per_trajectory is not None and starts_per_trajectory < len(starts):
      rng = np.random.default_rng([seed, index])
      starts = np.sort(rng.choice(starts, starts_per_trajectory, replace=False))
    for t in starts.tolist():
      chain = [frames[round(t + j * dt_fs, 6)] for j in range(num_steps + 1)]
      q = np.stack([f.positions for f in chain])
      p = np.stack([f.velocities for f in chain]) * manifest["mass_amu"]
      for rev in ([False, True] if time_reversed else [False]):
        out["positions"].append(q[::-1] if rev else q)
        out["momenta"].append(-p[::-1] if rev else p)
        out["box"].append(chain[0].box)
        out["trajectory"].append(index)
        out["time_fs"].append(float(t))
        out["reversed"].append(rev)
  return FrameSequences(int(dt_fs), *[np.stack(out[k]) for k in (
      "positions", "momenta", "box", "trajectory", "time_fs", "reversed")])


def pairs_from_dump(paths, dt_fs, mass, timestep_fs=1.0):
  """FramePairs (t, t + dt) from LAMMPS dumps (real units, atoms of `mass` g/mol).

  `paths` is one dump or a list (e.g. a pair of files, the state at t and the
  state at t + dt); frames are matched by timestep × timestep_fs.
  """
  paths = [paths] if isinstance(paths, str) else list(paths)
  frames = [f for path in paths for f in dump.read_dump(path)]
  path = ", ".join(paths)
  if any(f.velocities is None for f in frames):
    raise errors.DumpFormatError(f"{path}: velocities (vx vy vz) are needed")
  by_time = {round(f.timestep * timestep_fs, 6): f for f in frames}
  starts = [t for t in sorted(by_time) if round(t + dt_fs, 6) in by_time]
  if not starts:
    raise errors.InputError(f"{path} has no two frames {dt_fs} fs apart "
                            f"(timestep {timestep_fs} fs)")
  a = [by_time[t] for t in starts]
  b = [by_time[round(t + dt_fs, 6)] for t in starts]
  return FramePairs(
      int(dt_fs), np.stack([f.positions for f in a]),
      np.stack([f.velocities * mass for f in a]), np.stack([f.positions for f in b]),
      np.stack([f.velocities * mass for f in b]), np.stack([f.box for f in a]),
      np.zeros(len(a), np.int64), np.array(starts), np.zeros(len(a), bool))


def tf_dataset(pairs, shuffle_seed=None):
  """A tf.data.Dataset of float32 dicts, one pair per element.

  Keys: positions, momenta, box, delta_positions (q(t+Δt) − q(t), computed in
  float64), next_momenta, delta_momenta; shapes [N, 3] (box [3]).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  f32 = lambda x: np.asarray(x, np.float32)
  tensors = {
      "positions": f32(pairs.positions), "momenta": f32(pairs.momenta),
      "box": f32(pairs.box),
      "delta_positions": f32(pairs.next_positions - pairs.positions),
      "next_momenta": f32(pairs.next_momenta),
      "delta_momenta": f32(pairs.next_momenta - pairs.momenta)}
  ds = tf.data.Dataset.from_tensor_slices(tensors)
  if shuffle_seed is not None:
    ds = ds.shuffle(len(pairs), seed=shuffle_seed, reshuffle_each_iteration=True)
  return ds
