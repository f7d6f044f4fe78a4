"""Figures: Figure 2 (RDF, MSD, temperature, energy), error against cost and
Table 2 (cost per simulated fs, scaling). PNGs are written atomically.

Inputs are the dicts of the studies and benchmarks (their JSON files), read
by name, like reporting.py's tables.
"""

import numpy as np

from mdnet_tf import io_utils
from mdnet_tf import reporting


def _pyplot():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def _save(fig, path, plt):
  fig.tight_layout()
  with io_utils.atomic_path(path) as tmp:
    fig.savefig(tmp, dpi=110, format="png")
  plt.close(fig)


def figure2(result, system, path, variants=("nve", "rescale", "nvt")):
  """Figure 2 (RDF, MSD) plus temperature and total energy of the roll-outs."""
  plt = _pyplot()
  entry = result[system]
  ref = entry["lammps"]
  fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
  (ax_rdf, ax_msd), (ax_t, ax_e) = axes
  ax_rdf.plot(ref["rdf"]["r_A"], ref["rdf"]["g"], "k-", lw=2.5, label="LAMMPS 1 fs")
  ax_msd.plot(np.array(ref["msd"]["time_fs"]) / 1000, ref["msd"]["msd_A2"], "k-", lw=2.5,
              label="LAMMPS 1 fs")
  models = reporting.by_dt(entry["models"])
  colors = dict(zip(models, plt.cm.viridis(np.linspace(0, 0.9, len(models)))))
  styles = {"nve": "-", "rescale": "--", "nvt": ":", "tailor": "-."}
  for name, vs in models.items():
    for variant in variants:
      m = vs.get(variant)
      if not m:
        continue
      label = f"{name} {variant}"
      if "rdf" not in m:   # failed: its temperature and energy up to the failure
        t = np.array(m["thermo_time_fs"]) / 1000
        ax_t.plot(t, m["thermo_temperature_K"], styles[variant], color=colors[name], lw=1,
                  label=f"{label} (failed)")
        ax_t.plot(t[-1], m["thermo_temperature_K"][-1], "kx", ms=10)
        ax_e.plot(t, m["thermo_total_per_atom"], styles[variant], color=colors[name], lw=1)
        ax_e.plot(t[-1], m["thermo_total_per_atom"][-1], "kx", ms=10)
        continue
      nve_failed = "rdf" not in vs.get("nve", {})
      if variant == "nve" or (variant == "rescale" and nve_failed):
        tag = name if variant == "nve" else f"{name} rescaled (NVE failed)"
        ax_rdf.plot(m["rdf"]["r_A"], m["rdf"]["g"], styles[variant], color=colors[name],
                    lw=1.2, label=tag)
        ax_msd.plot(np.array(m["msd"]["time_fs"]) / 1000, m["msd"]["msd_A2"], styles[variant],
                    color=colors[name], lw=1.2, label=tag)
      if "thermo_time_fs" in m:
        t = np.array(m["thermo_time_fs"]) / 1000
        ax_t.plot(t, m["thermo_temperature_K"], styles[variant], color=colors[name],
                  lw=1, label=label)
        if variant != "nvt":
          ax_e.plot(t, m["thermo_total_per_atom"], styles[variant], color=colors[name],
                    lw=1, label=label)
  ax_rdf.set(xlabel="r [Å]", ylabel="g(r)", title=f"RDF ({entry['num_atoms']} atoms, NVE roll-outs)")
  ax_msd.set(xlabel="t [ps]", ylabel="MSD [Å²]", title="MSD against the first frame")
  ax_t.set(xlabel="t [ps]", ylabel="T [K]", title="temperature (— NVE, -- rescaled, : CSVR)")
  ax_e.set(xlabel="t [ps]", ylabel="E_total / N [kcal/mol]",
           title="total energy per atom (— NVE, -- rescaled; x = failure)")
  ax_e.set_ylim(ax_e.get_ylim()[0], min(ax_e.get_ylim()[1], -0.7))
  for ax in (ax_rdf, ax_msd):
    ax.legend(fontsize=8)
  ax_t.legend(fontsize=6, ncol=2)
  _save(fig, path, plt)


def error_cost(r, path):
  """One-step and roll-out error against wall time per simulated ps."""
  plt = _pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
  for ax, key, title, where in (
      (axes[0], "one_step_rmse_A", "one-step error", "center right"),
      (axes[1], "rollout_rmse_A", f"error after {r['horizon_fs']:g} fs", "lower right")):
    for name, rows, color in (("Verlet", reporting.by_dt(r["verlet"]), "tab:blue"),
                              (r.get("learned_label", "MDNet"), reporting.by_dt(r["mdnet"]),
                               "tab:red")):
      shown = [v for v in rows.values() if v[key] is not None and v[key] >= 1e-8]
      ax.loglog([v["s_per_ps"] for v in shown], [v[key] for v in shown], "o-", color=color,
                label=name)
      for dt, v in rows.items():
        if v[key] is None:
          continue
        if "stable" in v and not v["stable"]:
          ax.plot(v["s_per_ps"], v[key], "x", color="k", ms=12)
        ax.annotate(f"{dt} fs", (v["s_per_ps"], v[key]), fontsize=8,
                    textcoords="offset points", xytext=(4, 4))
    tiny = {dt: v[key] for dt, v in r["verlet"].items() if v[key] is not None and v[key] < 1e-8}
    if tiny:   # Verlet at 1 fs is the reference's own algorithm: round-off, off the axis
      ax.set_ylim(bottom=1e-8)
      ax.text(0.02, 0.02, "below the axis: " + ", ".join(
          f"Verlet {dt} fs {e:.0e} Å" for dt, e in tiny.items()) + " (the reference's algorithm)",
              transform=ax.transAxes, fontsize=7)
    ax.axvline(r["lammps_1fs_serial_s_per_ps"], color="gray", ls="--",
               label="LAMMPS 1 fs (reference), 1 core")
    ax.set(xlabel="wall seconds per simulated ps (this machine)", ylabel="position RMSE [Å]",
           title=title + " (x = Verlet unstable in NVE)")
    ax.legend(loc=where)
  _save(fig, path, plt)


def table2(result, path):
  """Cost per simulated fs of every method, and the step's scaling with N."""
  plt = _pyplot()
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
  rows = result["per_fs"]
  names = list(rows)
  ax1.barh(names, [rows[n] for n in names], color="tab:blue")
  ax1.set_xscale("log")
  ax1.set_xlabel("wall seconds per simulated fs (lower is better)")
  ax1.set_title(f"{result['num_atoms']} atoms, {result['machine']}")
  sc = result["scaling"]
  n = np.array([r["num_atoms"] for r in sc])
  ax2.loglog(n, [r["step_s"] for r in sc], "o-", label="MDNet step, graph mode")
  ax2.loglog(n, [r["step_xla_s"] for r in sc], "^-", label="MDNet step, XLA")
  ax2.loglog(n, [r["neighbors_xla_s"] for r in sc], "s--", label="neighbor search + graph (XLA)")
  ax2.loglog(n, sc[0]["step_s"] * n / n[0], "k:", label="linear")
  ax2.set(xlabel="atoms", ylabel="seconds", title="scaling")
  ax2.legend()
  _save(fig, path, plt)
