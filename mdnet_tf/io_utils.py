"""Atomic writes and checksums: a crash never leaves a half-written file behind."""

import contextlib
import hashlib
import json
import os
import uuid


@contextlib.contextmanager
def atomic_path(path):
  """Yields a temporary path next to `path`; renames it onto `path` on success.

  The temporary file lives in the same directory (so the rename is atomic) and
  is removed if the body raises. It is created with mode 0666 minus the
  process umask, like any file `open` creates.
  """
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f"{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
  os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
  try:
    yield tmp
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_text(path, text):
  """Atomically writes `text` to `path`."""
  with atomic_path(path) as tmp:
    with open(tmp, "w") as f:
      f.write(text)


def write_json(path, obj):
  """Atomically writes `obj` as indented JSON."""
  write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256(path, chunk=1 << 20):
  """Hex SHA-256 of a file."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(chunk), b""):
      h.update(block)
  return h.hexdigest()
