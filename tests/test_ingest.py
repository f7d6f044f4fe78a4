"""Datasets from users' own LAMMPS runs (launch/make_dataset.py, data/ingest.py).

The source trajectories are written by LAMMPS itself in the test, from the
README's krypton input script (wrapped positions with image flags, a column
layout other than the generated data's). References: an independent parse of
the dump text, LAMMPS's own one-step Verlet, and hand-made malformed files.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mdnet_tf import errors
from mdnet_tf import extxyz
from mdnet_tf import io_utils
from mdnet_tf import potentials
from mdnet_tf import units
from mdnet_tf.data import dataset
from mdnet_tf.data import dump
from mdnet_tf.data import ingest
from mdnet_tf.data import lammps_driver

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "krypton", "in.krypton")
KR_MASS = 83.798
KR = potentials.LennardJones(0.3254, 3.627, 7.4)   # the script's potential
DTS = [16, 32]


@pytest.fixture(scope="module")
def krypton_dumps(tmp_path_factory):
  """Two short krypton runs (seeds 1, 2) written by LAMMPS: 256 atoms, 17 frames."""
  out = tmp_path_factory.mktemp("krypton")
  paths = []
  for seed in (1, 2):
    path = str(out / f"run{seed}.dump")
    lammps_driver.run_script(SCRIPT, {"seed": seed, "out": path, "natoms": 256,
                                      "equil_steps": 300, "nve_steps": 256})
    paths.append(path)
  return paths


def _make(paths, out_dir, **kwargs):
  options = dict(timestep_fs=1.0, dts_fs=DTS, mass_amu=KR_MASS, lj=KR,
                 splits=["train", "validation"][:len(paths)])
  options.update(kwargs)
  return ingest.make_dataset(paths, str(out_dir), **options)


def _parse_first_frame(path):
  """Independent reader: unwrapped positions and velocities of the first frame."""
  lines = open(path).read().splitlines()
  n = int(lines[3])
  lo_hi = np.array([line.split() for line in lines[5:8]], np.float64)
  table = np.array([line.split() for line in lines[9:9 + n]], np.float64)
  table = table[np.argsort(table[:, 0])]
  box = lo_hi[:, 1] - lo_hi[:, 0]
  return table[:, 2:5] + table[:, 5:8] * box, table[:, 8:11]


def test_make_dataset_round_trips_lammps_frames_exactly(krypton_dumps, tmp_path):
  manifest = _make(krypton_dumps, tmp_path / "kr")
  assert manifest["mass_amu"] == KR_MASS and manifest["potential"] == KR._asdict()
  assert [s["source"]["sha256"] for s in manifest["trajectories"]] == [
      io_utils.sha256(p) for p in krypton_dumps]
  q0, v0 = _parse_first_frame(krypton_dumps[0])
  source = dump.read_dump(krypton_dumps[0])
  copy = dump.read_dump(os.path.join(tmp_path / "kr", manifest["trajectories"][0]["dump"]))
  np.testing.assert_array_equal(copy[0].positions, q0)        # exact: float64 round trip
  np.testing.assert_array_equal(copy[0].velocities, v0)
  for a, b in zip(source, copy):
    assert a.timestep == b.timestep
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.velocities, b.velocities)
  # All 17 frames: 15 starts with t + 32 fs inside 256 fs, plus time-reversed twins.
  pairs = dataset.load_pairs(str(tmp_path / "kr"), "train", 16)
  assert len(pairs) == 2 * 15 and pairs.reversed.sum() == 15
  by_time = {f.timestep: f for f in source}
  for k in np.flatnonzero(~pairs.reversed):
    t = int(pairs.time_fs[k])
    np.testing.assert_array_equal(pairs.positions[k], by_time[t].positions)
    np.testing.assert_array_equal(pairs.next_positions[k], by_time[t + 16].positions)
    np.testing.assert_array_equal(pairs.momenta[k], by_time[t].velocities * KR_MASS)
  sequences = dataset.load_sequences(str(tmp_path / "kr"), "train", 32, 2)
  assert sequences.positions.shape[1:] == (3, 256, 3)
  np.testing.assert_array_equal(sequences.positions[0, 2], by_time[64].positions)
  with pytest.raises(errors.DatasetError, match="already holds a dataset"):
    _make(krypton_dumps, tmp_path / "kr")


def test_extended_xyz_gives_the_same_dataset(krypton_dumps, tmp_path):
  """The same frames as extended XYZ (momenta, step=) make the same pairs."""
  xyz = []
  for path in krypton_dumps:
    out = str(tmp_path / (os.path.basename(path) + ".extxyz"))
    for f in dump.read_dump(path):
      extxyz.append_frame(out, f.timestep, f.positions, f.velocities * KR_MASS, f.box)
    xyz.append(out)
  _make(krypton_dumps, tmp_path / "from_dump")
  _make(xyz, tmp_path / "from_xyz")
  a = dataset.load_pairs(str(tmp_path / "from_dump"), "validation", 32)
  b = dataset.load_pairs(str(tmp_path / "from_xyz"), "validation", 32)
  np.testing.assert_allclose(b.positions, a.positions, rtol=0, atol=1e-6)  # 9 digits in XYZ
  np.testing.assert_allclose(b.momenta, a.momenta, rtol=1e-7, atol=1e-9)


def test_wrapped_positions_without_images_are_unwrapped(krypton_dumps, tmp_path):
  frames = dump.read_dump(krypton_dumps[0])
  wrapped = [f._replace(positions=f.box_lo + np.mod(f.positions - f.box_lo, f.box))
             for f in frames]
  path = str(tmp_path / "wrapped.dump")
  _write(path, wrapped, "id type x y z vx vy vz",
         lambda f, i: [*f.positions[i], *f.velocities[i]])
  out = ingest.unwrap(dump.read_dump(path))
  assert all(f.unwrapped for f in out)
  # The motion is recovered exactly up to float64 rounding of the wrap: each atom's
  # path equals the original one, shifted by a whole number of boxes.
  for a, b in zip(frames, out):
    np.testing.assert_allclose(b.positions - out[0].positions,
                               a.positions - frames[0].positions, atol=1e-9)


def _write(path, frames, columns, row, timesteps=None, types=None):
  """A dump with arbitrary columns: row(frame, i) gives the values after id, type."""
  with open(path, "w") as f:
    for k, fr in enumerate(frames):
      ts = fr.timestep if timesteps is None else timesteps[k]
      f.write(f"ITEM: TIMESTEP\n{ts}\nITEM: NUMBER OF ATOMS\n{len(fr.ids)}\n"
              "ITEM: BOX BOUNDS pp pp pp\n")
      for lo, length in zip(fr.box_lo, fr.box):
        f.write(f"{float(lo)!r} {float(lo + length)!r}\n")
      f.write(f"ITEM: ATOMS {columns}\n")
      for i in range(len(fr.ids)):
        t = fr.types[i] if types is None else types[k][i]
        f.write(f"{fr.ids[i]} {t} " + " ".join(repr(float(v)) for v in row(fr, i)) + "\n")


def _header_line(k, n):
  """1-based line of the TIMESTEP header of frame k in a dump of n-atom frames."""
  return 1 + k * (9 + n)


@pytest.mark.parametrize("case", ["uneven", "short", "not_multiple", "ids", "velocities",
                                  "small_box", "types"])
def test_malformed_trajectories_name_file_and_line(krypton_dumps, tmp_path, case):
  frames = dump.read_dump(krypton_dumps[0])[:5]      # 0 ... 64 fs
  n = len(frames[0].ids)
  full = "id type xu yu zu vx vy vz"
  row = lambda f, i: [*f.positions[i], *f.velocities[i]]
  path = str(tmp_path / f"{case}.dump")
  dts, lj = DTS, KR
  if case == "uneven":
    _write(path, frames, full, row, timesteps=[0, 16, 32, 64, 80])
    line, match = _header_line(3, n), "uneven time spacing"
  elif case == "short":
    _write(path, frames, full, row)
    dts, line, match = [128], _header_line(4, n), "shorter than Δt = 128 fs"
  elif case == "not_multiple":
    _write(path, frames, full, row)
    dts, line, match = [24], _header_line(1, n), "not a multiple of the frame spacing 16 fs"
  elif case == "ids":
    shuffled = [f if k != 2 else f._replace(ids=f.ids + (f.ids == 7) * 1000)
                for k, f in enumerate(frames)]
    _write(path, shuffled, full, row)
    line, match = None, "other atom ids"
  elif case == "velocities":
    _write(path, frames, "id type xu yu zu", lambda f, i: f.positions[i])
    line, match = _header_line(0, n), "no velocities"
  elif case == "small_box":
    _write(path, frames, full, row)
    lj, line, match = potentials.LennardJones(0.3254, 3.627, 13.0), _header_line(0, n), \
        "smaller than 2 × the cutoff 13 Å"
  else:
    types = [np.ones(n, int) for _ in frames]
    types[3][10] = 2                                  # atom id 11 of the 4th frame
    _write(path, frames, full, row, types=types)
    line, match = _header_line(3, n) + 9 + 10, "type 2"
  with pytest.raises(errors.DumpFormatError, match=match) as info:
    ingest.make_dataset([path], str(tmp_path / "out"), timestep_fs=1.0, dts_fs=dts,
                        mass_amu=KR_MASS, lj=lj)
  assert path in str(info.value)
  if line is not None:
    assert f"{path}:{line}:" in str(info.value)
  assert not os.path.exists(tmp_path / "out" / "manifest.json")


def test_splits_from_fractions_are_seeded_and_keep_every_split():
  splits = ingest.assign_splits(20, (0.75, 0.15, 0.10), seed=0)     # the paper's 15/3/2
  assert [splits.count(s) for s in ("train", "test", "validation")] == [15, 3, 2]
  assert splits == ingest.assign_splits(20, (0.75, 0.15, 0.10), seed=0)
  assert splits != ingest.assign_splits(20, (0.75, 0.15, 0.10), seed=1)
  assert ingest.assign_splits(2, (0.7, 0.15, 0.15), 0).count("validation") == 1
  assert set(ingest.assign_splits(3, (0.8, 0.1, 0.1), 0)) == {"train", "test", "validation"}
  with pytest.raises(errors.InputError):
    ingest.assign_splits(3, (1.0, -0.5, 0.5), 0)


def test_model_and_verlet_baseline_take_the_species_from_the_data(krypton_dumps, tmp_path):
  """A model trained on krypton stores its mass and potential; evaluate.py's
  Verlet column on that data matches LAMMPS's own Verlet with those parameters."""
  data = tmp_path / "kr"
  _make(krypton_dumps, data)
  work, out = tmp_path / "run", tmp_path / "table"
  env = {**os.environ, "PYTHONPATH": ROOT}
  subprocess.run([sys.executable, os.path.join(ROOT, "launch", "train.py"), "--dt=16",
                  f"--data_dir={data}", f"--workdir={work}", "--graph_backend=graph",
                  "--steps=2", "--checkpoint_every=2"], check=True, env=env,
                 capture_output=True, text=True)
  config = json.load(open(work / "model_config.json"))
  assert (config["mass_amu"], config["lj_epsilon"], config["lj_sigma"],
          config["cutoff_angstrom"]) == (KR_MASS, KR.epsilon, KR.sigma, KR.cutoff)
  subprocess.run([sys.executable, os.path.join(ROOT, "launch", "evaluate.py"),
                  f"--data_dir={data}", "--split=validation", f"--models={tmp_path}",
                  "--dt=16", f"--out_dir={out}"], check=True, env=env,
                 capture_output=True, text=True)
  verlet = json.load(open(out / "table1.json"))["ours"]["Verlet"]["16"]
  # Independent reference: one LAMMPS velocity-Verlet step of 16 fs per pair.
  pairs = dataset.load_pairs(str(data), "validation", 16)
  sq, sq_argon = [], []
  for k in range(len(pairs)):
    v = pairs.momenta[k] / KR_MASS
    ref = lammps_driver.run_from_state(pairs.positions[k], v, pairs.box[k], 16.0, 1,
                                       lj=KR, mass=KR_MASS)
    sq.append(np.mean((ref["positions"][-1] - pairs.next_positions[k]) ** 2))
    argon = lammps_driver.run_from_state(pairs.positions[k], v, pairs.box[k], 16.0, 1,
                                         lj=potentials.LennardJones(), mass=units.ARGON_MASS)
    sq_argon.append(np.mean((argon["positions"][-1] - pairs.next_positions[k]) ** 2))
  rmse, rmse_argon = np.sqrt(np.mean(sq)), np.sqrt(np.mean(sq_argon))
  assert verlet[0] == pytest.approx(rmse, rel=1e-6)     # [positions Å, velocities Å/fs]
  assert abs(rmse_argon - rmse) > 0.05 * rmse      # argon constants would show
