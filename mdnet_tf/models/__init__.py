"""Models: graph construction, message passing (TF-native and DGL), MDNet, baselines."""


def build(config, seed=0):
  """The model named by config.model (mdnet | egnn | simple | mdnet_symplectic)
  with fresh weights.

  With config.tailor == 'learned' the model also carries the learned quantity
  predictor g_φ (trained and checkpointed with it).
  """
  # pylint: disable=import-outside-toplevel
  from mdnet_tf.models import egnn, mdnet, simple, symplectic, tailoring
  builders = {"mdnet": mdnet.MDNet, "egnn": egnn.EGNN, "simple": simple.SIMPLE,
              symplectic.FAMILY: symplectic.GeneratingFunction}
  if config.model not in builders:
    raise ValueError(f"unknown model {config.model!r}; known: {sorted(builders)}")
  if config.tailor not in tailoring.KINDS:
    raise ValueError(f"unknown tailor {config.tailor!r}; known: {tailoring.KINDS}")
  model = builders[config.model](config, seed=seed)
  if config.tailor == "learned":
    model.quantity_net = tailoring.make_quantity_net(seed + 1000)
  return model


def forward(model, positions, momenta, box, graph, ops):
  """Δq, Δp of any model, with its Noether tailoring step if it has one."""
  from mdnet_tf.models import tailoring  # pylint: disable=import-outside-toplevel
  return tailoring.forward(model, positions, momenta, box, graph, ops)


def runs_under_xla(config):
  """Whether a model's step compiles under XLA: not the symplectic family (its
  solve searches pairs) nor an MDNet with the Verlet baseline (models/baseline.py)."""
  from mdnet_tf.models import baseline, symplectic  # pylint: disable=import-outside-toplevel
  return config.model != symplectic.FAMILY and baseline.runs_under_xla(config)
