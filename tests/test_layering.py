"""The package's import graph keeps its floors: no module imports one above it,
there are no cycles, flags and DGL stay where they belong (house style rules 6,
7, 10). Read from the source with `ast`, function-level imports included."""

import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "mdnet_tf")

# Lowest floor first. A module may import modules of its own floor or below.
FLOORS = [
    ["errors", "units", "io_utils", "paper", "quiet"],
    ["space", "extxyz", "data.dump", "data.presets"],
    ["partition", "potentials", "integrate", "data.dataset", "data.lammps_driver", "models.mlp"],
    ["capacity", "data.states", "data.generate", "data.ingest", "models.graph",
     "models.segment_ops",
     "models.compact_ops",
     "models.dgl_ops", "models.normalization", "models.baseline"],
    ["models.mdnet", "models.egnn", "models.simple", "models.tailoring", "models.symplectic",
     "models", "verlet",
     "stepping", "analysis", "multistep"],
    ["models.io", "thermo", "training", "run_config"],
    ["propagators", "rollout", "evaluation"],
    ["signatures", "benchmarking"],
    ["profiling"],
    ["exporting", "studies"],
    ["reporting", "plots"],
]
FLOOR = {name: k for k, names in enumerate(FLOORS) for name in names}


def _modules():
  out = {}
  for folder, _, files in os.walk(ROOT):
    for f in files:
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].replace(os.sep, ".")
        rel = rel[:-len(".__init__")] if rel.endswith("__init__") else rel
        out["" if rel == "__init__" else rel] = os.path.join(folder, f)
  return out


def _imports(path, known):
  """(imported mdnet_tf modules, other top-level packages) of one file."""
  ours, others = set(), set()
  for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
    if isinstance(node, ast.ImportFrom) and node.module:
      if node.module == "mdnet_tf" or node.module.startswith("mdnet_tf."):
        base = node.module[len("mdnet_tf."):] if node.module != "mdnet_tf" else ""
        for alias in node.names:
          full = f"{base}.{alias.name}".lstrip(".")
          ours.add(full if full in known else base)
      else:
        others.add(node.module)
    elif isinstance(node, ast.Import):
      for alias in node.names:
        others.add(alias.name)
  return ours - {""}, others


def _upward(graph):
  """(module, dependency) pairs where the dependency sits on a higher floor."""
  return [(m, d) for m, (deps, _) in graph.items() if m in FLOOR
          for d in sorted(deps) if d in FLOOR and FLOOR[d] > FLOOR[m]]


@pytest.fixture(scope="module")
def graph():
  modules = _modules()
  return {name: _imports(path, modules) for name, path in modules.items()}


def test_every_module_has_a_floor(graph):
  missing = sorted(set(graph) - set(FLOOR) - {"", "data"})
  assert not missing, f"place these modules on a floor in FLOORS: {missing}"


def test_no_module_imports_one_above_it(graph):
  upward = _upward(graph)
  assert not upward, f"imports from a higher floor: {upward}"


def test_no_import_cycles(graph):
  state = {}

  def visit(node, path):
    state[node] = "open"
    for dep in graph.get(node, (set(), set()))[0]:
      if state.get(dep) == "open":
        raise AssertionError(f"import cycle: {' -> '.join(path + [dep])}")
      if dep not in state:
        visit(dep, path + [dep])
    state[node] = "done"

  for name in graph:
    if name not in state:
      visit(name, [name])


def test_flags_serving_and_dgl_stay_outside_the_library(graph):
  for name, (_, others) in graph.items():
    assert "absl.flags" not in others and not any(o.startswith("absl.flags") for o in others), name
    assert not any(o.split(".")[0] in ("serving", "launch") for o in others), name
    if name != "models.dgl_ops":
      assert "dgl" not in {o.split(".")[0] for o in others}, name


def test_the_layering_check_catches_an_upward_import(graph):
  """The checker itself: a planted import of a higher floor is reported."""
  planted = dict(graph)
  planted["space"] = ({"rollout"}, set())
  assert _upward(planted) == [("space", "rollout")]
