"""Prometheus metrics with TF Serving's names (prometheus_client does the format).

TF Serving exports `/tensorflow/serving/request_count` (labels model_name,
status) and `/tensorflow/serving/request_latency` (labels model_name, API,
entrypoint; microseconds) as `:tensorflow:serving:...`. prometheus_client
writes a counter's samples with the `_total` suffix of the current exposition
format, so the count appears as `:tensorflow:serving:request_count_total`.
"""

import time

import prometheus_client

_LATENCY_BUCKETS_US = tuple(10.0 * 1.8 ** k for k in range(33))   # 10 µs ... ~1.5e9 µs


class Metrics:
  """Request counts by model and status, latency histogram by model and API."""

  def __init__(self):
    self.registry = prometheus_client.CollectorRegistry()
    self.requests = prometheus_client.Counter(
        ":tensorflow:serving:request_count", "Number of requests by model and status.",
        ["model_name", "status"], registry=self.registry)
    self.latency = prometheus_client.Histogram(
        ":tensorflow:serving:request_latency", "Request latency in microseconds.",
        ["model_name", "API", "entrypoint"], buckets=_LATENCY_BUCKETS_US,
        registry=self.registry)

  def observe(self, model_name, api, entrypoint, status, started):
    """Counts one finished request; `started` is its time.perf_counter()."""
    self.requests.labels(model_name, status).inc()
    self.latency.labels(model_name, api, entrypoint).observe(
        (time.perf_counter() - started) * 1e6)

  def exposition(self):
    """(body bytes, content type) of the Prometheus text format."""
    return prometheus_client.generate_latest(self.registry), prometheus_client.CONTENT_TYPE_LATEST
