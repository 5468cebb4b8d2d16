"""engine/audit.py's reading and writing against an in-memory API (paging, scopes, errors, reports);
the real API server is exercised by tests/e2e/test_audit.py and benchmarks/audit_bench.py."""

from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.constants import LABEL_SYNC
from kubectl_gitops.core.audit.context import Scope
from kubectl_gitops.core.audit.model import Severity
from kubectl_gitops.core.discovery import ResourceInfo
from kubectl_gitops.engine import audit as engine
from tests.unit.audit_world import NOW, configmap, namespace, sync

JSON = dict[str, Any]
KINDS = [("", "v1", "ConfigMap", "configmaps", True), ("", "v1", "Namespace", "namespaces", False),
         ("", "v1", "Secret", "secrets", True), ("", "v1", "Event", "events", True),
         ("kubectl-gitops.dev", "v1alpha1", "Sync", "syncs", True)]


class FakeApi:
    """Collections by path, served a page at a time like the API server (limit/continue)."""

    def __init__(self, items: dict[str, list[JSON]], forbidden: frozenset[str] = frozenset()) -> None:
        self.items = items
        self.forbidden = forbidden
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.applied: list[JSON] = []
        self.deleted: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None, **_: Any) -> JSON:
        with self.lock:
            self.calls.append((path, dict(query or {})))
        if path == "/api":
            return {"items": []}
        if path == "/apis":
            return {"items": [{"metadata": {"name": g}, "versions": [{"version": v, "resources": [
                {"resource": p, "responseKind": {"kind": k}, "scope": "Namespaced" if ns else "Cluster",
                 "verbs": ["list", "get"]}]}]} for g, v, k, p, ns in KINDS]}
        if path in self.forbidden:
            raise ApiError(403, f"{path} is forbidden")
        items = self.items.get(path)
        if items is None:
            raise ApiError(404, "not found")
        query = query or {}
        if "labelSelector" in query:
            key, _, value = query["labelSelector"].partition("=")
            items = [i for i in items if (i["metadata"].get("labels") or {}).get(key) == value]
        start, limit = int(query.get("continue") or 0), int(query["limit"])
        more = start + limit < len(items)
        return {"items": [dict(i) for i in items[start:start + limit]],
                "metadata": {"continue": str(start + limit) if more else ""}}

    def apply(self, info: ResourceInfo, obj: JSON, **_: Any) -> JSON:
        self.applied.append(obj)
        return obj

    def delete(self, info: ResourceInfo, name: str, namespace: str | None = None, **_: Any) -> bool:
        self.deleted.append((name, namespace))
        return True


def world(cms: int = 1200, **extra: list[JSON]) -> FakeApi:
    stray = [configmap(f"cm-{i:05d}", "app") for i in range(cms)]
    items = {"/api/v1/configmaps": stray, "/api/v1/namespaces": [namespace("app")], "/api/v1/secrets": [],
             "/apis/kubectl-gitops.dev/v1alpha1/syncs": [sync("s", "app", inventory=["app_cm-00000__ConfigMap"])],
             "/apis/rbac.authorization.k8s.io/v1/clusterroles": [], "/apis/rbac.authorization.k8s.io/v1/roles": [],
             "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings": [],
             "/apis/rbac.authorization.k8s.io/v1/rolebindings": [],
             "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations": [],
             "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations": []}
    items.update(extra)
    return FakeApi(items)


def run(api: FakeApi, scope: Scope = engine.EVERYTHING, **kwargs: Any) -> Any:
    return engine.run_audit(cast(Kube, api), scope, now=NOW, page=500, **kwargs)


def test_every_kind_is_read_page_by_page_and_every_object_judged() -> None:
    api = world()
    result = run(api)
    pages = [q for p, q in api.calls if p == "/api/v1/configmaps"]
    assert [q.get("continue") for q in pages] == [None, "500", "1000"]
    assert all(q["limit"] == "500" for q in pages)
    assert result.counts_by_rule["orphan/unowned"] == 1199  # all but the one in the inventory
    assert result.objects == 1200 + 1 + 1  # configmaps, the namespace, the Sync
    assert result.errors == ()
    # Kinds no rule looks at are never read, and the webhook is reported as not installed.
    assert not any(p == "/api/v1/events" for p, _ in api.calls)
    assert result.counts_by_rule["webhook/configuration"] == 1


def test_a_kind_that_cannot_be_read_makes_the_audit_incomplete_not_silent() -> None:
    api = world(cms=3)
    api.forbidden = frozenset({"/api/v1/secrets"})
    result = run(api)
    assert result.errors == ("secrets: /api/v1/secrets is forbidden",)
    assert result.exit_code(Severity.ERROR) == 2
    assert result.counts_by_rule["orphan/unowned"] == 2  # the rest was still audited


def test_without_our_crds_there_is_nothing_of_ours_to_audit_and_no_error() -> None:
    api = world(cms=2)
    del api.items["/apis/kubectl-gitops.dev/v1alpha1/syncs"]
    result = run(api)
    assert result.errors == () and result.counts_by_rule["orphan/unowned"] == 0


def test_a_namespace_scope_lists_that_namespace_and_a_sync_scope_its_label() -> None:
    api = world(cms=2, **{"/api/v1/namespaces/app/configmaps": [configmap("x", "app")],
                          "/api/v1/namespaces/app/secrets": []})
    result = run(api, Scope(frozenset({"app"})))
    assert ("/api/v1/namespaces/app/configmaps", {"limit": "500"}) in api.calls
    assert result.counts_by_rule["orphan/unowned"] == 1
    assert result.counts_by_rule["webhook/configuration"] == 0  # cluster-wide rules stay out
    api = world(cms=2)
    run(api, Scope(frozenset({"app"}), "s"))
    assert ("/api/v1/configmaps", {"limit": "500", "labelSelector": f"{LABEL_SYNC}=s"}) in api.calls


def test_the_webhook_probe_runs_only_for_a_cluster_wide_audit() -> None:
    probed: list[object] = []
    run(world(cms=1), webhook_probe=lambda kube: probed.append(kube) or [])
    run(world(cms=1), Scope(frozenset({"app"})), webhook_probe=lambda kube: probed.append(kube) or [])
    assert len(probed) == 1


def test_reports_replace_the_previous_ones() -> None:
    api = world(cms=3)
    result = run(api)
    old = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "AuditReport",
           "metadata": {"name": "kubectl-gitops-audit", "namespace": "fixed-since",
                        "labels": {"app.kubernetes.io/managed-by": "kubectl-gitops"}}}
    someone_elses = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "AuditReport",
                     "metadata": {"name": "theirs", "namespace": "other"}}
    api.items["/apis/kubectl-gitops.dev/v1alpha1/auditreports"] = [old, someone_elses]
    written = engine.write_reports(cast(Kube, api), result, Scope(), now=NOW)
    assert written == 2
    assert [(r["kind"], r["metadata"].get("namespace")) for r in api.applied] == [
        ("ClusterAuditReport", None), ("AuditReport", "app")]
    assert api.deleted == [("kubectl-gitops-audit", "fixed-since")]


def test_reports_without_the_crds_say_how_to_get_them() -> None:
    api = world(cms=1)

    def refuse(*_: Any, **__: Any) -> JSON:
        raise ApiError(404, "the server could not find the requested resource")

    api.apply = refuse  # type: ignore[method-assign]
    with pytest.raises(engine.AuditFailed, match="kubectl gitops install"):
        engine.write_reports(cast(Kube, api), run(api), Scope(), now=NOW)


def test_prefetching_keeps_order_surfaces_errors_and_stops_with_its_consumer() -> None:
    assert list(engine.prefetched(iter([[{"a": 1}], [{"b": 2}]]))) == [[{"a": 1}], [{"b": 2}]]

    def broken() -> Any:
        yield [{"a": 1}]
        raise ApiError(500, "etcd is down")

    pages = engine.prefetched(broken())
    assert next(pages) == [{"a": 1}]
    with pytest.raises(ApiError, match="etcd is down"):
        next(pages)
    fetched: list[int] = []

    def endless() -> Any:
        for i in range(10_000):
            fetched.append(i)
            yield [{"i": i}]

    early = engine.prefetched(endless())
    next(early)
    early.close()
    import time

    time.sleep(0.5)
    assert len(fetched) <= 3  # the fetcher stopped: at most a page or two ahead


def test_a_probe_that_breaks_makes_the_audit_incomplete_not_a_crash() -> None:
    def broken(kube: object) -> list[Any]:
        raise OSError("connection reset")

    result = run(world(cms=1), webhook_probe=broken)
    assert result.errors == ("webhook probe: OSError: connection reset",)
    assert result.exit_code(Severity.ERROR) == 2
