"""Run by test_training.py in a fresh process: 2 logical CPUs, mirrored vs single.

Usage: python distributed_check.py <smoke_dir> <workdir>; prints JSON with the
losses and final weights of both runs.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from mdnet_tf import training  # noqa: E402
from mdnet_tf.data import dataset  # noqa: E402
from mdnet_tf.models import mdnet  # noqa: E402
from mdnet_tf.models import normalization  # noqa: E402


def run(smoke_dir, workdir, strategy):
  pairs = dataset.load_pairs(smoke_dir, "train", 16)
  stats = normalization.NormStats.from_pairs(pairs, 39.948, 7.0)
  config = mdnet.MDNetConfig(dt_fs=16.0, stats=stats)
  data = training.prepare(pairs, 7.0)
  options = training.TrainOptions(steps=4, batch_size=2, checkpoint_every=100)
  scope = strategy.scope() if strategy else tf.init_scope()
  with scope:
    trainer = training.Trainer(mdnet.MDNet(config), data, data, options, workdir,
                               strategy=strategy)
  losses = trainer.fit(progress=False)["losses"]
  weights = [v.numpy().ravel()[:50].tolist() for v in trainer.model.trainable_variables]
  return losses, weights


def main():
  smoke_dir, workdir = sys.argv[1:3]
  devices = [d.name for d in tf.config.list_logical_devices("CPU")]
  mirrored = tf.distribute.MirroredStrategy(devices)
  single = run(smoke_dir, os.path.join(workdir, "single"), None)
  multi = run(smoke_dir, os.path.join(workdir, "mirrored"), mirrored)
  print(json.dumps({"devices": devices, "replicas": mirrored.num_replicas_in_sync,
                    "single": single, "mirrored": multi}))


if __name__ == "__main__":
  main()
