"""No module of ferry imports another that imports it back, directly or through others.

The import graph comes from grimp (import-linter's engine), which reads the source without running it:
imports inside functions and under ``TYPE_CHECKING`` count too, since a deferred import only hides a
cycle from the interpreter, not from a reader.
"""

from __future__ import annotations

import grimp


def imports_back(package: str = "ferry") -> list[str]:
    """Every direct import ``a -> b`` of ``package`` where ``b`` leads back to ``a``, with that way back."""
    graph = grimp.build_graph(package, cache_dir=None)
    found = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                found.append(f"{importer} -> {' -> '.join(back)}")
    return found


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert imports_back() == []
