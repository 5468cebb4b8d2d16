"""Decoding fieldsV1 and finding which owned fields a change touches (kubectl_gitops.core.managed_fields)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.core.managed_fields import (
    MISSING,
    SELF,
    changed_owned,
    decode_fields,
    format_path,
    owned_paths,
    resolve,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "admission"
WEB = '{"name":"web"}'
PORT = '{"containerPort":8080,"protocol":"TCP"}'
CONTAINERS = (("f", "spec"), ("f", "template"), ("f", "spec"), ("f", "containers"))


def deployment() -> dict[str, Any]:
    doc = json.loads((FIXTURES / "deployment_update_kubectl_edit.json").read_text())
    old: dict[str, Any] = doc["request"]["oldObject"]
    return old


def test_decodes_leaves_keys_and_self_markers() -> None:
    paths = decode_fields({
        "f:metadata": {"f:labels": {"f:app": {}}},
        "f:spec": {"f:containers": {f"k:{WEB}": {".": {}, "f:image": {}}}},
        "f:finalizers": {".": {}, 'v:"example.com/cleanup"': {}},
    })
    assert paths == {
        (("f", "metadata"), ("f", "labels"), ("f", "app")),
        (("f", "spec"), ("f", "containers"), ("k", WEB), SELF),
        (("f", "spec"), ("f", "containers"), ("k", WEB), ("f", "image")),
        (("f", "finalizers"), SELF),
        (("f", "finalizers"), ("v", '"example.com/cleanup"')),
    }


def test_unknown_element_kinds_claim_nothing() -> None:
    assert decode_fields({"x:odd": {}, "noprefix": {}}) == frozenset()


def test_owned_paths_reads_only_our_apply_entry() -> None:
    obj = deployment()
    ours = owned_paths(obj)
    assert (("f", "spec"), ("f", "replicas")) in ours
    assert (*CONTAINERS, ("k", WEB), ("f", "image")) in ours
    # kubectl-edit (Update) owns the env var, kube-controller-manager the status: not ours
    assert not any(("f", "env") in p for p in ours)
    assert not any(p[0] == ("f", "status") for p in ours)
    edit = owned_paths(obj, manager="kubectl-edit", operation="Update")
    assert (*CONTAINERS, ("k", WEB), ("f", "env"), ("k", '{"name":"LOG_LEVEL"}'), ("f", "value")) in edit


def test_owned_paths_ignores_same_name_with_other_operation_or_subresource() -> None:
    obj = {"metadata": {"managedFields": [
        {"manager": "kubectl-gitops", "operation": "Update", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:spec": {"f:paused": {}}}},
        {"manager": "kubectl-gitops", "operation": "Apply", "subresource": "status", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:status": {"f:phase": {}}}},
    ]}}
    assert owned_paths(obj) == frozenset()
    assert owned_paths(None) == frozenset()
    assert owned_paths({"metadata": {"managedFields": "garbage"}}) == frozenset()


def test_resolve_follows_keys_values_and_indexes() -> None:
    obj = deployment()
    assert resolve(obj, (*CONTAINERS, ("k", WEB), ("f", "image"))) == "ghcr.io/acme/web:1.4.2"
    assert resolve(obj, (*CONTAINERS, ("k", WEB), ("f", "ports"), ("k", PORT), ("f", "name"))) == "http"
    assert resolve(obj, (*CONTAINERS, ("k", '{"name":"sidecar"}'), ("f", "image"))) is MISSING
    assert resolve(obj, (*CONTAINERS, ("i", "0"), ("f", "name"))) == "web"
    assert resolve(obj, (*CONTAINERS, ("i", "5"))) is MISSING
    assert resolve({"f": ["a", "b"]}, (("f", "f"), ("v", '"b"'))) == "b"
    assert resolve({"f": ["a"]}, (("f", "f"), ("v", '"b"'))) is MISSING
    assert resolve({"a": {"b": None}}, (("f", "a"), ("f", "b"))) is None  # null is not missing


def test_changed_owned_reports_owned_value_change_only() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:latest"
    new["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "trace"  # kubectl-edit's
    new["metadata"]["annotations"]["team"] = "platform"  # kubectl-edit's
    new["status"]["readyReplicas"] = 1
    assert changed_owned(old, new, owned_paths(old)) == ["spec.template.spec.containers[name=web].image"]


def test_foreign_field_inside_owned_list_item_is_not_a_change() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    new["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EXTRA", "value": "1"})
    new["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Always"
    assert changed_owned(old, new, owned_paths(old)) == []


def test_removed_owned_field_counts_and_children_are_not_repeated() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    del new["spec"]["replicas"]
    new["spec"]["template"]["spec"]["containers"] = []
    assert changed_owned(old, new, owned_paths(old)) == [
        "spec.replicas",
        "spec.template.spec.containers[name=web]",
    ]


def test_label_removal_is_rendered_with_quoted_key() -> None:
    old = deployment()
    new = copy.deepcopy(old)
    del new["metadata"]["labels"]["kubectl-gitops.dev/sync"]
    assert changed_owned(old, new, owned_paths(old)) == ['metadata.labels["kubectl-gitops.dev/sync"]']


def test_list_reordering_is_not_a_change_for_keyed_items() -> None:
    old = {"spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "a"}, {"port": 81, "protocol": "TCP"}]}}
    new = {"spec": {"ports": copy.deepcopy(list(reversed(old["spec"]["ports"])))}}
    paths = decode_fields({"f:spec": {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:name": {}}}}})
    assert changed_owned(old, new, paths) == []
    new["spec"]["ports"][1]["name"] = "b"
    assert changed_owned(old, new, paths) == ['spec.ports[port=80,protocol=TCP].name']


def test_set_values_change_only_by_membership() -> None:
    paths = decode_fields({"f:metadata": {"f:finalizers": {'v:"example.com/cleanup"': {}}}})
    old = {"metadata": {"finalizers": ["example.com/cleanup"]}}
    assert changed_owned(old, {"metadata": {"finalizers": ["x", "example.com/cleanup"]}}, paths) == []
    assert changed_owned(old, {"metadata": {"finalizers": ["x"]}}, paths) == [
        'metadata.finalizers[="example.com/cleanup"]']


def test_type_change_true_to_one_is_a_change() -> None:
    paths = decode_fields({"f:spec": {"f:paused": {}}})
    assert changed_owned({"spec": {"paused": True}}, {"spec": {"paused": 1}}, paths) == ["spec.paused"]
    assert changed_owned({"spec": {"paused": True}}, {"spec": {"paused": True}}, paths) == []


def test_owned_but_absent_on_both_sides_is_not_a_change() -> None:
    paths = decode_fields({"f:spec": {"f:paused": {}}})
    assert changed_owned({"spec": {}}, {"spec": {}}, paths) == []
    assert changed_owned({"spec": {}}, {"spec": {"paused": False}}, paths) == ["spec.paused"]


def test_format_path_forms() -> None:
    assert format_path((("f", "spec"), ("f", "x"), ("i", "2"))) == "spec.x[2]"
    assert format_path((("f", "a"), ("k", '{"n":1}'), SELF)) == "a[n=1]"


def test_keyed_items_resolve_the_same_on_repeat_and_with_keys_too_long_to_cache() -> None:
    long_name = "c" * 300
    obj = {"spec": {"containers": [{"name": "web", "image": "a"}, {"name": long_name, "image": "b"}]}}
    short = (("f", "spec"), ("f", "containers"), ("k", '{"name":"web"}'), ("f", "image"))
    long = (("f", "spec"), ("f", "containers"), ("k", json.dumps({"name": long_name})), ("f", "image"))
    for _ in range(2):  # the second pass answers from the key cache
        assert resolve(obj, short) == "a"
        assert resolve(obj, long) == "b"
    other = copy.deepcopy(obj)
    other["spec"]["containers"][0]["image"] = "z"
    assert resolve(other, short) == "z"


# ------------------------------------------------------------------ bounds: hostile objects never crash the walk


def _deep_trie(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {}
    for _ in range(levels):
        node = {"f:x": node}
    return node


def test_deep_fields_v1_is_refused_without_recursion() -> None:
    from kubectl_gitops.core.bounded import LimitExceeded
    from kubectl_gitops.core.managed_fields import MAX_DEPTH, decode_fields

    assert len(decode_fields(_deep_trie(MAX_DEPTH - 1))) == 1
    with pytest.raises(LimitExceeded, match=f"nested deeper than {MAX_DEPTH} levels"):
        decode_fields(_deep_trie(50_000))  # far past Python's recursion limit: iterative


def test_node_budget_is_shared_by_the_entries_of_one_object() -> None:
    from kubectl_gitops.core.bounded import LimitExceeded
    from kubectl_gitops.core.managed_fields import MAX_NODES, owned_paths

    half = {f"f:k{i}": {} for i in range(MAX_NODES // 2 + 1)}
    entry = {"manager": "kubectl-gitops", "operation": "Apply", "fieldsType": "FieldsV1"}
    one = {"metadata": {"managedFields": [{**entry, "fieldsV1": {"f:data": half}}]}}
    assert len(owned_paths(one)) == len(half)
    two = {"metadata": {"managedFields": [{**entry, "fieldsV1": {"f:data": half}},
                                          {**entry, "fieldsV1": {"f:spec": half}}]}}
    with pytest.raises(LimitExceeded, match="more than 50,000 nodes"):
        owned_paths(two)


def test_too_many_entries_and_too_long_lists_are_named() -> None:
    from kubectl_gitops.core.bounded import LimitExceeded
    from kubectl_gitops.core.managed_fields import MAX_ENTRIES, MAX_LIST_ITEMS, resolve

    entries = [{"manager": f"m{i}", "operation": "Update"} for i in range(MAX_ENTRIES + 1)]
    with pytest.raises(LimitExceeded, match=f"{MAX_ENTRIES + 1} entries"):
        owned_paths({"metadata": {"managedFields": entries}})
    items = [{"name": str(i)} for i in range(MAX_LIST_ITEMS + 1)]
    with pytest.raises(LimitExceeded, match="items"):
        resolve({"l": items}, (("f", "l"), ("k", '{"name":"5"}')))


def test_deep_keys_and_values_are_bounded() -> None:
    from kubectl_gitops.core.bounded import LimitExceeded, same

    with pytest.raises(LimitExceeded, match="nested too deeply"):
        resolve({"l": [{"a": 1}]}, (("f", "l"), ("k", "[" * 5000 + "]" * 5000)))
    a: Any = 1
    for _ in range(5000):
        a = [a]
    with pytest.raises(LimitExceeded, match="nested deeper than"):
        same(a, a)
    assert same({"x": [1, {"y": True}]}, {"x": [1.0, {"y": True}]})
    assert not same({"x": 1}, {"x": True}) and not same([0], [False])
