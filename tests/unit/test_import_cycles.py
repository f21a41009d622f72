"""No module of ferry imports another that imports it back, directly or through others.

The import graph is read from the source with :mod:`ast`: every ``import`` counts, at module level or
inside a function (a deferred import only hides a cycle from the interpreter, not from a reader), and
importing ``ferry.a.b`` also runs ``ferry/a/__init__.py``. A cycle is a strongly connected component of
more than one module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


def module_names(root: Path = SRC / "ferry") -> dict[str, Path]:
    """``ferry.x.y`` → its file, for every module and package of the source tree."""
    names = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The ferry modules ``name`` imports, with the packages whose ``__init__`` those imports run."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known)
    edges = set()
    for target in targets:
        parts = target.split(".")
        edges.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return {e for e in edges if e in known and e != name}


def import_graph() -> dict[str, set[str]]:
    known = module_names()
    return {name: imported(name, path, known) for name, path in known.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_deferred_and_relative_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "ferry"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from ferry.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from .. import a\n")
    (pkg / "c.py").write_text("import ferry.a\n")
    known = module_names(pkg)
    graph = {name: imported(name, path, known) for name, path in known.items()}
    assert cycles(graph) == [["ferry.a", "ferry.sub.b"]]
    assert graph["ferry.c"] == {"ferry", "ferry.a"}


# The one cycle left is cli/main.py ↔ the cli command modules (they import ``app`` back from main); the
# CLI restructure of issue 9 moves ``app`` into a module of its own. Remove this mark when that is merged.
@pytest.mark.xfail(strict=True, reason="cli/main.py <-> cli command modules cycle, fixed by the CLI restructure")
def test_no_module_imports_one_that_imports_it_back() -> None:
    assert cycles(import_graph()) == []
