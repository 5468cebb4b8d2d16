"""The declared-fields record: what Git declares stays Git's when ownership moves."""

from __future__ import annotations

import json
from typing import Any

from kubectl_gitops.constants import ANNOTATION_FIELDS, FIELD_MANAGER
from kubectl_gitops.core import declared

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "n", "labels": {"app": "web"}, "creationTimestamp": None},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}},
}

# What the API server records for the applier after applying DEPLOYMENT (selector is atomic).
OURS = {
    "f:metadata": {"f:labels": {"f:app": {}}, "f:annotations": {f"f:{ANNOTATION_FIELDS}": {}}},
    "f:spec": {"f:replicas": {}, "f:selector": {},
               "f:template": {"f:metadata": {"f:labels": {"f:app": {}}},
                              "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {},
                                                                                 "f:name": {}}}}}},
}


def live(ours: dict[str, Any] | None, other: dict[str, Any] | None = None, **changes: Any) -> dict[str, Any]:
    obj = json.loads(json.dumps(DEPLOYMENT))
    obj["spec"].update(changes)
    entries = []
    if ours is not None:
        entries.append({"manager": FIELD_MANAGER, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": ours})
    if other is not None:
        entries.append({"manager": "kubectl-edit", "operation": "Update", "fieldsType": "FieldsV1",
                        "fieldsV1": other})
    obj["metadata"]["managedFields"] = entries
    obj["metadata"]["annotations"] = {ANNOTATION_FIELDS: declared.encode(declared.with_declared(DEPLOYMENT))}
    return obj


def test_trie_leaves_identity_out_and_lists_as_leaves() -> None:
    trie = declared.declared_trie(DEPLOYMENT)
    assert "apiVersion" not in trie and "kind" not in trie
    assert trie["metadata"] == {"labels": {"app": {}}}  # name, namespace, null timestamp left out
    assert trie["spec"]["template"]["spec"] == {"containers": {}}
    assert ("spec", "selector", "matchLabels", "app") in declared.leaf_paths(trie)


def test_nothing_lost_when_the_applier_owns_everything() -> None:
    assert declared.ownership_lost(DEPLOYMENT, live(OURS)) == []


def test_an_atomic_node_covers_what_is_below_it() -> None:
    # selector is owned as a whole (f:selector: {}): matchLabels.app below it is not lost.
    assert ("spec", "selector", "matchLabels", "app") not in declared.ownership_lost(DEPLOYMENT, live(OURS))


def test_a_field_taken_over_by_an_edit_is_lost_even_with_the_same_value() -> None:
    ours = json.loads(json.dumps(OURS))
    del ours["f:spec"]["f:replicas"]
    lost = declared.ownership_lost(DEPLOYMENT, live(ours, {"f:spec": {"f:replicas": {}}}))
    assert lost == [("spec", "replicas")]


def test_a_list_taken_over_entirely_is_lost() -> None:
    ours = json.loads(json.dumps(OURS))
    del ours["f:spec"]["f:template"]["f:spec"]
    assert ("spec", "template", "spec", "containers") in declared.ownership_lost(DEPLOYMENT, live(ours))


def test_no_live_object_means_nothing_to_take_back() -> None:
    assert declared.ownership_lost(DEPLOYMENT, None) == []


def test_the_guard_sees_a_change_to_a_lost_field() -> None:
    ours = json.loads(json.dumps(OURS))
    del ours["f:spec"]["f:replicas"]
    old = live(ours, {"f:spec": {"f:replicas": {}}})
    new = json.loads(json.dumps(old))
    new["spec"]["replicas"] = 7
    assert declared.changed_lost(old, new) == ["spec.replicas"]
    unchanged = json.loads(json.dumps(old))
    unchanged["spec"]["paused"] = True  # not declared: not Git's
    assert declared.changed_lost(old, unchanged) == []


def test_bool_for_int_is_a_change() -> None:
    ours = json.loads(json.dumps(OURS))
    del ours["f:spec"]["f:replicas"]
    old = live(ours, replicas=1)
    new = json.loads(json.dumps(old))
    new["spec"]["replicas"] = True
    assert declared.changed_lost(old, new) == ["spec.replicas"]


def test_without_a_record_the_guard_adds_nothing() -> None:
    old = live(OURS)
    del old["metadata"]["annotations"]
    assert declared.changed_lost(old, {**old, "spec": {}}) == []


def test_encode_coarsens_instead_of_overflowing() -> None:
    big = {"data": {f"key-{i}": {"deep": {"deeper": {"x": i}}} for i in range(5000)}}
    text = declared.encode(declared.declared_trie({"kind": "X", **big}))
    assert len(text) <= declared.MAX_BYTES
    decoded = declared.decode(text)
    assert decoded is not None and "data" in decoded


def test_decode_refuses_hostile_values_without_raising() -> None:
    deep = "{" + '"a":{' * 5000 + "}" * 5001
    for text in (None, 1, "", "not json", "[]", '{"a": 1}', '{"a": [{}]}', deep, "{" * 100000,
                 "x" * (declared.MAX_BYTES + 1)):
        assert declared.decode(text) is None
    assert declared.decode('{"spec":{"replicas":{}}}') == {"spec": {"replicas": {}}}


def test_a_deep_manifest_is_recorded_to_a_bounded_depth() -> None:
    value: dict[str, Any] = {}
    node = value
    for _ in range(200):
        node["a"] = {}
        node = node["a"]
    node["leaf"] = 1
    trie = declared.declared_trie({"kind": "X", "spec": value})
    assert declared.decode(declared.encode(trie)) is not None
    assert max(len(p) for p in declared.leaf_paths(trie)) <= declared.MAX_DEPTH


def test_a_hostile_fields_v1_nested_thousands_deep_costs_nothing() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(20000):
        node["f:spec"] = {}
        node = node["f:spec"]
    obj = live(OURS, deep)
    obj["metadata"]["managedFields"].append({"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": deep})
    assert declared.ownership_lost(DEPLOYMENT, obj) == []


def test_malformed_managed_fields_entries_are_ignored() -> None:
    obj = live(OURS)
    obj["metadata"]["managedFields"] += [None, 1, {"manager": FIELD_MANAGER, "operation": "Apply",
                                                   "fieldsV1": "garbage"}]
    assert declared.ownership_lost(DEPLOYMENT, obj) == []
    obj["metadata"]["managedFields"] = "garbage"
    assert ("spec", "replicas") in declared.ownership_lost(DEPLOYMENT, obj)


def test_a_leaf_that_is_not_a_mapping_counts_as_atomic() -> None:
    ours = json.loads(json.dumps(OURS))
    ours["f:spec"] = True
    assert declared.ownership_lost(DEPLOYMENT, live(ours)) == []


def test_owns_and_declared_by_git() -> None:
    pruning = ("metadata", "annotations", "kubectl-gitops.dev/prune")
    obj = live(OURS)
    assert declared.owns(obj, ("spec", "replicas"))
    assert not declared.owns(obj, pruning)
    assert not declared.declared_by_git(obj, pruning)
    # The record lists it and our manager owns the record: Git declared it (ownership moved since).
    manifest = {**DEPLOYMENT, "metadata": {**DEPLOYMENT["metadata"],
                                           "annotations": {"kubectl-gitops.dev/prune": "disabled"}}}
    obj["metadata"]["annotations"][ANNOTATION_FIELDS] = declared.encode(declared.with_declared(manifest))
    assert declared.declared_by_git(obj, pruning)
    # The same record written by someone else (our manager does not own it) proves nothing.
    ours = json.loads(json.dumps(OURS))
    del ours["f:metadata"]["f:annotations"]
    assert not declared.declared_by_git(live(ours) | {"metadata": obj["metadata"] | {
        "managedFields": live(ours)["metadata"]["managedFields"]}}, pruning)


def test_declares_follows_coarsened_nodes() -> None:
    assert declared.declares({"metadata": {}}, ("metadata", "annotations", "x"))
    assert declared.declares({"metadata": {"annotations": {"x": {}}}}, ("metadata", "annotations", "x"))
    assert not declared.declares({"metadata": {"labels": {}}}, ("metadata", "annotations", "x"))
    assert not declared.declares(None, ("metadata",))


def test_an_empty_annotations_map_applied_once_does_not_own_keys_added_later() -> None:
    ours = json.loads(json.dumps(OURS))
    ours["f:metadata"]["f:annotations"] = {}
    obj = live(ours)
    obj["metadata"]["annotations"]["kubectl-gitops.dev/prune"] = "disabled"
    assert not declared.owns_key(obj, ("metadata", "annotations", "kubectl-gitops.dev/prune"))
    assert not declared.declared_by_git(obj, ("metadata", "annotations", "kubectl-gitops.dev/prune"))


def test_the_fast_path_agrees_with_the_full_walk() -> None:
    cases = [OURS, {**OURS, "f:spec": {}}, {"f:metadata": OURS["f:metadata"]}, {**OURS, "f:spec": None},
             {**OURS, "f:spec": {**OURS["f:spec"], "f:template": {"f:metadata": {}}}}]
    for ours in cases:
        obj = live(ours)
        full = declared.lost_paths(declared.with_declared(DEPLOYMENT), obj)
        assert declared.ownership_lost(DEPLOYMENT, obj) == full


def test_an_empty_list_in_git_that_the_server_records_no_owner_for_is_not_lost() -> None:
    # What the API server does for `webhooks: []` on a ValidatingWebhookConfiguration.
    vwc = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
           "metadata": {"name": "v", "annotations": {ANNOTATION_FIELDS: "x"}}, "webhooks": []}
    ours = {"f:metadata": {"f:annotations": {f"f:{ANNOTATION_FIELDS}": {}}}}
    obj = {**vwc, "metadata": {**vwc["metadata"], "managedFields": [
        {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": ours}]}}
    assert declared.ownership_lost({**vwc, "metadata": {"name": "v"}}, obj) == []
    assert declared.ownership_lost({**vwc, "metadata": {"name": "v"}, "webhooks": [{"name": "w"}]}, obj) == [
        ("webhooks",)]


def test_the_engines_own_stamps_are_not_recorded() -> None:
    """Every object carries them: recording them would only make each one bigger."""
    from kubectl_gitops.core.plan import stamp

    stamped = stamp(DEPLOYMENT, "apps", "team", "main@sha1:" + "a" * 40)
    trie = declared.decode(stamped["metadata"]["annotations"][ANNOTATION_FIELDS])
    assert trie is not None
    assert set(trie["metadata"]["labels"]) == {"app"}
    assert set(trie["metadata"]["annotations"]) == {ANNOTATION_FIELDS}
    with_prune = json.loads(json.dumps(DEPLOYMENT))
    with_prune["metadata"]["annotations"] = {"kubectl-gitops.dev/prune": "disabled"}
    kept = declared.decode(stamp(with_prune, "apps", "team", "r")["metadata"]["annotations"][ANNOTATION_FIELDS])
    assert kept is not None and "kubectl-gitops.dev/prune" in kept["metadata"]["annotations"]  # Git's, kept
