"""AdmissionReview v1 parsing and response building (kubectl_gitops.core.admission)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.core.admission import (
    AdmissionResponse,
    MalformedReview,
    parse_review,
    request_from_review,
    to_review,
)
from kubectl_gitops.core.errors import GitOpsError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "admission"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return doc


def test_parses_recorded_update() -> None:
    req = parse_review((FIXTURES / "deployment_update_kubectl_edit.json").read_bytes())
    assert req.uid == "3b2c1a90-8f7e-4d6c-b5a4-392817160504"
    assert (req.kind.group, req.kind.version, req.kind.kind) == ("apps", "v1", "Deployment")
    assert req.resource.resource == "deployments"
    assert req.request_kind is not None and req.request_kind.kind == "Deployment"
    assert (req.name, req.namespace, req.operation) == ("web", "shop", "UPDATE")
    assert req.user_info.username == "alice@example.com"
    assert req.user_info.groups == ("developers", "system:authenticated")
    assert req.object is not None and req.old_object is not None
    assert req.options is not None and req.options["fieldManager"] == "kubectl-edit"
    assert req.sub_resource == "" and req.dry_run is False


def test_parses_core_group_and_subresource() -> None:
    cm = parse_review(json.dumps(load("configmap_create_by_applier.json")))
    assert cm.kind.group == "" and cm.resource.resource == "configmaps" and cm.old_object is None
    scale = parse_review(json.dumps(load("deployment_scale.json")))
    assert scale.sub_resource == "scale" and scale.kind.kind == "Scale"


def test_dry_run_and_missing_optional_fields() -> None:
    doc = load("deployment_delete.json")
    doc["request"]["dryRun"] = True
    for key in ("name", "namespace", "options", "requestKind", "object"):
        doc["request"].pop(key, None)
    req = request_from_review(doc)
    assert req.dry_run is True
    assert (req.name, req.namespace, req.options, req.request_kind, req.object) == ("", "", None, None, None)


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "body is not JSON"),
    (b"\xff\xfe\x00", "body is not JSON"),
    (b"[1, 2]", "body is not a JSON object but an array"),
    (b'"review"', "body is not a JSON object but a string"),
    (b"null", "body is not a JSON object but null"),
])
def test_rejects_non_object_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedReview, match=reason):
        parse_review(body)


def _broken(path: list[str], value: Any) -> dict[str, Any]:
    doc = load("deployment_update_kubectl_edit.json")
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "reason"), [
    (["apiVersion"], "admission.k8s.io/v1beta1", "apiVersion must be admission.k8s.io/v1, got 'admission"),
    (["kind"], "AdmissionResponse", "kind must be AdmissionReview"),
    (["request"], _DELETE, "request is missing"),
    (["request"], None, "request is missing"),
    (["request"], [1], "request must be an object, got an array"),
    (["request", "uid"], _DELETE, "request.uid is missing"),
    (["request", "uid"], "", "request.uid is missing or empty"),
    (["request", "uid"], 42, "request.uid must be a string, got a number"),
    (["request", "operation"], "PATCH", "request.operation must be one of"),
    (["request", "kind"], _DELETE, "request.kind is missing"),
    (["request", "kind", "kind"], 7, "request.kind.kind must be a string"),
    (["request", "resource", "resource"], _DELETE, "request.resource.resource is missing"),
    (["request", "userInfo"], "alice", "request.userInfo must be an object, got a string"),
    (["request", "userInfo", "username"], ["alice"], "request.userInfo.username must be a string"),
    (["request", "userInfo", "groups"], "system:masters", "request.userInfo.groups must be a list of strings"),
    (["request", "userInfo", "groups"], ["ok", 1], "request.userInfo.groups must be a list of strings"),
    (["request", "object"], "{}", "request.object must be an object, got a string"),
    (["request", "oldObject"], [], "request.oldObject must be an object, got an array"),
    (["request", "dryRun"], "true", "request.dryRun must be a boolean, got a string"),
    (["request", "subResource"], 1, "request.subResource must be a string"),
])
def test_rejects_wrong_fields_with_precise_reason(path: list[str], value: Any, reason: str) -> None:
    with pytest.raises(MalformedReview, match=re.escape(reason)) as info:
        parse_review(json.dumps(_broken(path, value)))
    assert isinstance(info.value, GitOpsError)


def test_request_is_frozen() -> None:
    req = parse_review(json.dumps(load("deployment_delete.json")))
    with pytest.raises(AttributeError):
        req.operation = "CREATE"  # type: ignore[misc]


# ------------------------------------------------------------------ responses


def test_allowed_review_echoes_uid_and_stays_minimal() -> None:
    out = to_review(AdmissionResponse(uid="abc", allowed=True))
    assert out == {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                   "response": {"uid": "abc", "allowed": True}}


def test_denial_carries_status_code_and_message() -> None:
    out = to_review(AdmissionResponse(uid="u1", allowed=False, code=403, message="no\nway"))
    assert out["response"]["status"] == {"code": 403, "message": "no\nway", "reason": "Forbidden"}
    assert out["response"]["allowed"] is False


def test_patch_is_base64_jsonpatch() -> None:
    ops = [{"op": "add", "path": "/metadata/labels/a~1b", "value": "x"}]
    out = to_review(AdmissionResponse(uid="u2", allowed=True, patch=tuple(ops)))["response"]
    assert out["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(out["patch"])) == ops


def test_denial_never_carries_a_patch() -> None:
    out = to_review(AdmissionResponse(uid="u3", allowed=False, code=403, patch=({"op": "remove", "path": "/x"},)))
    assert "patch" not in out["response"] and "patchType" not in out["response"]


def test_warnings_are_cut_to_120_chars_on_one_line() -> None:
    resp = AdmissionResponse(uid="u4", allowed=True, warnings=("x" * 300, "two\nlines", "short"))
    assert all(len(w) <= 120 for w in resp.warnings)
    assert resp.warnings[0].endswith("…") and resp.warnings[1] == "two lines"
    assert to_review(resp)["response"]["warnings"] == list(resp.warnings)


def test_audit_annotations_are_copied_not_shared() -> None:
    notes = {"sync": "gitops/shop-apps"}
    resp = AdmissionResponse(uid="u5", allowed=True, audit_annotations=notes)
    notes["sync"] = "tampered"
    assert to_review(resp)["response"]["auditAnnotations"] == {"sync": "gitops/shop-apps"}


def test_deeply_nested_body_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedReview, match="nested too deeply"):
        parse_review(b"[" * 200_000)
