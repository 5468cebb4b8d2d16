"""Stamping ownership and revision metadata at admission (kubectl_gitops.core.mutate)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from kubectl_gitops.constants import ANNOTATION_REVISION, LABEL_SYNC
from kubectl_gitops.core.admission import AdmissionRequest, request_from_review
from kubectl_gitops.core.drift import SyncInfo
from kubectl_gitops.core.mutate import ensure_entries, pointer_escape, stamp_patch

FIXTURES = Path(__file__).parent.parent / "fixtures" / "admission"
APPLIER = "system:serviceaccount:gitops:shop-applier"
SYNC = SyncInfo(name="shop-apps", namespace="gitops", revision="main@sha1:abc", appliers=frozenset({APPLIER}))


def review_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / "configmap_create_by_applier.json").read_text())
    return doc


def req_of(doc: dict[str, Any]) -> AdmissionRequest:
    return request_from_review(doc)


def lookup(namespace: str, name: str) -> SyncInfo | None:
    return SYNC if (namespace, name) == ("gitops", "shop-apps") else None


def apply_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """A small RFC 6902 `add` applier: enough to check what the API server would do with our ops."""
    out = copy.deepcopy(obj)
    for op in ops:
        assert op["op"] == "add"
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        node = out
        for t in tokens[:-1]:
            node = node[t]
        node[tokens[-1]] = op["value"]
    return out


def test_applier_create_gets_revision_annotation_map() -> None:
    doc = review_doc()
    ops = stamp_patch(req_of(doc), lookup)
    assert ops == [{"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION_REVISION: "main@sha1:abc"}}]


def test_patch_is_idempotent() -> None:
    doc = review_doc()
    ops = stamp_patch(req_of(doc), lookup)
    doc["request"]["object"] = apply_patch(doc["request"]["object"], ops)
    assert stamp_patch(req_of(doc), lookup) == []


def test_existing_annotations_get_an_escaped_key() -> None:
    doc = review_doc()
    doc["request"]["object"]["metadata"]["annotations"] = {"team": "payments"}
    ops = stamp_patch(req_of(doc), lookup)
    assert ops == [{"op": "add", "path": "/metadata/annotations/kubectl-gitops.dev~1revision",
                    "value": "main@sha1:abc"}]
    patched = apply_patch(doc["request"]["object"], ops)
    assert patched["metadata"]["annotations"] == {"team": "payments", ANNOTATION_REVISION: "main@sha1:abc"}


def test_revision_sent_by_the_applier_is_never_overwritten() -> None:
    doc = review_doc()
    doc["request"]["object"]["metadata"]["annotations"] = {ANNOTATION_REVISION: "main@sha1:newer"}
    assert stamp_patch(req_of(doc), lookup) == []


def test_attack_non_applier_request_is_never_mutated() -> None:
    doc = review_doc()
    doc["request"]["userInfo"] = {"username": "alice", "groups": ["system:authenticated"]}
    doc["request"]["options"]["fieldManager"] = "kubectl-gitops"  # a spoofed manager name changes nothing
    assert stamp_patch(req_of(doc), lookup) == []


def test_no_stamp_without_labels_sync_or_for_delete_and_subresources() -> None:
    doc = review_doc()
    unlabelled = copy.deepcopy(doc)
    del unlabelled["request"]["object"]["metadata"]["labels"][LABEL_SYNC]
    assert stamp_patch(req_of(unlabelled), lookup) == []
    assert stamp_patch(req_of(doc), lambda ns, n: None) == []
    sub = copy.deepcopy(doc)
    sub["request"]["subResource"] = "status"
    assert stamp_patch(req_of(sub), lookup) == []
    delete = copy.deepcopy(doc)
    delete["request"]["operation"] = "DELETE"
    assert stamp_patch(req_of(delete), lookup) == []


def test_unknown_revision_stamps_nothing() -> None:
    empty = SyncInfo(name="shop-apps", namespace="gitops", appliers=frozenset({APPLIER}))
    assert stamp_patch(req_of(review_doc()), lambda ns, n: empty) == []


def test_ensure_entries_creates_null_map_and_metadata() -> None:
    assert ensure_entries({"metadata": {"labels": None}}, "labels", {"a/b": "1"}) == [
        {"op": "add", "path": "/metadata/labels", "value": {"a/b": "1"}}]
    assert ensure_entries({}, "labels", {"a": "1"}) == [
        {"op": "add", "path": "/metadata", "value": {"labels": {"a": "1"}}}]
    assert ensure_entries({"metadata": {"labels": {"a": "x"}}}, "labels", {"a": "1"}) == []


def test_pointer_escape_order() -> None:
    assert pointer_escape("a~/b") == "a~0~1b"
