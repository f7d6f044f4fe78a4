"""Generates a dataset with LAMMPS following the paper's protocol (see presets.py).

Layout of `out_dir`:
  trajectories/traj_NNN/nve.dump      NVE stage, `id type xu yu zu vx vy vz`
  trajectories/traj_NNN/trajectory.json   seeds, box, thermo, checksum (marks done)
  trajectories/rollout/nvt.dump       long NVT run for roll-out validation
  pairs/{train,test,validation}.npz   frame pairs per Δt (see dataset.py)
  manifest.json                       protocol, preset, seeds, LAMMPS version,
                                      split, boxes, checksums (written last)

Trajectories run in parallel (one serial LAMMPS per process). Generation is
resumable: a trajectory whose `trajectory.json` exists is not run again, and
every file is written atomically, so a killed run continues where it stopped.
The same preset and seed give the same bytes.
"""

import multiprocessing
import os
import time
from typing import NamedTuple

import numpy as np
import tqdm

from mdnet_tf import errors
from mdnet_tf import io_utils
from mdnet_tf import potentials
from mdnet_tf import units
from mdnet_tf.data import dataset
from mdnet_tf.data import presets

SPLITS = dataset.SPLITS


class TrajectoryJob(NamedTuple):
  name: str            # traj_000 ... or rollout
  kind: str            # 'nve' or 'rollout'
  split: str           # train / test / validation / rollout
  seeds: dict          # create, velocity, frames
  dump_relpath: str


def jobs(preset, seed):
  """The trajectories of a dataset with their splits and derived seeds."""
  children = np.random.SeedSequence(seed).spawn(preset.num_trajectories + 1)
  split_of = [s for s, n in zip(SPLITS, preset.split) for _ in range(n)]
  out = []
  for i, child in enumerate(children):
    create, velocity, frames = (int(x) for x in child.generate_state(3) % (2**31 - 2) + 1)
    seeds = {"create": create, "velocity": velocity, "frames": frames}
    if i < preset.num_trajectories:
      name = f"traj_{i:03d}"
      out.append(TrajectoryJob(name, "nve", split_of[i], seeds,
                               f"trajectories/{name}/nve.dump"))
    else:
      out.append(TrajectoryJob("rollout", "rollout", "rollout", seeds,
                               "trajectories/rollout/nvt.dump"))
  return out


def _run_job(args):
  """Worker: runs one LAMMPS trajectory (top level, so `spawn` can pickle it)."""
  preset, job, out_dir = args
  from mdnet_tf.data import lammps_driver  # pylint: disable=import-outside-toplevel
  start = time.time()
  info = lammps_driver.run_protocol(preset, job.seeds,
                                    os.path.join(out_dir, job.dump_relpath), job.kind)
  info["seconds"] = time.time() - start
  return job, info


def _record_path(out_dir, job):
  return os.path.join(out_dir, os.path.dirname(job.dump_relpath), "trajectory.json")


def _load_record(out_dir, job, preset, seed):
  """The finished trajectory's record, or None if it has to be (re)run."""
  path = _record_path(out_dir, job)
  if not os.path.exists(path):
    return None
  record = dataset.read_json(path)
  if not preset.matches(record.get("preset", {})) or record.get("seed") != seed:
    raise errors.DatasetError(
        f"{path} was generated with another preset or seed (preset "
        f"{record.get('preset', {}).get('name')!r}, seed {record.get('seed')}); "
        f"use a fresh --out_dir or the same --preset/--seed to resume")
  dump_path = os.path.join(out_dir, job.dump_relpath)
  if not os.path.exists(dump_path) or io_utils.sha256(dump_path) != record["sha256"]:
    return None  # dump missing or changed: run the trajectory again
  return record


def potential(preset):
  """The LJ potential a preset simulates (recorded in the manifest, from which
  models, baselines and analyses read it)."""
  return potentials.LennardJones(preset.lj_epsilon, preset.lj_sigma, preset.cutoff)


def generate(preset_name="small", out_dir="data/small", seed=0, workers=None,
             progress=True, **overrides):
  """Generates (or resumes) a dataset; returns its manifest (dict).

  overrides: presets.OVERRIDABLE fields (mass_amu, lj_epsilon, lj_sigma,
  cutoff, temperature, density) replacing the preset's argon values.
  """
  preset = presets.get(preset_name, **overrides)
  from mdnet_tf.data import lammps_driver  # pylint: disable=import-outside-toplevel
  lammps_version = lammps_driver.version()  # fails early if LAMMPS is missing
  all_jobs = jobs(preset, seed)
  records = {j.name: _load_record(out_dir, j, preset, seed) for j in all_jobs}
  todo = [j for j in all_jobs if records[j.name] is None]
  workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
  start = time.time()
  if todo:
    ctx = multiprocessing.get_context("spawn")
    bar = tqdm.tqdm(total=len(todo), desc=f"LAMMPS {preset.name} trajectories",
                    unit="traj", disable=not progress)
    with ctx.Pool(workers) as pool:
      for job, info in pool.imap_unordered(
          _run_job, [(preset, j, out_dir) for j in todo]):
        dump_path = os.path.join(out_dir, job.dump_relpath)
        record = {"name": job.name, "kind": job.kind, "split": job.split,
                  "seeds": job.seeds, "preset": preset.to_json(), "seed": seed,
                  "dump": job.dump_relpath, "sha256": io_utils.sha256(dump_path),
                  **info}
        io_utils.write_json(_record_path(out_dir, job), record)
        records[job.name] = record
        bar.update(1)
    bar.close()
  for job in all_jobs:
    if job.kind == "nve":
      records[job.name]["frame_times_fs"] = dataset.frame_times(
          preset, job.seeds["frames"]).tolist()
  pairs = dataset.build_pairs(out_dir, [records[j.name] for j in all_jobs], preset.dts_fs,
                              preset.mass_amu, preset.timestep_fs)
  manifest = {
      "format": dataset.FORMAT,
      "protocol": ("random start (no overlaps, short minimization) -> NPT 80 K 1 bar "
                   "(Nose-Hoover) -> NVT 80 K -> NVE, 1 fs velocity Verlet (LAMMPS); "
                   "only the NVE stage is used; time-reversed pairs added to train"),
      "preset": preset.to_json(), "seed": seed, "lammps_version": lammps_version,
      "num_atoms": preset.num_atoms, "mass_amu": preset.mass_amu,
      "units": units.UNITS, "unit_style": units.UNIT_STYLE,
      "potential": potential(preset)._asdict(),
      "split": {s: [j.name for j in all_jobs if j.split == s] for s in SPLITS},
      "trajectories": [records[j.name] for j in all_jobs],
      "pairs": pairs,
      "generation_seconds_this_run": time.time() - start,
  }
  io_utils.write_json(os.path.join(out_dir, "manifest.json"), manifest)
  return manifest
