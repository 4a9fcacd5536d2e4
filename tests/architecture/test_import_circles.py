"""No import circle in Carnet (issue 16): no two modules importing each other, directly or
around a loop, deferred and ``TYPE_CHECKING`` imports included.

A circle hides which module is the kernel and which its client; a deferred import that breaks one
at run time still ties the two for whoever reads or moves them. The graph is grimp's, the one
import-linter checks the layers with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grimp

Imports = Callable[[str], Iterable[str]]


def circles(modules: Iterable[str], imports: Imports) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(modules):
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = []
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        work.append((root, sorted(imports(root))))
        while work:
            module, pending = work[-1]
            if pending:
                imported = pending.pop()
                if imported not in index:
                    index[imported] = low[imported] = counter
                    counter += 1
                    stack.append(imported)
                    on_stack.add(imported)
                    work.append((imported, sorted(imports(imported))))
                elif imported in on_stack:
                    low[module] = min(low[module], index[imported])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def test_carnet_has_no_import_circle() -> None:
    graph = grimp.build_graph("carnet")
    modules = [m for m in graph.modules if m.startswith("carnet.")]

    def imports(module: str) -> set[str]:
        return {m for m in graph.find_modules_directly_imported_by(module) if m in modules}

    assert circles(modules, imports) == []


def test_a_planted_circle_is_found() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert circles(edges, lambda module: edges.get(module, set())) == [["a", "b", "c"]]
    assert circles({"x": {"y"}, "y": set()}, lambda m: {"x": {"y"}}.get(m, set())) == []
