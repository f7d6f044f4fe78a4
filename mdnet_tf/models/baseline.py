"""MDNet's physical baseline: the step its network's output is added to.

config.baseline:
  free_flight  the paper's Eq. 9: Δq = pΔt/m + s_q·net_q, Δp = s_p·net_p, with
               s_q, s_p the RMS of Δq − pΔt/m and Δp on the training pairs.
  verlet       beyond the paper: one velocity-Verlet step of Δt with the
               system's LJ forces, Δq = Δq_V + s_q·net_q, Δp = Δp_V + s_p·net_p,
               with s_q, s_p the RMS of Verlet's one-step error on the training
               pairs (`residual_scales`). The network learns Verlet's error.

Why a Verlet baseline (measured, README "Roll-out-aware training"): the direct
model's roll-out error after 768 fs at 16–32 fs is set by its one-step momentum
error, 2–4× Verlet's, and its errors are not Hamiltonian, so a 40 ps roll-out
heats or cools. Verlet's own error is a small phase error of a symplectic map;
a network that starts from it (its last layer's output is scaled by Verlet's
error, not by the whole step) only has to correct that, and is Verlet exactly
where it predicts zero.

Cost: the forces at the start come from the model's own graph (every pair
within r_c); the forces at the end need the pairs at the new positions, found
by partition.pairs, whose size is dynamic: a Verlet-baseline model runs in
graph or eager mode, not under XLA (callers refuse that with an InputError).

Shapes and units: positions [N, 3] Å, momenta [N, 3] g/mol·Å/fs, box [3] Å,
forces kcal/mol/Å.
"""

import numpy as np
import tensorflow as tf

from mdnet_tf import errors
from mdnet_tf import integrate
from mdnet_tf import partition
from mdnet_tf import potentials
from mdnet_tf import units

FREE_FLIGHT = "free_flight"
VERLET = "verlet"
BASELINES = (FREE_FLIGHT, VERLET)


def check(name, model="mdnet"):
  """Refuses an unknown baseline, or one on a family other than MDNet."""
  if name not in BASELINES:
    raise errors.InputError(f"baseline must be one of {BASELINES}, got {name!r}")
  if name != FREE_FLIGHT and model != "mdnet":
    raise errors.InputError(f"--baseline={name} is an option of --model=mdnet, not {model}")


def runs_under_xla(config):
  """Whether a model with this config compiles under XLA (no dynamic pair search)."""
  return getattr(config, "baseline", FREE_FLIGHT) == FREE_FLIGHT


def forces_at(positions, box, lj):
  """LJ forces [N, 3] at `positions`, over the pairs found there (graph/eager mode)."""
  i, j = partition.pairs(tf.stop_gradient(positions), box, lj.cutoff)
  return potentials.pair_forces(positions, box, i, j, lj)


def graph_forces(graph, ops, edge_displacements, num_atoms, lj):
  """LJ forces [N, 3] over a model graph's forward edges (padded slots contribute 0).

  graph, ops: a models.graph Graph with its message-passing module (or a DGL
  graph with dgl_ops); the graph holds every pair within r_c = lj.cutoff.
  edge_displacements: [E, 3] Å, q_center − q_other of the forward edges, as
  ops.forward_edge_differences gives them (the model computes them once).
  """
  d = edge_displacements
  r2 = tf.reduce_sum(d * d, axis=-1)
  f = potentials.pair_force_over_r(r2, (r2 > 0) & (r2 < lj.cutoff ** 2), lj)[:, None] * d
  return ops.sum_at_center(graph, tf.concat([f, -f], 0), num_atoms)


def verlet_delta(positions, momenta, box, forces, dt_fs, mass, lj):
  """(Δq, Δp) [N, 3] of one velocity-Verlet step of dt_fs from the state whose
  forces are `forces`, computed as displacements (no q′ − q cancellation):
  Δq = (p + ½FΔt)Δt/m, Δp = ½(F + F′)Δt with F′ the forces at q + Δq."""
  half = integrate.half_kick(momenta, forces, dt_fs)
  dq = half * (dt_fs / mass)
  end = forces_at(positions + dq, tf.cast(box, positions.dtype), lj)
  dp = (0.5 * dt_fs * units.FORCE_TO_ACCEL) * (forces + end)
  return dq, dp


def residual_scales(pairs, mass, lj, max_frames=32):
  """(s_q Å, s_p g/mol·Å/fs): the RMS component of the true step minus one
  float64 Verlet step, over the first `max_frames` of a FramePairs split."""
  sq_q, sq_p = [], []
  for k in range(min(len(pairs), max_frames)):
    q = tf.constant(pairs.positions[k], tf.float64)
    p = tf.constant(pairs.momenta[k], tf.float64)
    box = tf.constant(pairs.box[k], tf.float64)
    dq, dp = verlet_delta(q, p, box, forces_at(q, box, lj), pairs.dt_fs, mass, lj)
    sq_q.append(np.mean(np.square(pairs.next_positions[k] - pairs.positions[k] - dq.numpy())))
    sq_p.append(np.mean(np.square(pairs.next_momenta[k] - pairs.momenta[k] - dp.numpy())))
  return float(np.sqrt(np.mean(sq_q))), float(np.sqrt(np.mean(sq_p)))
