"""Numbers published in the MDNet paper (Zheng, Gao & Wang), for comparison.

TABLE1: one-step RMSE on the paper's validation set (4000 argon atoms), as
(positions Å, velocities Å/fs); None where the paper leaves the cell blank.
TABLE2: seconds per step on a Tesla P4 GPU (4000 atoms).
Keys are the paper's method names; our model families map to them by
`family_label` (SIMPLE is not in the paper).
"""

TABLE1 = {
    "Verlet": {16: (8.44e-5, 8.42e-7), 32: (6.68e-4, 6.58e-6), 64: (5.24e-3, 5.74e-5),
               128: (3.88e-2, 1.75e-3)},
    "EGNN": {16: (2.51e-4, 3.13e-5), 32: None, 64: None, 128: (1.34e-2, 1.86e-4)},
    "MDNet": {16: (1.80e-5, 2.32e-6), 32: None, 64: (3.05e-4, 1.22e-5),
              128: (2.29e-3, 5.66e-5)},
}

TABLE2 = {"verlet_1fs_s_per_step": 3.82e-3, "mdnet16_s_per_step": 4.01e-2,
          "mdnet128_s_per_step": 4.03e-2}

# The paper's system: argon, mass g/mol, LJ ε kcal/mol, σ Å, cutoff Å.
SYSTEM = {"mass_amu": 39.948, "epsilon": 0.2374, "sigma": 3.432, "cutoff": 7.0}


def is_paper_system(mass_amu, epsilon, sigma, cutoff):
  """Whether data of this species and potential is comparable with the paper's numbers."""
  ours = {"mass_amu": mass_amu, "epsilon": epsilon, "sigma": sigma, "cutoff": cutoff}
  return all(abs(float(ours[k]) - v) <= 1e-6 * v for k, v in SYSTEM.items())


_LABELS = {"mdnet": "MDNet", "egnn": "EGNN", "simple": "SIMPLE", "mdnet_symplectic": "MDNet-symplectic"}


def family_label(family, tailor="none"):
  """Display name of a model family (with its tailoring), e.g. MDNet, MDNet+tailor:energy."""
  label = _LABELS.get(family, family)
  return label if tailor == "none" else f"{label}+tailor:{tailor}"


def table1_row(family, dt_fs):
  """The paper's (positions, velocities) RMSE for a family at Δt, or None
  (also None for families the paper does not report, e.g. SIMPLE)."""
  return TABLE1.get(_LABELS.get(family, family), {}).get(int(dt_fs))
