"""The package's structure: imports only downward, short functions, a lean core."""

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).parent.parent / "autolrs_jax"
MAX_BODY_LINES = 80


def module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def local_imports(path: pathlib.Path) -> set[str]:
  """The ``autolrs_jax`` modules a file depends on.

  ``from package import submodule`` depends on the submodule, not on the
  package's ``__init__``.
  """
  modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
  names = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names |= {a.name for a in node.names}
    elif isinstance(node, ast.ImportFrom) and node.module:
      submodules = {f"{node.module}.{a.name}" for a in node.names} & modules
      names |= submodules or {node.module}
  return {n for n in names if n in modules and n != "autolrs_jax"}


def import_graph() -> dict[str, set[str]]:
  return {module_name(p): local_imports(p) - {module_name(p)}
          for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
  """A cycle of the directed graph as a path that returns to its start, or None."""
  done, path = set(), []

  def visit(node):
    if node in path:
      return path[path.index(node):] + [node]
    if node in done:
      return None
    path.append(node)
    for child in sorted(graph.get(node, ())):
      if cycle := visit(child):
        return cycle
    path.pop()
    done.add(node)
    return None

  for node in sorted(graph):
    if cycle := visit(node):
      return cycle
  return None


def test_the_cycle_finder_finds_planted_cycles():
  assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
  assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_imports_a_module_that_imports_it_back():
  graph = import_graph()
  assert graph["autolrs_jax._readers"] >= {"autolrs_jax._autolrs", "autolrs_jax._exptest"}
  assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def body_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
  """Lines of a function's body, its docstring excluded."""
  body = fn.body
  if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
      and isinstance(body[0].value.value, str)):
    body = body[1:]
  if not body:
    return 0
  return body[-1].end_lineno - body[0].lineno + 1


def test_no_function_body_is_longer_than_80_lines():
  long = []
  for path in PACKAGE.rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if body_lines(node) > MAX_BODY_LINES:
          long.append(f"{path.name}:{node.name} ({body_lines(node)} lines)")
  assert not long, long


def test_importing_the_library_needs_no_flax():
  code = ("import sys, autolrs_jax, autolrs_jax.schedules, autolrs_jax.ensemble; "
          "print('flax' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"
