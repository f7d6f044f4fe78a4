"""The model server's configuration, in TensorFlow Serving's own formats.

* `--model_config_file`: a `ModelServerConfig` text proto
  (tensorflow_serving/config/model_server_config.proto), e.g.

      model_config_list {
        config { name: "mdnet_dt16" base_path: "/models/mdnet_dt16"
                 model_platform: "tensorflow"
                 model_version_policy { latest { num_versions: 1 } } }
        config { name: "mdnet_dt128" base_path: "/models/mdnet_dt128"
                 model_platform: "tensorflow"
                 model_version_policy { specific { versions: 1 versions: 2 } } }
      }

  The version policy is latest (default, num_versions 1), all, or specific.
* `--monitoring_config_file`: a `MonitoringConfig` text proto,
  `prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }`.
  The PyPI tensorflow-serving-api package does not ship that message, so it is
  built here with the field names and numbers of
  tensorflow_serving/config/monitoring_config.proto.
"""

from typing import NamedTuple

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

DEFAULT_METRICS_PATH = "/monitoring/prometheus/metrics"


class ConfigError(ValueError):
  """A configuration file that cannot be used (names the file)."""


def model_configs(config_file=None, name=None, base_path=None):
  """[ModelConfig] from a ModelServerConfig text file, or the one model of
  --model_name/--model_base_path."""
  if config_file is None:
    if not name or not base_path:
      raise ConfigError("give --model_config_file, or --model_name and --model_base_path")
    config = model_server_config_pb2.ModelConfig(name=name, base_path=base_path,
                                                 model_platform="tensorflow")
    return [config]
  try:
    with open(config_file) as f:
      text = f.read()
    server_config = text_format.Parse(text, model_server_config_pb2.ModelServerConfig())
  except (OSError, text_format.ParseError) as e:
    raise ConfigError(f"{config_file}: {e}") from e
  configs = list(server_config.model_config_list.config)
  if not configs:
    raise ConfigError(f"{config_file}: model_config_list holds no model")
  names = [c.name for c in configs]
  for c in configs:
    if not c.name or not c.base_path:
      raise ConfigError(f"{config_file}: every config needs name and base_path")
    if c.model_platform not in ("", "tensorflow"):
      raise ConfigError(f"{config_file}: model {c.name!r}: platform {c.model_platform!r} is "
                        f"not served here (tensorflow only)")
    if names.count(c.name) > 1:
      raise ConfigError(f"{config_file}: model name {c.name!r} appears twice")
  return configs


def wanted_versions(config, available):
  """The versions a ModelConfig's version policy serves, out of `available`."""
  available = sorted(available)
  policy = config.model_version_policy
  kind = policy.WhichOneof("policy_choice")
  if kind == "all":
    return available
  if kind == "specific":
    return [v for v in available if v in set(policy.specific.versions)]
  count = policy.latest.num_versions if kind == "latest" and policy.latest.num_versions else 1
  return available[-count:]


def _monitoring_message():
  file_proto = descriptor_pb2.FileDescriptorProto(
      name="mdnet_serving_monitoring_config.proto", package="tensorflow.serving",
      syntax="proto3")
  prom = file_proto.message_type.add(name="PrometheusConfig")
  prom.field.add(name="enable", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
                 label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
  prom.field.add(name="path", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                 label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
  mon = file_proto.message_type.add(name="MonitoringConfig")
  mon.field.add(name="prometheus_config", number=1,
                type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                type_name=".tensorflow.serving.PrometheusConfig",
                label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
  pool = descriptor_pool.DescriptorPool()
  pool.Add(file_proto)
  return message_factory.GetMessageClass(
      pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig"))


class Monitoring(NamedTuple):
  prometheus: bool
  path: str


def monitoring(config_file=None):
  """Monitoring from a MonitoringConfig text file (None: metrics off)."""
  if config_file is None:
    return Monitoring(False, DEFAULT_METRICS_PATH)
  try:
    with open(config_file) as f:
      message = text_format.Parse(f.read(), _monitoring_message()())
  except (OSError, text_format.ParseError) as e:
    raise ConfigError(f"{config_file}: {e}") from e
  prom = message.prometheus_config
  return Monitoring(bool(prom.enable), prom.path or DEFAULT_METRICS_PATH)
