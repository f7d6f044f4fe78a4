"""Training MDNet: prepared graphs, loss, Adam with exponential decay, checkpoints.

Loss (paper Section 4): mean squared error of coordinates and momenta, each
normalized by its standard deviation:
  L = mean((Δq̂ − Δq)²) / s_q² + mean((Δp̂ − Δp)²) / s_p²
with s_q the RMS of Δq − pΔt/m (the part the network predicts; the free flight
pΔt/m is exact) and s_p the RMS of Δp, both fixed from the training set.

Learning rate: 5e-3 · 0.8^(step / decay_steps) (paper: Adam, start 5e-3, decay
rate 0.8). The paper does not state the interval; by default it is 1/20 of the
run, so the rate falls by 0.8^20 ≈ 1/87 over any run length.

Resuming: the step counter, model, optimizer and best validation error live in
one checkpoint; the pair order of epoch k is a permutation seeded by (seed, k),
so a resumed run sees the same pairs in the same order as an uninterrupted one.
"""

import dataclasses
import math
import os
import time
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf
import tqdm

from mdnet_tf import errors
from mdnet_tf import io_utils
from mdnet_tf import models
from mdnet_tf import multistep
from mdnet_tf import partition
from mdnet_tf.models import compact_ops
from mdnet_tf.models import graph as graph_lib
from mdnet_tf.models import mlp
from mdnet_tf.models import segment_ops
from mdnet_tf.models import symplectic


class Prepared(NamedTuple):
  """A split ready for training: float32 tensors stacked over P pairs.

  positions, momenta, delta_positions, delta_momenta: [P, N, 3];
  box: [P, 3]; graphs: Graph with [P, 2E] fields (common capacity E).
  """
  positions: tf.Tensor
  momenta: tf.Tensor
  box: tf.Tensor
  delta_positions: tf.Tensor
  delta_momenta: tf.Tensor
  graphs: graph_lib.Graph

  def __len__(self):
    return int(self.positions.shape[0])

  def pair(self, k):
    """(positions, momenta, box, graph, Δq, Δp) of pair k."""
    g = graph_lib.Graph(*[x[k] for x in self.graphs])
    return (self.positions[k], self.momenta[k], self.box[k], g,
            self.delta_positions[k], self.delta_momenta[k])

  def batch(self, indices):
    """The pairs at `indices`, stacked: the same tuple with a leading [B] axis."""
    take = lambda x: tf.gather(x, indices)
    return (take(self.positions), take(self.momenta), take(self.box),
            graph_lib.Graph(*[take(x) for x in self.graphs]),
            take(self.delta_positions), take(self.delta_momenta))


def prepare(pairs, cutoff, max_pairs=None):
  """Builds graphs (cell list, exact capacity) for every pair of a FramePairs."""
  count = len(pairs) if max_pairs is None else min(max_pairs, len(pairs))
  q32 = pairs.positions[:count].astype(np.float32)
  specs = [partition.allocate(q32[k], pairs.box[k], cutoff)[0] for k in range(count)]
  spec = partition.NeighborSpec(cutoff, 0.0, max(s.max_neighbors for s in specs),
                                max(s.cell_capacity for s in specs))
  graphs, totals = [], []
  for k in range(count):
    q, box = tf.constant(q32[k]), tf.constant(pairs.box[k], tf.float32)
    nl = partition.build(q, box, spec)
    partition.raise_if_overflow(nl, spec, "training neighbor list")
    totals.append(int(tf.reduce_sum(nl.counts)) // 2)
    graphs.append((q, box, nl))
  capacity = max(totals)
  built = [graph_lib.from_neighbors(q, box, nl, cutoff, capacity) for q, box, nl in graphs]
  if any(bool(g.overflow) for g in built):
    raise errors.NeighborListOverflowError("training graph overflow (should not happen)")
  stacked = graph_lib.Graph(*[tf.stack(x) for x in zip(*built)])
  f32 = lambda x: tf.constant(np.asarray(x[:count], np.float32))
  return Prepared(f32(pairs.positions), f32(pairs.momenta), f32(pairs.box),
                  f32(pairs.next_positions[:count] - pairs.positions[:count]),
                  f32(pairs.next_momenta[:count] - pairs.momenta[:count]), stacked)


loss_terms = multistep.loss_terms   # the one-step loss (the paper's)


@dataclasses.dataclass
class TrainOptions:
  steps: int
  seed: int = 0
  learning_rate: float = 5e-3
  decay_rate: float = 0.8
  decay_steps: Optional[int] = None       # default: steps // 20
  checkpoint_every: int = 100
  graph_backend: str = "xla"              # 'xla' (segment ops, XLA), 'dgl' (eager) or
                                          # 'graph' (compact graphs, multi-step sequences)
  validate_every: Optional[int] = None    # default: once per epoch
  batch_size: int = 1                     # global batch (paper: 1)
  noise: float = 0.0                      # 'graph': start-state noise, units of (s_q, s_p)
  momentum_weight: float = 1.0            # weight of the momentum term (1 = the paper's loss)


class Trainer:
  """Owns the model, optimizer, checkpoints and TensorBoard writer of one run.

  With a tf.distribute `strategy` (XLA path only), build the model and the
  Trainer inside `strategy.scope()`; each step splits the global batch across
  replicas and sums the gradients, which gives the single-device update.
  With graph_backend 'graph', `train` is a multistep.PreparedSequences and the
  loss is the k-step unrolled loss (multistep.py; k = 1 is the paper's loss);
  validation stays one-step on prepared pairs.
  """

  def __init__(self, model, train, validation, options, workdir, strategy=None):
    self.model, self.train, self.validation = model, train, validation
    self.options = options
    self.workdir = workdir
    self.strategy = strategy
    replicas = strategy.num_replicas_in_sync if strategy else 1
    if options.batch_size % replicas or options.batch_size > len(train):
      raise errors.InputError(
          f"batch_size {options.batch_size} must be a multiple of the {replicas} "
          f"replica(s) and at most the {len(train)} training pairs")
    if strategy is not None and options.graph_backend != "xla":
      raise errors.InputError("distributed training needs --graph_backend=xla "
                              "(DGL's TensorFlow backend is eager-only)")
    decay_steps = options.decay_steps or max(1, options.steps // 20)
    self.schedule = tf.keras.optimizers.schedules.ExponentialDecay(
        options.learning_rate, decay_steps, options.decay_rate)
    self.optimizer = tf.keras.optimizers.Adam(learning_rate=self.schedule)
    # Create Adam's moments now: Keras 3 creates them lazily, and a checkpoint
    # restored before they exist would silently leave them at zero.
    self.optimizer.build(model.trainable_variables)
    self.step = tf.Variable(0, dtype=tf.int64, name="step")
    self.best = tf.Variable(math.inf, dtype=tf.float64, name="best_validation_loss")
    self.checkpoint = tf.train.Checkpoint(model=model, optimizer=self.optimizer,
                                          step=self.step, best=self.best)
    # Multi-worker: only the chief writes where users look; the others must
    # still save (collective ops) but into scratch directories.
    self.chief = chief = strategy is None or _is_chief(strategy)
    where = workdir if chief else os.path.join(workdir, f"worker_scratch_{_task_id(strategy)}")
    self.manager = tf.train.CheckpointManager(
        self.checkpoint, os.path.join(where, "checkpoints"), max_to_keep=3)
    self.best_manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model), os.path.join(where, "best"), max_to_keep=1)
    self.writer = tf.summary.create_file_writer(os.path.join(where, "tensorboard"))
    self._ops = segment_ops
    self._dgl_graphs = None
    if options.graph_backend == "dgl":
      from mdnet_tf.models import dgl_ops  # pylint: disable=import-outside-toplevel
      self._ops = dgl_ops
      n = int(train.positions.shape[1])
      self._dgl_graphs = [dgl_ops.to_dgl(train.pair(k)[3], n) for k in range(len(train))]
    elif options.graph_backend == "xla":
      self._grad_fn = tf.function(self._loss_and_grads, jit_compile=True)
      self._step_fn = tf.function(self._xla_step)
    elif options.graph_backend == "graph":
      if not isinstance(train, multistep.PreparedSequences):
        raise errors.InputError("graph_backend 'graph' trains on multistep.PreparedSequences")
      self._step_fn = tf.function(self._sequence_step)
    else:
      raise errors.InputError(f"graph_backend must be 'dgl', 'xla' or 'graph', got "
                              f"{options.graph_backend!r}")
    self.symplectic = model.config.model == symplectic.FAMILY
    if self.symplectic and (options.graph_backend != "graph" or train.num_steps != 1
                            or options.noise):
      raise errors.InputError(f"{symplectic.FAMILY} trains with --graph_backend=graph, "
                              f"--rollout_steps=1 and no noise (its loss needs no solve)")
    xla = models.runs_under_xla(model.config)
    if not xla and options.graph_backend == "xla":
      raise errors.InputError(f"{model.config.name} searches pairs in its step (baseline "
                              f"{model.config.baseline!r}): train it with --graph_backend="
                              f"graph or dgl, not xla")
    self._eval_fn = predictor(model)

  def restore(self):
    """Restores the latest checkpoint if any; returns the step to start from."""
    if self.manager.latest_checkpoint:
      self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
    return int(self.step.numpy())

  def _loss_and_grads(self, batch, graphs=None):
    """Σ over the (local) batch of loss / global batch, its terms and gradients."""
    q, p, box, graph, dq, dp = batch
    scale = 1.0 / self.options.batch_size
    variables = self.model.trainable_variables
    with tf.GradientTape() as tape:
      total = [tf.constant(0.0)] * 3
      for k in range(q.shape[0]):      # static: unrolled under XLA
        g = graphs[k] if graphs is not None else graph_lib.Graph(*[x[k] for x in graph])
        dq_pred, dp_pred = models.forward(self.model, q[k], p[k], box[k], g, self._ops)
        terms = loss_terms(self.model.config, dq_pred, dp_pred, dq[k], dp[k],
                           self.options.momentum_weight)
        total = [a + scale * b for a, b in zip(total, terms)]
    return total, tape.gradient(total[0], variables)

  def _sequence_loss_and_grads(self, batch, step):
    """The unrolled k-step loss of a batch of sequences, its terms and gradients."""
    q, p, box, dq, dp = batch
    scale = 1.0 / self.options.batch_size
    forward = lambda *args: models.forward(self.model, *args)
    with tf.GradientTape() as tape:
      total = [tf.constant(0.0)] * 3
      for k in range(q.shape[0]):
        seed = tf.stack([tf.cast(step, tf.int32), tf.constant(k)])
        if self.symplectic:
          flow = symplectic.teacher_forced(self.model, q[k], p[k], dq[k][0], dp[k][0], box[k])
          terms = loss_terms(self.model.config, *flow, dq[k][0], dp[k][0],
                             self.options.momentum_weight)
        else:
          terms = multistep.unrolled_terms(forward, self.model.config, q[k], p[k], box[k],
                                           dq[k], dp[k], self.options.noise, seed,
                                           self.options.momentum_weight)
        total = [a + scale * b for a, b in zip(total, terms)]
    # ZERO: a variable that cannot move the loss (the generating function's
    # additive constant) gets a zero gradient, not None.
    return total, tape.gradient(total[0], self.model.trainable_variables,
                                unconnected_gradients=tf.UnconnectedGradients.ZERO)

  def _sequence_step(self, batch, step):
    return self._apply(*self._sequence_loss_and_grads(batch, step))

  def _apply(self, terms, grads):
    self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
    return terms

  def _xla_step(self, batch):
    if self.strategy is None:
      return self._apply(*self._grad_fn(batch))
    per_replica = self.strategy.run(lambda b: self._apply(*self._grad_fn(b)),
                                    args=(batch,))
    return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, t, axis=None)
            for t in per_replica]

  def _distribute(self, batch):
    """Splits a global batch along its leading axis, one slice per replica."""
    if self.strategy is None:
      return batch
    local = self.options.batch_size // self.strategy.num_replicas_in_sync

    def slice_for(ctx):
      start = ctx.replica_id_in_sync_group * local
      return tf.nest.map_structure(lambda x: x[start:start + local], batch)

    return self.strategy.experimental_distribute_values_from_function(slice_for)

  def order(self, epoch):
    """Pair order of an epoch (a permutation seeded by seed and epoch)."""
    return np.random.default_rng([self.options.seed, epoch]).permutation(len(self.train))

  @property
  def steps_per_epoch(self):
    return len(self.train) // self.options.batch_size

  def batch_indices(self, step):
    """Training-pair indices of a step (deterministic: resumable anywhere)."""
    epoch, within = divmod(step, self.steps_per_epoch)
    b = self.options.batch_size
    return self.order(epoch)[within * b:(within + 1) * b]

  def one_step(self, step):
    indices = self.batch_indices(step)
    batch = self.train.batch(indices)
    if self.options.graph_backend == "graph":
      return self._step_fn(batch, tf.constant(step, tf.int64))
    if self._dgl_graphs is not None:
      terms, grads = self._loss_and_grads(batch, [self._dgl_graphs[i] for i in indices])
      return self._apply(terms, grads)
    return self._step_fn(self._distribute(batch))

  def validate(self, data=None):
    """Mean loss and RMSEs (positions Å, velocities Å/fs) over a prepared split."""
    data = self.validation if data is None else data
    return evaluate(self._eval_fn, data, self.model.config, self.options.momentum_weight)

  def fit(self, progress=True, stop_after=None):
    """Trains until options.steps (or `stop_after` more steps); returns a summary."""
    start_step = self.restore()
    total = self.options.steps
    end = total if stop_after is None else min(total, start_step + stop_after)
    per_epoch = self.steps_per_epoch
    validate_every = self.options.validate_every or per_epoch
    losses = []
    started = time.time()
    bar = tqdm.tqdm(total=total, initial=start_step, desc="train", unit="step",
                    disable=not progress, dynamic_ncols=True)
    step = start_step
    while step < end:
      epoch = step // per_epoch
      loss, lq, lp = self.one_step(step)
      step += 1
      self.step.assign(step)
      losses.append(float(loss))
      with self.writer.as_default(step=step):
        tf.summary.scalar("train/loss", loss)
        tf.summary.scalar("train/loss_positions", lq)
        tf.summary.scalar("train/loss_momenta", lp)
        tf.summary.scalar("train/learning_rate", self.schedule(step - 1))
      bar.update(1)
      bar.set_postfix(loss=f"{float(loss):.3g}", epoch=epoch)
      if step % validate_every == 0 or step == total:
        metrics = self.validate()
        with self.writer.as_default(step=step):
          for k, v in metrics.items():
            tf.summary.scalar(f"validation/{k}", v)
        if metrics["loss"] < float(self.best.numpy()):
          self.best.assign(metrics["loss"])
          self.best_manager.save(checkpoint_number=step)
      if step % self.options.checkpoint_every == 0 or step == end:
        self.manager.save(checkpoint_number=step)
    bar.close()
    self.writer.flush()
    return {"start_step": start_step, "end_step": step, "losses": losses,
            "seconds": time.time() - started, "best_validation_loss": float(self.best.numpy())}


def slurm_resolver(port_base):
  """tf.distribute's SlurmClusterResolver for the `srun` step this process runs
  in (workers on port_base, port_base + 1, ... of each node)."""
  gpus = len(tf.config.list_physical_devices("GPU"))
  # The resolver hands out GPUs per task and divides by that number; on CPU
  # nodes give it a nominal one per task (auto_set_gpu=False: it sets nothing).
  return tf.distribute.cluster_resolver.SlurmClusterResolver(
      port_base=port_base, gpus_per_node=gpus or 1024, gpus_per_task=None if gpus else 1,
      auto_set_gpu=False)


def _is_chief(strategy):
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not resolver.cluster_spec().as_dict():
    return True
  return resolver.task_type in ("chief", None) or (
      resolver.task_type == "worker" and resolver.task_id == 0
      and "chief" not in resolver.cluster_spec().as_dict())


def _task_id(strategy):
  resolver = getattr(strategy, "cluster_resolver", None)
  return 0 if resolver is None else resolver.task_id


def predictor(model, precision=tf.float32):
  """The one-step prediction that validation and Table 1 score, compiled as
  inference runs it: (q, p, box, padded graph) -> (Δq, Δp), or (Δq, Δp,
  converged) for a solved symplectic step (graph mode: its solve searches
  pairs). A model that searches pairs in its step (the Verlet baseline) runs in
  graph mode on the compact pairs of q, as roll-outs do; any other under XLA on
  the prepared padded graph. precision: the matmuls' (mlp.precision)."""
  xla = models.runs_under_xla(model.config)
  cutoff = model.config.cutoff_angstrom

  def predict(q, p, box, graph):
    if model.config.model == symplectic.FAMILY:
      return symplectic.predict(model, q, p, box)
    with mlp.precision(precision):
      if xla:
        return models.forward(model, q, p, box, graph, segment_ops)
      pairs = graph_lib.from_pairs(*partition.pairs(q, box, cutoff))
      return models.forward(model, q, p, box, pairs, compact_ops)

  return tf.function(predict, jit_compile=xla)


def evaluate(predict_fn, data, config, momentum_weight=1.0):
  """Loss and one-step RMSEs of a prediction function over a Prepared split.

  RMSEs are computed on displacements Δq (exact in float64 before the cast),
  so float32 rounding of absolute positions does not enter them. predict_fn
  returns (Δq, Δp), or (Δq, Δp, converged) for an implicit step: then the
  metrics also count the solves that did not converge ("unconverged"; their
  last iterate is scored, so a failing solver shows in the errors too).
  """
  sq_q, sq_v, loss, unconverged = 0.0, 0.0, 0.0, None
  for k in range(len(data)):
    q, p, box, graph, dq, dp = data.pair(k)
    dq_pred, dp_pred, *solved = predict_fn(q, p, box, graph)
    if solved:
      unconverged = (unconverged or 0) + int(not bool(solved[0]))
    loss += float(loss_terms(config, dq_pred, dp_pred, dq, dp, momentum_weight)[0])
    sq_q += float(tf.reduce_mean(tf.square(dq_pred - dq)))
    sq_v += float(tf.reduce_mean(tf.square((dp_pred - dp) / config.mass_amu)))
  n = max(len(data), 1)
  metrics = {"loss": loss / n, "rmse_positions": math.sqrt(sq_q / n),
             "rmse_velocities": math.sqrt(sq_v / n)}
  if unconverged is not None:
    metrics["unconverged"] = unconverged
  return metrics


def save_config(workdir, config, extra):
  """Writes model_config.json (what inference needs) and run.json atomically."""
  io_utils.write_text(os.path.join(workdir, "model_config.json"), config.dumps() + "\n")
  io_utils.write_json(os.path.join(workdir, "run.json"), extra)
