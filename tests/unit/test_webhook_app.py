"""The Flask adapter (kubectl_gitops_webhook.app) through Flask's test client: no server, no cluster."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from kubectl_gitops.constants import ANNOTATION_REVISION, BREAK_GLASS_GROUP, LABEL_SYNC
from kubectl_gitops.core.admission import AdmissionRequest
from kubectl_gitops.core.drift import SyncInfo
from kubectl_gitops_webhook.app import create_app

FIXTURES = Path(__file__).parent.parent / "fixtures" / "admission"
APPLIER = "system:serviceaccount:gitops:shop-applier"
SYNC = SyncInfo(name="shop-apps", namespace="gitops", source_url="https://github.com/acme/shop.git",
                path="./apps/shop", revision="main@sha1:abc", appliers=frozenset({APPLIER}))


def raw(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return doc


def lookup(namespace: str, name: str) -> SyncInfo | None:
    return SYNC if (namespace, name) == ("gitops", "shop-apps") else None


def broken_lookup(namespace: str, name: str) -> SyncInfo | None:
    raise ConnectionError("API server timed out")


def client_of(the_lookup: Callable[[str, str], SyncInfo | None] = lookup,
              parent: Callable[[AdmissionRequest], dict[str, Any] | None] | None = None) -> FlaskClient:
    return create_app(lambda: the_lookup, parent).test_client()


def post(client: FlaskClient, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = client.post(path, data=data, content_type="application/json")
    doc: dict[str, Any] = resp.get_json()
    return resp.status_code, doc


def metrics_text(client: FlaskClient) -> str:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


# ------------------------------------------------------------------ malformed input


# Bodies without a readable request.uid: nobody to answer, so HTTP 400 (no API server sends these).
@pytest.mark.parametrize(("body", "reason"), [
    (b"", "body is not JSON"),
    (b"<xml/>", "body is not JSON"),
    (b"[]", "body is not a JSON object"),
    (b"[" * 100_000, "nested too deeply"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}).encode(), "apiVersion must be"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), "request is missing"),
])
@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_malformed_bodies_get_400_with_reason(path: str, body: bytes, reason: str) -> None:
    code, doc = post(client_of(), path, body)
    assert code == 400
    assert reason in doc["error"]


def test_missing_uid_is_400_and_counted() -> None:
    client = client_of()
    doc = raw("deployment_delete.json")
    del doc["request"]["uid"]
    code, out = post(client, "/validate", doc)
    assert (code, out) == (400, {"error": "request.uid is missing"})
    text = metrics_text(client)
    assert 'kubectl_gitops_webhook_requests_total{code="400",endpoint="/validate"} 1.0' in text
    assert 'kubectl_gitops_webhook_decisions_total{allowed="false",endpoint="/validate",reason="Malformed"} 1.0' in text


def test_wrong_method_and_unknown_path_answer_json() -> None:
    client = client_of()
    resp = client.get("/validate")
    assert resp.status_code == 405 and "error" in resp.get_json()
    assert client.get("/nope").status_code == 404


def test_oversized_body_is_refused_without_500() -> None:
    resp = client_of().post("/validate", data=b" " * (17 * 1024 * 1024), content_type="application/json")
    assert resp.status_code == 413 and "error" in resp.get_json()


# ------------------------------------------------------------------ decisions over HTTP


def test_validate_denies_drift_and_echoes_uid() -> None:
    code, doc = post(client_of(), "/validate", raw("deployment_update_kubectl_edit.json"))
    assert code == 200
    assert doc["apiVersion"] == "admission.k8s.io/v1" and doc["kind"] == "AdmissionReview"
    resp = doc["response"]
    assert resp["uid"] == "3b2c1a90-8f7e-4d6c-b5a4-392817160504"
    assert resp["allowed"] is False and resp["status"]["code"] == 403
    assert "kubectl gitops suspend sync shop-apps -n gitops" in resp["status"]["message"]


def test_validate_allows_applier() -> None:
    doc = raw("deployment_delete.json")
    doc["request"]["userInfo"] = {"username": APPLIER, "groups": []}
    code, out = post(client_of(), "/validate", doc)
    assert code == 200 and out["response"] == {"uid": doc["request"]["uid"], "allowed": True}


def test_validate_scale_uses_parent_fetcher() -> None:
    parent: dict[str, Any] = raw("deployment_update_kubectl_edit.json")["request"]["oldObject"]
    seen: list[str] = []

    def fetch(req: AdmissionRequest) -> dict[str, Any] | None:
        seen.append(f"{req.resource.resource}/{req.namespace}/{req.name}")
        return parent
    code, doc = post(client_of(parent=fetch), "/validate", raw("deployment_scale.json"))
    assert code == 200 and doc["response"]["allowed"] is False
    assert "spec.replicas" in doc["response"]["status"]["message"]
    assert seen == ["deployments/shop/web"]


def test_mutate_returns_base64_jsonpatch_for_applier() -> None:
    code, doc = post(client_of(), "/mutate", raw("configmap_create_by_applier.json"))
    resp = doc["response"]
    assert code == 200 and resp["allowed"] is True and resp["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(resp["patch"])) == [
        {"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION_REVISION: "main@sha1:abc"}}]


def test_mutate_leaves_others_alone() -> None:
    doc = raw("configmap_create_by_applier.json")
    doc["request"]["userInfo"] = {"username": "alice", "groups": []}
    code, out = post(client_of(), "/mutate", doc)
    assert code == 200 and out["response"] == {"uid": doc["request"]["uid"], "allowed": True}


# ------------------------------------------------------------------ failure policy


def test_validate_fails_closed_for_managed_objects() -> None:
    code, doc = post(client_of(broken_lookup), "/validate", raw("deployment_update_kubectl_edit.json"))
    resp = doc["response"]
    assert code == 200 and resp["uid"] == "3b2c1a90-8f7e-4d6c-b5a4-392817160504"
    assert resp["allowed"] is False and resp["status"]["code"] == 500
    assert "could not decide" in resp["status"]["message"] and "ConnectionError" in resp["status"]["message"]


def test_validate_fails_closed_for_scale_when_parent_fetch_breaks() -> None:
    def fetch(req: AdmissionRequest) -> dict[str, Any] | None:
        raise TimeoutError("parent fetch")
    code, doc = post(client_of(parent=fetch), "/validate", raw("deployment_scale.json"))
    assert code == 200 and doc["response"]["allowed"] is False


def test_validate_fails_open_for_unmanaged_objects() -> None:
    doc = raw("deployment_update_kubectl_edit.json")
    del doc["request"]["oldObject"]["metadata"]["labels"][LABEL_SYNC]
    code, out = post(client_of(broken_lookup), "/validate", doc)
    assert code == 200 and out["response"]["allowed"] is True


def test_validate_break_glass_passes_even_when_broken() -> None:
    doc = raw("deployment_update_kubectl_edit.json")
    doc["request"]["userInfo"]["groups"].append(BREAK_GLASS_GROUP)
    code, out = post(client_of(broken_lookup), "/validate", doc)
    assert code == 200 and out["response"]["allowed"] is True and out["response"]["warnings"]


def test_mutate_fails_open_without_patch() -> None:
    code, doc = post(client_of(broken_lookup), "/mutate", raw("configmap_create_by_applier.json"))
    resp = doc["response"]
    assert code == 200 and resp["allowed"] is True and "patch" not in resp and resp["warnings"]


def test_lookup_factory_is_called_once_and_lazily() -> None:
    calls: list[int] = []

    def factory() -> Callable[[str, str], SyncInfo | None]:
        calls.append(1)
        return lookup
    client = create_app(factory).test_client()
    assert calls == []
    for _ in range(3):
        post(client, "/validate", raw("deployment_delete.json"))
    assert calls == [1]


# ------------------------------------------------------------------ health and metrics


def test_health_and_readiness() -> None:
    client = client_of()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200

    def failing_factory() -> Callable[[str, str], SyncInfo | None]:
        raise RuntimeError("no kubeconfig")
    broken = create_app(failing_factory).test_client()
    resp = broken.get("/readyz")
    assert resp.status_code == 503 and "no kubeconfig" in resp.get_json()["error"]
    assert broken.get("/healthz").status_code == 200


def test_metrics_count_requests_decisions_and_latency() -> None:
    client = client_of()
    post(client, "/validate", raw("deployment_update_kubectl_edit.json"))
    post(client, "/validate", raw("deployment_status.json"))
    post(client, "/mutate", raw("configmap_create_by_applier.json"))
    text = metrics_text(client)
    assert 'kubectl_gitops_webhook_requests_total{code="200",endpoint="/validate"} 2.0' in text
    assert ('kubectl_gitops_webhook_decisions_total{allowed="false",endpoint="/validate",'
            'reason="OwnedFieldChanged"} 1.0') in text
    assert ('kubectl_gitops_webhook_decisions_total{allowed="true",endpoint="/validate",'
            'reason="StatusSubresource"} 1.0') in text
    assert 'kubectl_gitops_webhook_decisions_total{allowed="true",endpoint="/mutate",reason="Stamped"} 1.0' in text
    assert 'kubectl_gitops_webhook_request_duration_seconds_count{endpoint="/validate"} 2.0' in text


def test_each_app_has_its_own_registry() -> None:
    first, second = client_of(), client_of()
    post(first, "/validate", raw("deployment_delete.json"))
    assert 'endpoint="/validate"' in metrics_text(first)
    assert 'endpoint="/validate"' not in metrics_text(second)


# ------------------------------------------------------------------ hostile JSON: a review, never an HTTP error


def _deep_body(levels: int = 5000, where: str = "oldObject") -> bytes:
    doc = raw("deployment_update_kubectl_edit.json")
    doc["request"][where]["metadata"]["managedFields"][3]["fieldsV1"] = "@deep"
    return json.dumps(doc).replace('"@deep"', '{"f:x":' * levels + "{}" + "}" * levels).encode()


@pytest.mark.parametrize("where", ["oldObject", "object"])
def test_attack_deep_managed_fields_are_refused_with_a_review_not_an_http_error(where: str) -> None:
    """Before: RecursionError -> HTTP 400 -> failurePolicy Ignore -> allowed. Now: a refusal."""
    client = client_of()
    code, doc = post(client, "/validate", _deep_body(where=where))
    assert code == 200, doc
    resp = doc["response"]
    assert resp["uid"] == "3b2c1a90-8f7e-4d6c-b5a4-392817160504"
    assert resp["allowed"] is False and resp["status"]["code"] == 403
    assert "could not analyse" in resp["status"]["message"] and "nested too deeply" in resp["status"]["message"]
    assert 'reason="Unanalysable"' in metrics_text(client)


def test_deep_body_by_the_applier_is_allowed() -> None:
    body = json.loads(raw_text := _deep_body(levels=10).decode())  # shallow enough to edit
    body["request"]["userInfo"] = {"username": APPLIER, "groups": []}
    deep = json.dumps(body).replace('{"f:x":' * 10 + "{}" + "}" * 10, '{"f:x":' * 5000 + "{}" + "}" * 5000)
    assert raw_text != deep
    code, doc = post(client_of(), "/validate", deep.encode())
    assert code == 200 and doc["response"]["allowed"] is True


@pytest.mark.parametrize(("path", "allowed"), [("/validate", False), ("/mutate", True)])
def test_unparseable_review_with_a_uid_is_answered_not_400(path: str, allowed: bool) -> None:
    doc = raw("deployment_update_kubectl_edit.json")
    doc["request"]["operation"] = "PATCH"  # a shape the guard does not know
    code, out = post(client_of(), path, doc)
    assert code == 200 and out["response"]["uid"] == doc["request"]["uid"]
    assert out["response"]["allowed"] is allowed
    if not allowed:
        assert "could not read this admission review" in out["response"]["status"]["message"]


def test_truncated_review_with_a_uid_is_refused() -> None:
    body = json.dumps(raw("deployment_update_kubectl_edit.json"))[:2000].encode()
    code, out = post(client_of(), "/validate", body)
    assert code == 200 and out["response"]["allowed"] is False
    assert out["response"]["uid"] == "3b2c1a90-8f7e-4d6c-b5a4-392817160504"


def test_trusted_controllers_reach_the_guard() -> None:
    doc = raw("deployment_update_kubectl_edit.json")
    r = doc["request"]
    r["object"] = json.loads(json.dumps(r["oldObject"]))
    r["object"]["metadata"]["finalizers"] = ["ops.example/cleanup"]
    r["userInfo"] = {"username": "system:serviceaccount:ops:op", "groups": []}
    _, refused = post(client_of(), "/validate", doc)
    assert refused["response"]["allowed"] is False
    app = create_app(lambda: lookup, None, trusted_controllers=["system:serviceaccount:ops:op"])
    _, passed = post(app.test_client(), "/validate", doc)
    assert passed["response"]["allowed"] is True


def test_mutate_never_patches_an_object_it_could_not_read() -> None:
    """A map read as None may exist: "add" on it would replace it, so no stamp at all."""
    doc = raw("configmap_create_by_applier.json")
    doc["request"]["object"]["data"] = "@deep"
    body = json.dumps(doc).replace('"@deep"', '{"k":' * 5000 + "{}" + "}" * 5000).encode()
    code, out = post(client_of(), "/mutate", body)
    assert code == 200 and out["response"]["allowed"] is True and "patch" not in out["response"]
    doc["request"]["object"]["data"] = {"k": "v"}
    _, stamped = post(client_of(), "/mutate", doc)
    assert "patch" in stamped["response"]  # control: the same create, readable, is stamped
