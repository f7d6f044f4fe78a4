"""Models: graph construction, message passing (TF-native and DGL), MDNet, baselines."""


def build(config, seed=0):
  """The model named by config.model ('mdnet' or 'egnn') with fresh weights."""
  from mdnet_tf.models import egnn, mdnet  # pylint: disable=import-outside-toplevel
  builders = {"mdnet": mdnet.MDNet, "egnn": egnn.EGNN}
  if config.model not in builders:
    raise ValueError(f"unknown model {config.model!r}; known: {sorted(builders)}")
  return builders[config.model](config, seed=seed)
