"""Dependency graphs between Syncs (`dependsOn`), keyed "namespace/name".

A Sync waits for the Syncs it depends on to be Ready. A cycle would make every Sync in it wait
for ever, so it is reported up front, as the path that closes the loop (`a -> b -> a`), which
tells the user which `dependsOn` to remove. Orders are deterministic (ties broken by name) so
runs and their logs are reproducible.

Edges map a node to the nodes it depends on. A node that only appears as a dependency (a Sync
that does not exist, or lives elsewhere) is a leaf here; whether it exists is the caller's
question, not the graph's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class CycleError(ValueError):
    """The graph has a cycle; `cycle` is the path, first node repeated at the end."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__("dependency cycle: " + " -> ".join(cycle))
        self.cycle = cycle


def _nodes(edges: Mapping[str, Sequence[str]]) -> list[str]:
    return sorted(set(edges) | {dep for deps in edges.values() for dep in deps})


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A cycle as a path `[a, b, ..., a]`, or None. Iterative DFS (no recursion limit at scale)."""
    done: set[str] = set()
    for root in _nodes(edges):
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(sorted(edges.get(root, ())))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                finished = path.pop()
                on_path.discard(finished)
                done.add(finished)
            elif nxt in on_path:
                return [*path[path.index(nxt) :], nxt]
            elif nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(sorted(edges.get(nxt, ()))))
    return None


def topological_levels(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Nodes in waves: each wave depends only on earlier waves, so a wave can run concurrently.
    Raises CycleError."""
    cycle = find_cycle(edges)
    if cycle:
        raise CycleError(cycle)
    waiting = {node: len(set(edges.get(node, ()))) for node in _nodes(edges)}
    dependents: dict[str, list[str]] = {node: [] for node in waiting}
    for node in waiting:
        for dep in set(edges.get(node, ())):
            dependents[dep].append(node)
    levels: list[list[str]] = []
    wave = sorted(node for node, count in waiting.items() if count == 0)
    while wave:  # Kahn's algorithm, one wave at a time: linear in nodes + edges
        levels.append(wave)
        ready: list[str] = []
        for node in wave:
            for dependent in dependents[node]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)
        wave = sorted(ready)
    return levels


def topological_order(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Every node after all of its dependencies (ties by name). Raises CycleError."""
    return [node for level in topological_levels(edges) for node in level]
