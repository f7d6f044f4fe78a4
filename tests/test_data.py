"""LAMMPS data generation (smoke preset): split, pairs, reversal, resume, errors."""

import builtins
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import io_utils
from mdnet_tf import units
from mdnet_tf import verlet
from mdnet_tf.data import dataset
from mdnet_tf.data import dump
from mdnet_tf.data import generate
from mdnet_tf.data import lammps_driver
from mdnet_tf.data import presets

SMOKE = presets.get("smoke")


def test_manifest_describes_the_data(smoke_dir):
  m = dataset.load_manifest(smoke_dir)
  assert m["preset"]["name"] == "smoke" and m["seed"] == 0
  assert m["num_atoms"] == SMOKE.num_atoms and m["lammps_version"] >= 20250722
  assert [len(m["split"][s]) for s in generate.SPLITS] == list(SMOKE.split)
  names = [t["name"] for t in m["trajectories"]]
  assert len(set(names)) == SMOKE.num_trajectories + 1 and "rollout" in names
  for t in m["trajectories"]:
    assert io_utils.sha256(os.path.join(smoke_dir, t["dump"])) == t["sha256"]
    assert len(t["box"]) == 3 and t["num_atoms"] == SMOKE.num_atoms
  for split, entry in m["pairs"].items():
    per_traj = SMOKE.frames_per_trajectory * (2 if split == "train" else 1)
    assert entry["pairs_per_dt"] == per_traj * len(m["split"][split])
    assert io_utils.sha256(os.path.join(smoke_dir, entry["file"])) == entry["sha256"]


def test_rollout_trajectory_is_long_nvt(smoke_dir):
  m = dataset.load_manifest(smoke_dir)
  record = next(t for t in m["trajectories"] if t["kind"] == "rollout")
  frames = dump.read_dump(os.path.join(smoke_dir, record["dump"]))
  times = [f.timestep for f in frames]
  assert times == list(range(0, SMOKE.rollout_steps + 1, SMOKE.rollout_dump_every_fs))


@pytest.mark.parametrize("dt", SMOKE.dts_fs)
def test_pairs_match_dumps_and_reversal(smoke_dir, dt):
  m = dataset.load_manifest(smoke_dir)
  pairs = dataset.load_pairs(smoke_dir, "train", dt)
  assert pairs.positions.dtype == np.float64
  forward, backward = ~pairs.reversed, pairs.reversed
  assert forward.sum() == backward.sum()
  # Reversed pair k+1 is forward pair k with ends swapped and momenta negated.
  np.testing.assert_array_equal(pairs.positions[backward], pairs.next_positions[forward])
  np.testing.assert_array_equal(pairs.momenta[backward], -pairs.next_momenta[forward])
  np.testing.assert_array_equal(pairs.next_momenta[backward], -pairs.momenta[forward])
  # Forward pairs are the dump frames at t and t + Δt.
  k = int(np.argmax(forward))
  record = m["trajectories"][int(pairs.trajectory[k])]
  by_time = {f.timestep: f for f in dump.read_dump(os.path.join(smoke_dir, record["dump"]))}
  t = int(pairs.time_fs[k])
  assert t in record["frame_times_fs"]
  np.testing.assert_array_equal(pairs.positions[k], by_time[t].positions)
  np.testing.assert_allclose(pairs.next_momenta[k], by_time[t + dt].velocities * units.ARGON_MASS)


def test_reversed_pair_is_a_true_trajectory(smoke_dir):
  """Integrating the reversed input for Δt with 1 fs Verlet reaches the reversed target."""
  pairs = dataset.load_pairs(smoke_dir, "train", 16)
  k = int(np.argmax(pairs.reversed))
  out = verlet.VerletSimulator(1.0, mass=units.ARGON_MASS, lj=generate.potential(SMOKE),
                                dtype=tf.float64).run(
      pairs.positions[k], pairs.momenta[k], pairs.box[k], 16)
  # Dumps carry 12 significant digits; time reversal holds to that precision.
  np.testing.assert_allclose(out.positions[-1], pairs.next_positions[k], atol=1e-7)
  np.testing.assert_allclose(out.momenta[-1], pairs.next_momenta[k], atol=1e-7)


def test_test_and_validation_have_no_reversed_pairs(smoke_dir):
  for split in ("test", "validation"):
    assert not dataset.load_pairs(smoke_dir, split, 32).reversed.any()


def test_tf_dataset_is_float32_with_exact_deltas(smoke_dir):
  pairs = dataset.load_pairs(smoke_dir, "test", 64)
  ds = dataset.tf_dataset(pairs)
  elem = next(iter(ds))
  assert set(elem) == {"positions", "momenta", "box", "delta_positions",
                       "next_momenta", "delta_momenta"}
  assert all(v.dtype == tf.float32 for v in elem.values())
  assert elem["positions"].shape == (SMOKE.num_atoms, 3)
  exact = pairs.next_positions[0] - pairs.positions[0]
  # Δq rounded once to float32 (relative 6e-8), not q rounded (absolute ~1e-6 Å).
  np.testing.assert_allclose(elem["delta_positions"].numpy(), exact, rtol=1e-7, atol=1e-12)
  assert sum(1 for _ in ds) == len(pairs)


def test_resume_regenerates_only_missing_and_is_deterministic(smoke_dir, tmp_path):
  copy = str(tmp_path / "copy")
  shutil.copytree(smoke_dir, copy)
  before = dataset.load_manifest(copy)
  victim = before["split"]["test"][0]
  os.remove(os.path.join(copy, "manifest.json"))
  os.remove(os.path.join(copy, "trajectories", victim, "trajectory.json"))
  # A half-written dump from a killed run must not be trusted.
  with open(os.path.join(copy, "trajectories", victim, "nve.dump"), "w") as f:
    f.write("ITEM: TIMESTEP\n0\n")
  kept = {t["name"]: t for t in before["trajectories"] if t["name"] != victim}
  after = generate.generate("smoke", copy, seed=0, workers=1, progress=False)
  assert after["generation_seconds_this_run"] > 0
  for t in after["trajectories"]:
    if t["name"] in kept:
      assert t["seconds"] == kept[t["name"]]["seconds"]   # not re-run
  # LAMMPS is deterministic: the re-run trajectory and the pairs are identical.
  assert [t["sha256"] for t in after["trajectories"]] == [
      t["sha256"] for t in before["trajectories"]]
  assert after["pairs"] == before["pairs"]


def test_resume_with_another_seed_is_refused(smoke_dir, tmp_path):
  copy = str(tmp_path / "copy")
  shutil.copytree(smoke_dir, copy)
  with pytest.raises(errors.DatasetError, match="another preset or seed"):
    generate.generate("smoke", copy, seed=1, workers=1, progress=False)


def test_corrupt_or_missing_dataset_files(smoke_dir, tmp_path):
  copy = str(tmp_path / "copy")
  shutil.copytree(smoke_dir, copy)
  with pytest.raises(errors.DatasetError, match="Δt 20 fs not in"):
    dataset.load_pairs(copy, "train", 20)
  with pytest.raises(errors.DatasetError, match="split 'training' not in"):
    dataset.load_pairs(copy, "training", 16)
  with open(os.path.join(copy, "pairs", "test.npz"), "r+b") as f:
    f.seek(100)
    f.write(b"garbage")
  with pytest.raises(errors.DatasetError, match="does not match the checksum"):
    dataset.load_pairs(copy, "test", 16)
  with pytest.raises(errors.DatasetError, match="cannot read"):
    dataset.load_pairs(copy, "test", 16, verify=False)
  with open(os.path.join(copy, "manifest.json"), "w") as f:
    f.write("{ not json")
  with pytest.raises(errors.DatasetError, match="not valid JSON"):
    dataset.load_manifest(copy)
  with pytest.raises(errors.DatasetError, match="no manifest.json"):
    dataset.load_manifest(str(tmp_path))


def test_missing_lammps_is_a_clear_error(monkeypatch):
  real_import = builtins.__import__

  def no_lammps(name, *args, **kwargs):
    if name == "lammps" or name.startswith("lammps."):
      raise ImportError("No module named 'lammps'")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(lammps_driver, "_LAMMPS", None)
  monkeypatch.setattr(builtins, "__import__", no_lammps)
  with pytest.raises(errors.MissingDependencyError, match="pip install lammps mpich"):
    lammps_driver.version()
  with pytest.raises(errors.MissingDependencyError):
    generate.generate("smoke", "/nonexistent/never-created", progress=False)


def test_presets_follow_the_paper():
  paper = presets.get("paper")
  assert (paper.num_atoms, paper.npt_steps, paper.nvt_steps, paper.nve_steps,
          paper.rollout_steps, paper.split, paper.frames_per_trajectory,
          paper.dts_fs) == (4000, 20000, 20000, 2560, 40960, (15, 3, 2), 10,
                            (16, 32, 64, 128))
  with pytest.raises(ValueError, match="unknown preset 'huge'"):
    presets.get("huge")
  json.dumps(paper.to_json())


def test_evaluation_reads_user_dumps(smoke_dir, tmp_path):
  """Pairs from a user's dump (or a pair of dumps) equal the dataset's pairs."""
  m = dataset.load_manifest(smoke_dir)
  record = next(t for t in m["trajectories"] if t["split"] == "test")
  path = os.path.join(smoke_dir, record["dump"])
  pairs = dataset.pairs_from_dump(path, 32, units.ARGON_MASS)
  frames = dump.read_dump(path)
  assert len(pairs) == len(frames) - 2          # dumped every 16 fs
  ref = dataset.load_pairs(smoke_dir, "test", 32)
  k = int(np.argmax(pairs.time_fs == ref.time_fs[0]))
  np.testing.assert_allclose(pairs.next_positions[k], ref.next_positions[0])
  first, second = str(tmp_path / "a.dump"), str(tmp_path / "b.dump")
  dump.write_dump(first, [frames[0]])
  dump.write_dump(second, [frames[2]])
  two = dataset.pairs_from_dump([first, second], 32, units.ARGON_MASS)
  assert len(two) == 1
  np.testing.assert_allclose(two.momenta[0], frames[0].velocities * units.ARGON_MASS,
                             rtol=1e-11)
  with pytest.raises(errors.InputError, match="no two frames 64 fs apart"):
    dataset.pairs_from_dump([first, second], 64, units.ARGON_MASS)
