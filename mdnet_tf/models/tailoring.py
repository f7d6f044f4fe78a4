"""Noether meta-tailoring (SIMPLE Section 3.3; Alet et al. 2021, Noether Networks).

Before predicting, the weights θ take one SGD step on the Noether loss, the
squared change of a conserved quantity g between the input state and the
predicted next state:
  L_N(θ) = ‖g(q + Δq_θ, p + Δp_θ) − g(q, p)‖²,   θ' = θ − α ∇_θ L_N(θ)
and the prediction is made with θ'. In training the task loss is taken at θ'
and differentiated through the inner step (second-order gradients), so the
network learns weights that tailor well; at prediction time the same step runs
again on each query state. Works for every model here (MDNet, EGNN, SIMPLE):
no published system combined MDNet with tailoring before.

Quantities g (normalized to O(1)):
  temperature — T(p) / 100 K (fixed);
  energy — (kinetic + LJ potential) per atom in kcal/mol (fixed; pairs taken
    from the r_c graph of the input state, which the small step barely changes);
  learned — mean over atoms of a three-layer sigmoid MLP of the atom's scaled
    momentum (4 outputs), trained through the outer loss. It sees momenta only,
    so it can discover kinetic invariants, not the potential energy.
"""

import tensorflow as tf

from mdnet_tf import integrate
from mdnet_tf import potentials
from mdnet_tf.models import mlp

KINDS = ("none", "temperature", "energy", "learned")


def make_quantity_net(seed=0):
  """The learned quantity predictor g_φ: per-atom [6] -> [4], sigmoid."""
  return mlp.MLP(6, [32, 32, 4], "sigmoid", seed=seed, name="g_phi")


def _potential_per_atom(q, p, box, graph, ops, num_atoms, lj):
  """LJ energy per atom over the graph's directed edges (each pair twice)."""
  d, _ = ops.edge_differences(graph, q, p, box)
  r2 = tf.reduce_sum(d * d, -1)
  within = (r2 > 0) & (r2 < lj.cutoff ** 2)
  pair = potentials.pair_energy(r2, within, lj)
  return 0.5 * tf.reduce_sum(pair) / tf.cast(num_atoms, q.dtype)


def quantity(model, q, p, box, graph, ops):
  """The conserved quantity vector g(q, p) of the model's tailoring kind."""
  c = model.config
  n = tf.shape(q)[0]
  if c.tailor == "temperature":
    return tf.reshape(integrate.temperature(p, c.mass_amu) / 100.0, [1])
  if c.tailor == "energy":
    lj = c.lj()
    kinetic = integrate.kinetic_energy(p, c.mass_amu) / tf.cast(n, q.dtype)
    return tf.reshape(kinetic + _potential_per_atom(q, p, box, graph, ops, n, lj), [1])
  if c.tailor == "learned":
    scaled = p / c.stats.momentum_scale
    return tf.reduce_mean(model.quantity_net(tf.concat([scaled, scaled ** 2], -1)), 0)
  raise ValueError(f"tailor must be one of {KINDS}, got {c.tailor!r}")


def forward(model, q, p, box, graph, ops):
  """Δq, Δp of `model`, tailored by one Noether step if config.tailor != 'none'."""
  c = model.config
  if c.tailor == "none":
    return model(q, p, box, graph, ops)
  g_vars = getattr(model, "quantity_net", None)
  g_refs = {v.ref() for v in g_vars.trainable_variables} if g_vars is not None else set()
  theta = [v for v in model.trainable_variables if v.ref() not in g_refs]
  with tf.GradientTape() as inner:
    dq, dp = model(q, p, box, graph, ops)
    before = quantity(model, q, p, box, graph, ops)
    after = quantity(model, q + dq, p + dp, box, graph, ops)
    noether = tf.reduce_sum(tf.square(after - before))
  grads = inner.gradient(noether, theta)
  tailored = {v.ref(): v - c.tailor_lr * g for v, g in zip(theta, grads) if g is not None}
  with mlp.substitute(tailored):
    return model(q, p, box, graph, ops)

