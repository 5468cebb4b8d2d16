"""The tenant label stamped at admission (core.mutate.stamp_patch with a tenant)."""

from __future__ import annotations

from typing import Any

from kubectl_gitops.constants import ANNOTATION_REVISION, LABEL_SYNC, LABEL_SYNC_NAMESPACE, LABEL_TENANT
from kubectl_gitops.core.admission import AdmissionRequest
from kubectl_gitops.core.mutate import stamp_patch
from tests.unit.test_mutate import apply_patch, lookup, req_of, review_doc


def by(user: str, labels: dict[str, str] | None, op: str = "CREATE") -> AdmissionRequest:
    doc = review_doc()
    doc["request"]["operation"] = op
    doc["request"]["userInfo"] = {"username": user}
    meta = doc["request"]["object"]["metadata"]
    if labels is None:
        meta.pop("labels")
    else:
        meta["labels"] = labels
    return req_of(doc)


def patched(req: AdmissionRequest, ops: list[dict[str, Any]]) -> dict[str, Any]:
    assert req.object is not None
    adds = [{**op, "op": "add"} if op["op"] == "replace" else op for op in ops]  # same effect on a map key
    return apply_patch(req.object, adds)


def test_anyones_object_in_a_tenant_namespace_gets_the_label() -> None:
    req = by("alice", None)
    ops = stamp_patch(req, lookup, tenant="team-a")
    assert ops == [{"op": "add", "path": "/metadata/labels", "value": {LABEL_TENANT: "team-a"}}]
    again = by("alice", patched(req, ops)["metadata"]["labels"])
    assert stamp_patch(again, lookup, tenant="team-a") == []  # idempotent


def test_a_forged_tenant_label_is_replaced() -> None:
    req = by("alice", {"app": "web", LABEL_TENANT: "team-b"}, op="UPDATE")
    ops = stamp_patch(req, lookup, tenant="team-a")
    assert ops == [{"op": "replace", "path": "/metadata/labels/kubectl-gitops.dev~1tenant", "value": "team-a"}]
    assert patched(req, ops)["metadata"]["labels"] == {"app": "web", LABEL_TENANT: "team-a"}


def test_applier_stamps_and_tenant_label_in_one_patch() -> None:
    req = by("system:serviceaccount:gitops:shop-applier", {LABEL_SYNC: "shop-apps", LABEL_SYNC_NAMESPACE: "gitops"})
    obj = patched(req, stamp_patch(req, lookup, tenant="team-a"))
    assert obj["metadata"]["labels"] == {LABEL_SYNC: "shop-apps", LABEL_SYNC_NAMESPACE: "gitops",
                                         LABEL_TENANT: "team-a"}
    assert obj["metadata"]["annotations"] == {ANNOTATION_REVISION: "main@sha1:abc"}


def test_no_tenant_no_label_and_never_on_deletes_or_subresources() -> None:
    assert stamp_patch(by("alice", None), lookup) == []
    assert stamp_patch(by("alice", None, op="DELETE"), lookup, tenant="team-a") == []
