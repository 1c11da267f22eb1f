"""Fail when any scopenet module imports itself back through others (``make lint``; CI).

import-linter's layers forbid cycles *between* layers; this check forbids them everywhere, inside a
service too. The graph comes from grimp (import-linter's engine), which reads every import statement
— imports inside functions included, because they still form a cycle at run time — except those
under ``if TYPE_CHECKING:``, which never run.
"""

from __future__ import annotations

import sys

import grimp


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (the graph has a few hundred modules)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def main() -> int:
    graph = grimp.build_graph("scopenet", exclude_type_checking_imports=True)
    cycles = strongly_connected(graph)
    for members in cycles:
        a, b = members[0], members[1 % len(members)]
        chain = graph.find_shortest_chain(importer=a, imported=b) or ()
        print(f"import cycle of {len(members)} modules: {', '.join(members)}")
        print(f"  e.g. {' -> '.join(chain)}")
    print(f"import cycles: {len(cycles)} among {len(graph.modules)} modules")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
