"""The layers, read from the source's imports (lazy ones inside functions included):

  environments -> inner_agents -> harness -> lpg -> meta_train.py / meta_test.py

A module may import its own layer and those to its left, never one to its right, and no
chain of first-party imports comes back to where it started."""

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("environments", "inner_agents", "harness", "lpg", "scripts")
SCRIPTS = ("meta_train", "meta_test")


def _modules() -> dict[str, str]:
  """{dotted module name: path} of every first-party module."""
  found = {name: os.path.join(ROOT, f"{name}.py") for name in SCRIPTS}
  for package in LAYERS[:-1]:
    for dirpath, _, files in os.walk(os.path.join(ROOT, package)):
      for file in files:
        if file.endswith(".py"):
          rel = os.path.relpath(os.path.join(dirpath, file), ROOT)[: -len(".py")]
          parts = rel.split(os.sep)
          found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = os.path.join(dirpath, file)
  return found


def _imports(path: str, modules: dict[str, str]) -> set[str]:
  """First-party modules a file imports (`from pkg import mod` counts as pkg.mod)."""
  with open(path) as f:
    tree = ast.parse(f.read())
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [
        f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names
      ]
    else:
      continue
    out |= {n for n in names if n.split(".")[0] in (*LAYERS, *SCRIPTS)}
  return out


def _layer(module: str) -> int:
  top = module.split(".")[0]
  return LAYERS.index("scripts" if top in SCRIPTS else top)


def _graph() -> dict[str, set[str]]:
  modules = _modules()
  return {m: {i for i in _imports(p, modules) if i in modules and i != m} for m, p in modules.items()}


def test_no_module_imports_a_layer_above_its_own():
  upward = [
    f"{m} ({LAYERS[_layer(m)]}) imports {i} ({LAYERS[_layer(i)]})"
    for m, imports in _graph().items()
    for i in sorted(imports)
    if _layer(i) > _layer(m)
  ]
  assert not upward, "\n".join(upward)


def test_no_import_cycles():
  graph = _graph()
  index, low, stack, on_stack, cycles = {}, {}, [], set(), []

  def visit(v):  # Tarjan's strongly connected components
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        cycles.append(sorted(component))

  for v in graph:
    if v not in index:
      visit(v)
  assert not cycles, cycles


def test_the_check_sees_the_layers():
  graph = _graph()
  assert len(graph) > 40 and "inner_agents.actor_critic.agent" in graph
  assert "inner_agents.rules.base" in graph["inner_agents.actor_critic.agent"]
  assert "harness.evaluation" in graph["lpg.program"]  # lpg uses the harness below it
  assert _layer("lpg.rule") > _layer("harness.runner") > _layer("inner_agents.rules.registry")
