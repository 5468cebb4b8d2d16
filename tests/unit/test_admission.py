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


# ------------------------------------------------------------------ hostile nesting: read around it

DEEP = 5000  # far past Python's decoder (~1,000 levels); the API server stores up to 10,000


def deep_json(levels: int) -> str:
    return '{"f:x":' * levels + "{}" + "}" * levels


def body_with(placements: dict[str, str], name: str = "deployment_update_kubectl_edit.json") -> str:
    """A recorded review with deeply nested JSON text put where `placements` say (dotted paths)."""
    doc = load(name)
    for path, marker in placements.items():
        *parents, leaf = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[leaf] = marker
    text = json.dumps(doc)
    for marker in placements.values():
        text = text.replace(json.dumps(marker), deep_json(DEEP))
    return text


def test_deep_fieldsv1_is_read_around_and_reported() -> None:
    text = body_with({"request.oldObject.metadata.managedFields.3.fieldsV1": "@1",
                      "request.object.metadata.managedFields.3.fieldsV1": "@2"})
    with pytest.raises(RecursionError):
        json.loads(text)  # the attack: what the webhook used to answer with HTTP 400
    req = parse_review(text.encode())
    assert req.uid == "3b2c1a90-8f7e-4d6c-b5a4-392817160504"
    assert req.operation == "UPDATE" and req.user_info.username == "alice@example.com"
    assert [p.split(".fieldsV1")[0] for p in req.unreadable] == [
        "request.object.metadata.managedFields[3]", "request.oldObject.metadata.managedFields[3]"]
    assert req.old_object is not None
    assert req.old_object["metadata"]["labels"]["kubectl-gitops.dev/sync"] == "shop-apps"
    assert req.old_object["metadata"]["managedFields"][3]["manager"] == "kubectl-edit"
    assert req.old_object["metadata"]["managedFields"][0]["manager"] == "kubectl-gitops"


def test_deep_custom_resource_spec_is_read_around() -> None:
    req = parse_review(body_with({"request.oldObject.spec": "@1"}).encode())
    assert len(req.unreadable) == 1 and req.unreadable[0].startswith("request.oldObject.spec.f:x")
    assert req.old_object is not None and req.old_object["metadata"]["name"] == "web"


def test_readable_review_reports_nothing_unreadable() -> None:
    assert parse_review((FIXTURES / "deployment_update_kubectl_edit.json").read_bytes()).unreadable == ()


@pytest.mark.parametrize("body", [
    '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":',
    '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","x":' + "[" * 5000,
    '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1"}} trailing',
])
def test_broken_body_still_yields_its_uid(body: str) -> None:
    with pytest.raises(MalformedReview) as info:
        parse_review(body.encode())
    assert info.value.uid == "u-1"


def test_wrong_field_after_uid_carries_the_uid() -> None:
    doc = load("deployment_delete.json")
    doc["request"]["operation"] = "PATCH"
    with pytest.raises(MalformedReview, match=r"request\.operation") as info:
        parse_review(json.dumps(doc))
    assert info.value.uid == doc["request"]["uid"]


def test_body_without_uid_has_none() -> None:
    with pytest.raises(MalformedReview) as info:
        parse_review(b"[" * 200_000)
    assert info.value.uid == ""
