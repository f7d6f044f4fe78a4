"""Exceptions with messages that say what was wrong, the value, and the fix."""


class MDNetError(Exception):
  """Base class of every error mdnet_tf raises on purpose."""


class InputError(MDNetError, ValueError):
  """Malformed input: wrong shape, non-finite values, a box too small, ..."""


class NeighborListOverflowError(MDNetError, RuntimeError):
  """A neighbor list (or cell list) had more entries than its capacity."""


class MissingDependencyError(MDNetError, ImportError):
  """An optional part of the stack (LAMMPS, DGL, freud, ...) is not importable."""


class DumpFormatError(MDNetError, ValueError):
  """A LAMMPS dump file could not be parsed; the message names file and line."""


class DatasetError(MDNetError, ValueError):
  """A dataset directory is incomplete, corrupt or inconsistent with its manifest."""
