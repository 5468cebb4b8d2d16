import itertools

import pytest

from kubectl_gitops.core.graph import CycleError, find_cycle, topological_levels, topological_order

CHAIN = {"apps/web": ["infra/db", "infra/crds"], "infra/db": ["infra/crds"], "infra/crds": []}


def test_no_cycle():
    assert find_cycle(CHAIN) is None
    assert find_cycle({}) is None


def test_self_cycle():
    assert find_cycle({"a/x": ["a/x"]}) == ["a/x", "a/x"]


def test_cycle_path_is_returned():
    edges = {"a/one": ["a/two"], "a/two": ["a/three"], "a/three": ["a/one"], "a/zero": ["a/one"]}
    cycle = find_cycle(edges)
    assert cycle is not None
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"a/one", "a/two", "a/three"}
    for node, nxt in itertools.pairwise(cycle):
        assert nxt in edges[node]


def test_topological_order_puts_dependencies_first():
    order = topological_order(CHAIN)
    assert order == ["infra/crds", "infra/db", "apps/web"]


def test_levels_group_independent_nodes_and_include_undeclared_leaves():
    edges = {"a/app1": ["a/base"], "a/app2": ["a/base"], "a/base": ["ext/missing"]}
    assert topological_levels(edges) == [["ext/missing"], ["a/base"], ["a/app1", "a/app2"]]


def test_order_raises_on_cycle():
    with pytest.raises(CycleError) as err:
        topological_order({"a/x": ["a/y"], "a/y": ["a/x"]})
    assert err.value.cycle in (["a/x", "a/y", "a/x"], ["a/y", "a/x", "a/y"])
    assert "a/x -> a/y" in str(err.value) or "a/y -> a/x" in str(err.value)


def test_deep_chain_does_not_hit_recursion_limit():
    edges = {f"n/{i:05d}": [f"n/{i + 1:05d}"] for i in range(5000)}
    assert find_cycle(edges) is None
    assert topological_order(edges)[0] == "n/05000"
    edges["n/05000"] = ["n/00000"]
    assert len(find_cycle(edges) or []) == 5002
