"""MDNet (paper Section 3): Δq, Δp = MDNet[q(t), p(t), Δt].

For every directed edge (center i, neighbor j, r_ij < r_c):
  e_ij = [1/r_ij, (q_i − q_j)/r_ij², p_i − p_j]            (Eq. 6, m1 = 7)
  m_ij = φ_e(e_ij)                                         (m2 numbers)
  L_i = M_i E_iᵀ = Σ_j m_ij e_ijᵀ                           (Eq. 7, m2 × 7)
For every undirected edge, in its forward direction only (graph.py):
  Δq_ij, Δp_ij = φ_o(L_i, e_ij);  Δq_ji = −Δq_ij, Δp_ji = −Δp_ij   (Eq. 8)
  Δp_i = Σ_j Δp_ij,  Δq_i = Σ_j Δq_ij + p_i/m Δt               (Eq. 9)
so Σ_i Δp_i = 0: total momentum is conserved. With config.baseline = "verlet"
(beyond the paper; models/baseline.py) the sums are added to one velocity-Verlet
step instead of the free flight p_i/m Δt (Verlet's pair forces also sum to 0).

φ_e: 4 layers (7 → 40 → 40 → 40 → m2); φ_o: 4 layers (7·m2 + 7 → 200 → 200 →
200 → 6), ReLU; the matmuls run in float32 or, under mlp.precision(bfloat16),
in bfloat16 (features, aggregation and outputs stay float32). m2 = 32: L_i then has 224 numbers, about the width of φ_o's
hidden layers, so φ_o's input is not a bottleneck, while φ_e stays cheap.

Normalization (the network never sees raw units): e_ij's three groups are
scaled by fixed training-set statistics (1/r also centred), L_i is divided by
the mean neighbor count, and the outputs are multiplied by the RMS of the
targets Δq − pΔt/m and Δp (of Verlet's error, with the Verlet baseline). The
first layer of φ_o is split as W_L·L_i (once per atom) + W_e·e_ij (per edge),
which computes the same function.

Message passing goes through `ops`: segment_ops (TF-native, padded graph,
XLA), compact_ops (TF-native, compact graph, graph mode: export and the fast
in-process path) or dgl_ops (DGL, eager); the graph is passed on each call,
never stored.
"""

import dataclasses
import json

import numpy as np
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import potentials
from mdnet_tf import units
from mdnet_tf.models import baseline
from mdnet_tf.models import mlp
from mdnet_tf.models import normalization

NUM_EDGE_FEATURES = 7
REVERSE = (1.0,) + (-1.0,) * 6    # e_ji from e_ij: 1/r kept, the rest negated


@dataclasses.dataclass(frozen=True)
class MDNetConfig:
  """What a trained model is: its Δt, system and architecture (model_config.json).

  The physics fields come from the training data's manifest: dt_fs (fs),
  cutoff_angstrom (graph radius r_c, Å), mass_amu (g/mol), lj_epsilon
  (kcal/mol) and lj_sigma (Å) of the system's Lennard-Jones potential (configs
  written before these two fields existed were argon, their default). Every
  consumer of a model (roll-outs, Verlet baselines, tailoring, export) reads
  them from here.
  """
  dt_fs: float
  stats: normalization.NormStats
  cutoff_angstrom: float = units.ARGON_CUTOFF
  mass_amu: float = units.ARGON_MASS
  lj_epsilon: float = units.ARGON_EPSILON
  lj_sigma: float = units.ARGON_SIGMA
  unit_style: str = units.UNIT_STYLE
  m2: int = 32
  edge_hidden: int = 40
  out_hidden: int = 200
  num_layers: int = 4
  model: str = "mdnet"
  tailor: str = "none"          # Noether tailoring: none | temperature | energy | learned
  tailor_lr: float = 1e-3       # inner SGD step size of tailoring
  # mdnet_symplectic only: width, Å, over which the baseline LJ force is switched
  # smoothly to zero before r_c (0: truncated, as in models trained before the
  # switch existed; see potentials.pair_forces).
  lj_switch_angstrom: float = 0.0
  # mdnet_symplectic only: radial channels of δS's many-body (embedded-atom)
  # term (0: pair and kinetic terms only, as in models trained before it
  # existed; see symplectic.GeneratingFunction.environment).
  density_channels: int = 0
  # mdnet_symplectic only: width of the two hidden layers of δS's MLPs (64 in
  # models trained before it was configurable).
  symplectic_width: int = 64
  # mdnet_symplectic only: "midpoint" (S of the midpoints, as in models trained
  # before the choice existed) or "composition" (a type-2 half step and its
  # reversed inverse ρA⁻¹ρ; see symplectic._solve_composition) or "splitting"
  # (Verlet substeps around a learned near-identity map; symplectic._solve_splitting).
  generating_function: str = "midpoint"
  # mdnet_symplectic, splitting form only: the Verlet substep of its outer
  # factors V, fs (symplectic.SPLITTING_SUBSTEP for a new run; 0 in the others).
  splitting_substep_fs: float = 0.0
  # mdnet only: the step the network's output is added to (models/baseline.py):
  # "free_flight" (the paper's pΔt/m, as in models trained before the choice
  # existed) or "verlet" (one velocity-Verlet step; the network learns its error).
  baseline: str = "free_flight"

  def to_json(self):
    d = dataclasses.asdict(self)
    d["stats"] = self.stats.to_json()
    return d

  @classmethod
  def from_json(cls, d):
    d = dict(d)
    d["stats"] = normalization.NormStats.from_json(d["stats"])
    return cls(**d)

  def lj(self, shift=False):
    """The system's Lennard-Jones potential (cutoff = the graph radius)."""
    return potentials.LennardJones(self.lj_epsilon, self.lj_sigma, self.cutoff_angstrom, shift)

  @property
  def name(self):
    """A short label of the model: family, tailoring and Δt (e.g. mdnet_dt16)."""
    tailor = "" if self.tailor == "none" else f"_tailor_{self.tailor}"
    return f"{self.model}{tailor}_dt{self.dt_fs:g}"

  def dumps(self):
    return json.dumps(self.to_json(), indent=2, sort_keys=True)

  def check_dt(self, dt_fs):
    """Refuses data of another Δt (one model per Δt, as in the paper)."""
    if abs(float(dt_fs) - self.dt_fs) > 1e-9:
      raise errors.InputError(
          f"this model was trained for Δt = {self.dt_fs:g} fs, the data has "
          f"Δt = {float(dt_fs):g} fs; use the model trained for that Δt")


class MDNet(tf.Module):
  """The MDNet network with its pre- and postprocessing (see module doc)."""

  def __init__(self, config, seed=0, name="mdnet"):
    super().__init__(name=name)
    self.config = config
    c = config
    hidden = c.num_layers - 1
    self.phi_e = mlp.MLP(NUM_EDGE_FEATURES, [c.edge_hidden] * hidden + [c.m2],
                         "relu", seed=seed, name="phi_e")
    self.phi_o = mlp.MLP(c.m2 * NUM_EDGE_FEATURES + NUM_EDGE_FEATURES,
                         [c.out_hidden] * hidden + [6], "relu", seed=seed + 1,
                         name="phi_o")

  def edge_features(self, d, dp):
    """Normalized e_ij [2E, 7] from minimum-image q_i − q_j [2E, 3] and p_i − p_j."""
    s = self.config.stats
    r2 = tf.reduce_sum(d * d, axis=-1, keepdims=True)
    r2 = tf.where(r2 > 0, r2, tf.ones_like(r2))      # padded edges have d = 0
    inv_r = tf.math.rsqrt(r2)
    return tf.concat([(inv_r - s.inv_r_mean) / s.inv_r_std,
                      d / r2 / s.rel_pos_scale, dp / s.rel_mom_scale], axis=-1)

  def __call__(self, positions, momenta, box, graph, ops):
    """Δq [N, 3] Å and Δp [N, 3] g/mol·Å/fs over one Δt.

    Args:
      positions: [N, 3] float32 Å.  momenta: [N, 3] float32 g/mol·Å/fs.
      box: [3] Å.  graph: a Graph (segment_ops) or DGLGraph (dgl_ops).
      ops: segment_ops or dgl_ops module.
    """
    c = self.config
    n = tf.shape(positions)[0]
    # The reverse edge j→i has the same 1/r and negated q_i − q_j, p_i − p_j
    # (negation is exact): features of the forward half, mirrored.
    d_fwd, dp_fwd = ops.forward_edge_differences(graph, positions, momenta, box)  # [E, 3] each
    e_fwd = self.edge_features(d_fwd, dp_fwd)
    e = tf.concat([e_fwd, e_fwd * REVERSE], 0)                      # [2E, 7]
    m = self.phi_e(e)                                               # [2E, m2]
    local = ops.sum_outer_at_center(graph, m, e, n) / c.stats.mean_neighbors  # [N, 7 m2]
    w1 = mlp.value(self.phi_o.weights[0])
    per_atom = mlp.matmul(local, w1[:c.m2 * NUM_EDGE_FEATURES])           # W_L·L_i
    b1 = tf.cast(mlp.value(self.phi_o.biases[0]), per_atom.dtype)
    # MatMul + BiasAdd + Add (+ the ReLU in φ_o): one fused oneDNN call in graph mode.
    pre = (tf.nn.bias_add(mlp.matmul(e_fwd, w1[c.m2 * NUM_EDGE_FEATURES:]), b1)
           + ops.forward_center_values(graph, per_atom))
    out = self.phi_o(pre, first_layer_done=True)                    # [E, 6] float32
    delta = ops.sum_at_center(graph, tf.concat([out, -out], 0), n)  # [N, 6]
    if c.baseline == baseline.VERLET:
      forces = baseline.graph_forces(graph, ops, d_fwd, n, c.lj())
      dq0, dp0 = baseline.verlet_delta(positions, momenta, box, forces, c.dt_fs, c.mass_amu,
                                       c.lj())
    else:
      dq0, dp0 = momenta * (c.dt_fs / c.mass_amu), 0.0
    return delta[:, :3] * c.stats.dq_scale + dq0, delta[:, 3:] * c.stats.dp_scale + dp0


def count_parameters(module):
  return int(sum(np.prod(v.shape) for v in module.trainable_variables))
