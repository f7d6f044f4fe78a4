"""Which model versions are loaded: TF Serving's version policies, states, retries.

A `ModelManager` watches one model's base path: the versions its policy wants
(config.wanted_versions) are loaded, warmed up (assets.extra warm-up requests)
and made AVAILABLE; versions no longer wanted are unloaded (END). A version
that fails to load is retried `max_retries` times, `retry_seconds` apart, and
then stays in END with its error, as the real server reports it in
GetModelStatus. `ServerCore` holds all models and re-reads the model config
file every `config_poll_seconds`.
"""

import os
import threading
import time
from typing import Optional

import grpc
from absl import logging

from serving import config as config_lib
from serving import servable

# States of get_model_status.proto's ModelVersionStatus.
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


class VersionState:
  """One version's state, load error (None when fine) and load attempts."""

  def __init__(self, version):
    self.version, self.state, self.error, self.attempts = version, START, None, 0
    self.served: Optional[servable.ServedVersion] = None
    self.next_try = 0.0


class ModelManager:
  """The versions of one model (a ModelConfig), polled from its base path."""

  def __init__(self, model_config, max_retries=5, retry_seconds=1.0, loader=None):
    self.config = model_config
    self.name = model_config.name
    self.max_retries, self.retry_seconds = max_retries, retry_seconds
    self.loader = loader or servable.ServedVersion
    self.versions = {}
    self.lock = threading.Lock()

  def _on_disk(self):
    base = self.config.base_path
    if not os.path.isdir(base):
      return []
    return [int(d) for d in os.listdir(base) if d.isdigit()
            and os.path.exists(os.path.join(base, d, "saved_model.pb"))]

  def poll(self):
    """Loads wanted versions, unloads unwanted ones; returns log lines."""
    wanted = set(config_lib.wanted_versions(self.config, self._on_disk()))
    lines = []
    for version in sorted(wanted):
      with self.lock:
        state = self.versions.setdefault(version, VersionState(version))
      if state.state == AVAILABLE or state.attempts > self.max_retries:
        continue
      if time.time() < state.next_try:
        continue
      state.state, state.attempts = LOADING, state.attempts + 1
      try:
        served = self.loader(os.path.join(self.config.base_path, str(version)), version)
        warmed = served.warm_up()
      except Exception as e:  # any load failure is reported, not raised  # pylint: disable=broad-except
        state.error = f"{type(e).__name__}: {e}"[:2000]
        state.next_try = time.time() + self.retry_seconds
        state.state = END if state.attempts > self.max_retries else START
        logging.error("%s version %d: load attempt %d failed: %s", self.name, version,
                      state.attempts, state.error)
        if state.state == END:
          lines.append(f"{self.name} version {version}: not loaded after "
                       f"{state.attempts} attempts: {state.error}")
        continue
      with self.lock:
        state.served, state.state, state.error = served, AVAILABLE, None
      lines.append(f"serving {self.name} version {version} ({warmed} warm-up requests "
                   f"replayed)")
    with self.lock:
      for version, state in self.versions.items():
        if version not in wanted and state.state == AVAILABLE:
          state.state, state.served = END, None
          lines.append(f"{self.name} version {version} unloaded (no longer in the policy)")
    return lines

  def get(self, version=None):
    """The ServedVersion asked for (None: the highest available), else NOT_FOUND."""
    with self.lock:
      available = {v: s.served for v, s in self.versions.items() if s.state == AVAILABLE}
    if version is None:
      if not available:
        raise servable.ServingError(grpc.StatusCode.NOT_FOUND,
                                    f"Servable not found for request: Latest({self.name})")
      return available[max(available)]
    if version not in available:
      raise servable.ServingError(grpc.StatusCode.NOT_FOUND,
                                  f"Servable not found for request: Specific({self.name}, "
                                  f"{version})")
    return available[version]

  def statuses(self, version=None):
    """[VersionState] of every known version (or the one asked for)."""
    with self.lock:
      states = sorted(self.versions.values(), key=lambda s: s.version)
    if version is not None:
      states = [s for s in states if s.version == version]
      if not states:
        raise servable.ServingError(grpc.StatusCode.NOT_FOUND,
                                    f"Could not find version {version} of model {self.name}")
    return states

  def unload_all(self):
    with self.lock:
      for state in self.versions.values():
        state.state, state.served = END, None


class ServerCore:
  """All served models; polls their base paths and the model config file."""

  def __init__(self, load_configs, poll_seconds=2.0, config_poll_seconds=0.0,
               max_retries=5, retry_seconds=1.0, on_change=print, loader=None):
    """load_configs: () -> [ModelConfig]; loader: (path, version) -> a servable
    (default servable.ServedVersion)."""
    self.load_configs, self.loader = load_configs, loader
    self.poll_seconds, self.config_poll_seconds = poll_seconds, config_poll_seconds
    self.max_retries, self.retry_seconds = max_retries, retry_seconds
    self.on_change = on_change
    self.managers = {}
    self.lock = threading.Lock()
    self._stop = threading.Event()
    self._apply(load_configs())
    self.poll()
    self._threads = [threading.Thread(target=self._loop, args=(poll_seconds, self.poll),
                                      daemon=True)]
    if config_poll_seconds > 0:
      self._threads.append(threading.Thread(
          target=self._loop, args=(config_poll_seconds, self.reload_config), daemon=True))
    for t in self._threads:
      t.start()

  def _apply(self, configs):
    with self.lock:
      old = self.managers
      self.managers = {}
      for c in configs:
        keep = old.get(c.name)
        if keep is not None and keep.config.base_path == c.base_path:
          keep.config = c          # a new version policy applies at the next poll
          self.managers[c.name] = keep
        else:
          self.managers[c.name] = ModelManager(c, self.max_retries, self.retry_seconds,
                                               self.loader)
      for name, manager in old.items():
        if name not in self.managers:
          manager.unload_all()
          self.on_change(f"model {name} removed from the config: unloaded")

  def reload_config(self):
    try:
      self._apply(self.load_configs())
    except config_lib.ConfigError as e:
      logging.error("model config not reloaded: %s", e)

  def poll(self):
    with self.lock:
      managers = list(self.managers.values())
    for manager in managers:
      for line in manager.poll():
        self.on_change(line)

  def _loop(self, seconds, fn):
    while not self._stop.wait(seconds):
      fn()

  def stop(self):
    self._stop.set()

  def manager(self, name):
    with self.lock:
      found = self.managers.get(name)
    if found is None:
      raise servable.ServingError(grpc.StatusCode.NOT_FOUND,
                                  f"Servable not found for request: Latest({name})")
    return found

  def get(self, name, version=None):
    return self.manager(name).get(version)

  def all_available(self):
    with self.lock:
      managers = list(self.managers.values())
    return bool(managers) and all(
        any(s.state == AVAILABLE for s in m.statuses()) for m in managers)
