"""A TensorFlow Serving compatible model server for exported MDNet SavedModels.

  python serving/model_server.py --port=8500 --rest_api_port=8501 \
      --model_config_file=serving/models.config --monitoring_config_file=serving/monitoring.config
  python serving/model_server.py --port=8500 --model_name=mdnet --model_base_path=models/mdnet

The real `tensorflow_model_server` cannot be installed from the registries this
project reaches, so this server speaks its contract with its own parts: the gRPC
services of `tensorflow_serving.apis` (PredictionService: Predict,
GetModelMetadata; ModelService: GetModelStatus) and the standard gRPC health
service, the REST API (/v1/models/...), the ModelServerConfig and
MonitoringConfig text formats, and the real server's flag names. A client
written for one works with the other.

As the real server it serves the versions each model's version policy asks for
(latest / all / specific), picks up new versions while running, re-reads the
model config file every --model_config_file_poll_wait_seconds, replays
assets.extra/tf_serving_warmup_requests before a version goes live, retries a
failing load --max_num_load_retries times, answers outputs in float_val and
keeps TensorFlow's own status codes. Beyond it: a request can never hold the
server — `num_steps` above --max_num_steps is refused with INVALID_ARGUMENT,
and a roll-out whose client cancelled or whose deadline (gRPC deadline, or
--rest_api_timeout_in_ms) passed is cancelled inside TensorFlow within one step.
It binds 127.0.0.1 unless --host says otherwise.
"""

import concurrent.futures
import time

from mdnet_tf import quiet  # before TensorFlow is imported

quiet.install()

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402
import grpc  # noqa: E402
from grpc_health.v1 import health  # noqa: E402
from grpc_health.v1 import health_pb2  # noqa: E402
from grpc_health.v1 import health_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import model_service_pb2_grpc  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

from serving import config as config_lib  # noqa: E402
from serving import grpc_api  # noqa: E402
from serving import manager as manager_lib  # noqa: E402
from serving import metrics as metrics_lib  # noqa: E402
from serving import rest_api  # noqa: E402

_PORT = flags.DEFINE_integer("port", 8500, "gRPC port.")
_REST_PORT = flags.DEFINE_integer("rest_api_port", 0, "REST port (0: no REST API).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to bind (0.0.0.0 for all).")
_NAME = flags.DEFINE_string("model_name", "default", "Name of the one model of "
                            "--model_base_path (without --model_config_file).")
_BASE = flags.DEFINE_string("model_base_path", None, "Directory of versions of one model.")
_CONFIG = flags.DEFINE_string("model_config_file", None, "ModelServerConfig text proto: "
                              "several models, each with base path and version policy.")
_CONFIG_POLL = flags.DEFINE_float("model_config_file_poll_wait_seconds", 0.0,
                                  "Re-read --model_config_file this often (0: never).")
_POLL = flags.DEFINE_float("file_system_poll_wait_seconds", 2.0,
                           "How often to look for new versions.")
_MONITORING = flags.DEFINE_string("monitoring_config_file", None, "MonitoringConfig text "
                                  "proto; prometheus_config metrics on the REST port.")
_REST_TIMEOUT = flags.DEFINE_integer("rest_api_timeout_in_ms", 30000,
                                     "REST requests are cancelled after this long.")
_RETRIES = flags.DEFINE_integer("max_num_load_retries", 5, "Retries of a failing load.")
_RETRY_US = flags.DEFINE_integer("load_retry_interval_micros", 60 * 1000 * 1000,
                                 "Wait between load retries, µs.")
_MAX_STEPS = flags.DEFINE_integer("max_num_steps", 100000, "Largest num_steps of one "
                                  "roll-out request (larger ones: INVALID_ARGUMENT).")
_MAX_MB = flags.DEFINE_integer("max_message_mb", 2047, "Largest gRPC message, MiB.")
_WORKERS = flags.DEFINE_integer("workers", 4, "Concurrent request threads.")


class ModelServer:
  """The running server: gRPC (+ health), optional REST and metrics."""

  def __init__(self, core, grpc_server, health_servicer, rest=None):
    self.core, self.grpc_server, self.health, self.rest = core, grpc_server, health_servicer, rest

  def update_health(self):
    status = (health_pb2.HealthCheckResponse.SERVING if self.core.all_available()
              else health_pb2.HealthCheckResponse.NOT_SERVING)
    for service in ("", "tensorflow.serving.PredictionService"):
      self.health.set(service, status)

  def stop(self):
    self.core.stop()
    if self.rest is not None:
      self.rest.stop()
    self.grpc_server.stop(grace=2).wait()


def serve(configs_loader, host="127.0.0.1", port=8500, rest_port=0, poll_seconds=2.0,
          config_poll_seconds=0.0, monitoring=config_lib.Monitoring(False, ""),
          rest_timeout_ms=30000, max_retries=5, retry_seconds=60.0, max_num_steps=100000,
          max_mb=2047, workers=4, on_change=print):
  """Starts the server (models load before it returns); returns a ModelServer."""
  metrics = metrics_lib.Metrics() if monitoring.prometheus else None
  holder = {}

  def changed(line):
    on_change(line)
    if "server" in holder:
      holder["server"].update_health()

  core = manager_lib.ServerCore(configs_loader, poll_seconds, config_poll_seconds,
                                max_retries, retry_seconds, on_change=changed)
  limit = max_mb * 1024 * 1024
  server = grpc.server(
      concurrent.futures.ThreadPoolExecutor(max_workers=workers),
      options=[("grpc.max_send_message_length", limit),
               ("grpc.max_receive_message_length", limit)])
  prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
      grpc_api.PredictionService(core, metrics, max_num_steps), server)
  model_service_pb2_grpc.add_ModelServiceServicer_to_server(grpc_api.ModelService(core), server)
  health_servicer = health.HealthServicer()
  health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
  if not server.add_insecure_port(f"{host}:{port}"):
    raise OSError(f"cannot bind {host}:{port}")
  rest = None
  if rest_port:
    rest = rest_api.RestServer(core, host, rest_port, rest_timeout_ms, metrics,
                               monitoring.path, max_num_steps)
  server.start()
  holder["server"] = result = ModelServer(core, server, health_servicer, rest)
  result.update_health()
  return result


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  try:
    loader = lambda: config_lib.model_configs(_CONFIG.value, _NAME.value, _BASE.value)
    loader()
    monitoring = config_lib.monitoring(_MONITORING.value)
  except config_lib.ConfigError as e:
    raise SystemExit(f"model_server: {e}") from None
  if monitoring.prometheus and not _REST_PORT.value:
    raise SystemExit("model_server: metrics are served on the REST port: give --rest_api_port")
  server = serve(loader, _HOST.value, _PORT.value, _REST_PORT.value, _POLL.value,
                 _CONFIG_POLL.value, monitoring, _REST_TIMEOUT.value, _RETRIES.value,
                 _RETRY_US.value / 1e6, _MAX_STEPS.value, _MAX_MB.value, _WORKERS.value)
  names = ", ".join(sorted(server.core.managers))
  rest = f", REST on {_HOST.value}:{_REST_PORT.value}" if _REST_PORT.value else ""
  metrics = f", metrics at {monitoring.path}" if monitoring.prometheus else ""
  print(f"model server for {names}: gRPC on {_HOST.value}:{_PORT.value}{rest}{metrics}",
        flush=True)
  try:
    while True:
      time.sleep(3600)
  except KeyboardInterrupt:
    pass
  finally:
    server.stop()


if __name__ == "__main__":
  app.run(main)
