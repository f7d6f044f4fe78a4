"""Rolls out a trained model (checkpoint dir, pretrained model or SavedModel).

  python launch/rollout.py --model=pretrained/mdnet_dt64 --time_fs=40960
  python launch/rollout.py --model=pretrained/mdnet_dt128 --thermostat=csvr --temperature=80
  python launch/rollout.py --model=pretrained/mdnet_dt32 --energy_rescale --lammps_dump
  python launch/rollout.py --model=models/mdnet_dt16 (a SavedModel base path)

NVE (the paper), NVE with momentum rescaling to the initial total energy, or NVT
(CSVR or Langevin split around each learned step). Optional Noether tailoring
of the energy at prediction time (--tailor=energy). Every step is monitored
(temperature, LJ potential, kinetic and total energy, total momentum, closest
pair); a blow-up stops the run with a report. Output in --out_dir:
trajectory.extxyz (unwrapped positions, momenta), thermo.dat, report.json and
rollout_checkpoint.npz; re-running the same command resumes a killed run.
"""

import sys

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from mdnet_tf import propagators  # noqa: E402
from mdnet_tf import reporting  # noqa: E402
from mdnet_tf import rollout  # noqa: E402
from mdnet_tf import stepping  # noqa: E402
from mdnet_tf.data import states  # noqa: E402
from mdnet_tf.models import symplectic  # noqa: E402

_MODEL = flags.DEFINE_string("model", None, "Training workdir, pretrained dir or SavedModel.",
                             required=True)
_START = flags.DEFINE_string("start", "data/small", "Start state: LAMMPS dump (velocities × "
                             "the model's mass), extended XYZ (last frame) or dataset dir "
                             "(its NVT reference, first frame).")
_FRAME = flags.DEFINE_integer("start_frame", 0, "Frame of a LAMMPS dump start (-1 = last).")
_TIME = flags.DEFINE_float("time_fs", 40960.0, "Simulated time, fs.")
_THERMOSTAT = flags.DEFINE_enum("thermostat", "none", list(rollout.THERMOSTATS),
                                "none = NVE; csvr or langevin = NVT.")
_TEMPERATURE = flags.DEFINE_float("temperature", None, "Thermostat target, K (default: the "
                                   "start state's temperature).")
_TAU = flags.DEFINE_float("tau_fs", 1000.0, "Thermostat coupling time, fs.")
_RESCALE = flags.DEFINE_bool("energy_rescale", False, "NVE: rescale momenta after each step "
                             "so that kinetic + LJ potential equals the initial total energy.")
_BOUNDS = flags.DEFINE_list("rescale_bounds", ["0.9", "1.1"], "Allowed rescaling factor range.")
_TAILOR = flags.DEFINE_enum("tailor", "none", ["none", "energy", "temperature"],
                            "Noether tailoring at prediction time (needs a checkpoint).")
_TAILOR_LR = flags.DEFINE_float("tailor_lr", propagators.TAILOR_LR, "Tailoring step size.")
_MODE = flags.DEFINE_enum("mode", propagators.DEFAULT_MODE, list(propagators.MODES),
                          "In-process execution: graph (compact graph, oneDNN) or xla.")
_PRECISION = flags.DEFINE_enum("precision", "float32", ["float32", "bfloat16"],
                               "Matmul precision of an in-process model.")
_EVERY = flags.DEFINE_float("write_every_fs", 128.0, "Frame (and checkpoint) interval, fs.")
_MIN_DIST = flags.DEFINE_float("min_distance_sigma", stepping.MIN_DISTANCE_SIGMA,
                               "Failure below this pair distance, in units of the model's "
                               "LJ σ (default: 2.5 Å for argon).")
_T_FACTOR = flags.DEFINE_float("temperature_factor", 3.0,
                               "Failure if T leaves [T_ref / f, T_ref × f].")
_SEED = flags.DEFINE_integer("seed", 0, "Thermostat noise seed.")
_SOLVER_TOL = flags.DEFINE_float("solver_tolerance", symplectic.Solver().tolerance,
                                 "mdnet_symplectic: stop the implicit solve when the update is "
                                 "below this (Å; momenta in units of the model's s_p).")
_SOLVER_ITER = flags.DEFINE_integer("solver_max_iter", symplectic.Solver().max_iter,
                                    "mdnet_symplectic: Anderson iterations before the "
                                    "Newton–Krylov fallback.")
_SOLVER_MEMORY = flags.DEFINE_integer("solver_memory", symplectic.Solver().memory,
                                      "mdnet_symplectic: Anderson acceleration memory "
                                      "(0 = damped fixed-point iteration).")
_SOLVER_DAMPING = flags.DEFINE_float("solver_damping", symplectic.Solver().damping,
                                      "mdnet_symplectic: mixing β of the Anderson iteration.")
_SOLVER_NEWTON = flags.DEFINE_integer("solver_newton_iter", symplectic.Solver().newton_iter,
                                      "mdnet_symplectic: Newton–Krylov iterations after a "
                                      "failed Anderson solve (0 = none).")
_OUT = flags.DEFINE_string("out_dir", "runs/rollout", "Output directory (resumes if present).")
_DUMP = flags.DEFINE_bool("lammps_dump", False, "Also write trajectory.dump (LAMMPS text).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  solver = symplectic.Solver(_SOLVER_TOL.value, _SOLVER_ITER.value, _SOLVER_DAMPING.value,
                             _SOLVER_MEMORY.value, _SOLVER_NEWTON.value)
  prop = propagators.from_path(_MODEL.value, _TAILOR.value, _TAILOR_LR.value, _MODE.value,
                               _PRECISION.value, solver)
  settings = rollout.Settings(
      thermostat=_THERMOSTAT.value, temperature=_TEMPERATURE.value, tau_fs=_TAU.value,
      energy_rescale=_RESCALE.value, rescale_bounds=tuple(float(b) for b in _BOUNDS.value),
      write_every=max(1, int(round(_EVERY.value / prop.dt_fs))),
      temperature_factor=_T_FACTOR.value, min_distance_sigma=_MIN_DIST.value, seed=_SEED.value)
  q, p, box = states.load_start(_START.value, _FRAME.value, mass=prop.mass)
  steps = int(round(_TIME.value / prop.dt_fs))
  result = rollout.Rollout(prop, settings).run(q, p, box, steps, _OUT.value)
  if _DUMP.value:
    rollout.write_lammps_dump(_OUT.value, prop.dt_fs, prop.mass)
  print(reporting.describe_rollout(result, prop.dt_fs, len(q)))
  if result.failure is not None:
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
