"""The per-step thermo log of a roll-out, as named records.

File (`thermo.dat`): '#' header lines (column names, then Δt, propagator,
ensemble, units), then one row per step with the columns below. In memory a
log is a NumPy structured array: `log["temperature_K"]` is a column, `log[-1]`
the last row, `len(log)` the number of steps. Nothing reads a column by
position.

Columns and units: step, time_fs (fs), temperature_K (K), potential_kcal_mol,
kinetic_kcal_mol, total_kcal_mol (kcal/mol; LJ potential unshifted, as LAMMPS),
momentum_norm (|Σp|, g/mol·Å/fs), min_distance_A (closest pair, Å), alpha
(energy-rescaling factor, 1 without), infeasible, clipped (0/1 rescaling events).
"""

import os

import numpy as np

from mdnet_tf import stepping

COLUMNS = ("step", "time_fs") + stepping.RECORDED
DTYPE = np.dtype([(name, np.float64) for name in COLUMNS])


def records(steps, time_fs, values):
  """A structured log from steps [S], times [S] and recorded values [S, len(RECORDED)]."""
  out = np.zeros(len(steps), DTYPE)
  out["step"], out["time_fs"] = steps, time_fs
  for k, name in enumerate(stepping.RECORDED):
    out[name] = np.asarray(values)[:, k]
  return out


def start(path, dt_fs, propagator, ensemble):
  """Creates (truncates) the log with its header."""
  with open(path, "w") as f:
    f.write("# " + " ".join(COLUMNS) + f"\n# dt_fs={dt_fs:g} propagator={propagator} "
            f"ensemble={ensemble} units=real\n")


def append(path, log):
  """Appends a structured log's rows and syncs them to disk."""
  with open(path, "a") as f:
    for row in log:
      f.write(f"{int(row['step'])} {row['time_fs']:g} "
              + " ".join(f"{row[name]:.10g}" for name in stepping.RECORDED) + "\n")
    f.flush()
    os.fsync(f.fileno())


def read(path):
  """The log at `path` as a structured array (no rows: length 0)."""
  with open(path) as f:
    rows = [line.split() for line in f if line.strip() and not line.startswith("#")]
  values = np.array(rows, np.float64).reshape(-1, len(COLUMNS))
  out = np.zeros(len(values), DTYPE)
  for k, name in enumerate(COLUMNS):
    out[name] = values[:, k]
  return out
