"""EGNN baseline (Satorras, Hoogeboom & Welling 2021), velocity-aware variant.

4 E(n)-equivariant layers (EGCL), 64 neurons, Swish, on MDNet's graph
(periodic, r < r_c). Per layer l, for directed edges (i center, j neighbor):
  m_ij = φ_e(h_i, h_j, |d_ij|², |d⁰_ij|²)        d_ij = x_i − x_j (minimum image)
  v_i ← φ_v(h_i) v⁰_i + Σ_j d_ij φ_x(m_ij) / n̄      (velocity variant)
  x_i ← x_i + v_i
  h_i ← h_i + φ_h(h_i, Σ_j m_ij / n̄)              (not after the last layer)
Coordinates are in Å and v⁰_i = (p_i/m) Δt is the free-flight displacement, so
φ_v ≡ 1 reproduces free flight. Outputs: Δq_i = x_i − x_i⁰ and
Δp_i = s_p Σ_j d_ij φ_p(m_ij) / n̄ from the last layer (equivariant; unlike
MDNet, total momentum is not conserved). h⁰_i embeds the speed |p_i|
(normalized). As in the EGNN reference code, the last layers of φ_x and φ_p
start with weights scaled by 1e-3, so initial updates are small.
"""

import tensorflow as tf

from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import mlp

HIDDEN = 64
LAYERS = 4


class EGNN(tf.Module):
  """Velocity-aware EGNN predicting Δq [N, 3] Å and Δp [N, 3] g/mol·Å/fs."""

  def __init__(self, config, seed=0, name="egnn"):
    super().__init__(name=name)
    self.config = config
    h = HIDDEN
    self.embed = mlp.MLP(1, [h], "swish", seed=seed, name="embed")
    self.layers = []
    for k in range(LAYERS):
      s = seed + 10 * (k + 1)
      layer = {
          "phi_e": mlp.MLP(2 * h + 2, [h, h], "swish", seed=s, name=f"phi_e{k}"),
          "phi_x": mlp.MLP(h, [h, 1], "swish", seed=s + 1, name=f"phi_x{k}"),
          "phi_v": mlp.MLP(h, [h, 1], "swish", seed=s + 2, name=f"phi_v{k}"),
      }
      if k < LAYERS - 1:   # the last layer's h would feed nothing
        layer["phi_h"] = mlp.MLP(2 * h, [h, h], "swish", seed=s + 3, name=f"phi_h{k}")
      self.layers.append(layer)
    self.phi_p = mlp.MLP(h, [h, 1], "swish", seed=seed + 99, name="phi_p")
    for net in [layer["phi_x"] for layer in self.layers] + [self.phi_p]:
      net.weights[-1].assign(net.weights[-1] * 1e-3)

  def __call__(self, positions, momenta, box, graph, ops):
    c = self.config
    s = c.stats
    n = tf.shape(positions)[0]
    nbar = s.mean_neighbors
    d0, _ = ops.edge_differences(graph, positions, momenta, box)
    v0 = momenta * (c.dt_fs / c.mass_amu)             # free flight, Å
    speed = tf.norm(momenta, axis=-1, keepdims=True) / s.momentum_scale
    h = self.embed(speed)
    x_shift = tf.zeros_like(positions)                 # x − x⁰, coordinate units
    r0 = tf.reduce_sum(d0 * d0, -1, keepdims=True)
    for k, layer in enumerate(self.layers):
      shift_c = ops.center_values(graph, x_shift)
      d = d0 + shift_c - graph_lib.other_values(ops, graph, x_shift)
      r2 = tf.reduce_sum(d * d, -1, keepdims=True)
      m = layer["phi_e"](tf.concat([ops.center_values(graph, h),
                                    graph_lib.other_values(ops, graph, h), r2, r0], -1))
      v = (layer["phi_v"](h) * v0
           + ops.sum_at_center(graph, d * layer["phi_x"](m), n) / nbar)
      x_shift = x_shift + v
      if "phi_h" in layer:
        h = h + layer["phi_h"](tf.concat([h, ops.sum_at_center(graph, m, n) / nbar], -1))
      else:
        dp = ops.sum_at_center(graph, d * self.phi_p(m), n) / nbar
    return x_shift, dp * s.dp_scale
