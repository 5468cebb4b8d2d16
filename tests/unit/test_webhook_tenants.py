"""The webhook's tenancy adapter: watch-backed Tenants (webhook/tenants.py), /tenancy and the tenant label
(webhook/app.py), and the drift guard expecting a tenant Sync's applier (webhook/lookup.py). No cluster:
list and watch are plain functions, the app runs in Flask's test client."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.adapters.kube import ApiError
from kubectl_gitops.constants import BREAK_GLASS_GROUP, LABEL_TENANT
from kubectl_gitops.core.drift import SyncInfo
from kubectl_gitops_webhook.app import create_app
from kubectl_gitops_webhook.lookup import CachedSyncLookup
from kubectl_gitops_webhook.tenants import ClusterFacts, NotSynced, Watched

FIXTURES = Path(__file__).parent.parent / "fixtures" / "admission"
JSON = dict[str, Any]


def tenant_obj(name: str, namespaces: list[str], users: list[str], rv: str = "1") -> JSON:
    return {"metadata": {"name": name, "resourceVersion": rv},
            "spec": {"namespaces": namespaces, "people": {"users": users}}}


def ns_obj(name: str, labels: dict[str, str] | None = None, rv: str = "1") -> JSON:
    return {"metadata": {"name": name, "resourceVersion": rv, "labels": labels or {}}}


class FakeApi:
    """A list that returns the current items, and scripted watches (a list of events, or an exception)."""

    def __init__(self, items: list[JSON], version: str = "10") -> None:
        self.items = items
        self.version = version
        self.watches: list[list[JSON] | Exception] = []
        self.watched_from: list[str] = []
        self.lists = 0

    def list(self) -> tuple[list[JSON], str]:
        self.lists += 1
        return list(self.items), self.version

    def watch(self, version: str) -> Iterator[JSON]:
        self.watched_from.append(version)
        script = self.watches.pop(0) if self.watches else []
        if isinstance(script, Exception):
            raise script
        yield from script


def test_watched_lists_then_follows_events_from_the_list_version() -> None:
    api = FakeApi([tenant_obj("a", ["a1"], ["alice"])])
    w = Watched("Tenants", api.list, api.watch)
    with pytest.raises(NotSynced, match="has not listed the Tenants"):
        w.items(wait=0)  # never an empty view before the first list
    w.relist()
    assert set(w.items()) == {"a"}
    api.watches.append([
        {"type": "ADDED", "object": tenant_obj("b", ["b1"], ["bob"], rv="11")},
        {"type": "MODIFIED", "object": tenant_obj("a", ["a1", "a2"], ["alice"], rv="12")},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "13"}}},
        {"type": "DELETED", "object": tenant_obj("b", ["b1"], ["bob"], rv="14")},
    ])
    w.watch_once()
    assert api.watched_from == ["10"]
    assert set(w.items()) == {"a"} and w.items()["a"]["spec"]["namespaces"] == ["a1", "a2"]
    assert w.version == "14"
    w.watch_once()  # the next watch starts where the last event left off
    assert api.watched_from == ["10", "14"]


def test_watched_relists_after_410_in_its_thread() -> None:
    api = FakeApi([tenant_obj("a", ["a1"], ["alice"])])
    relisted = threading.Event()
    api.watches.append(ApiError(410, "too old resource version", "Expired"))
    w = Watched("Tenants", api.list, api.watch, backoff=0.01)

    def later_list() -> tuple[list[JSON], str]:
        out = FakeApi.list(api)
        if api.lists >= 2:
            relisted.set()
            w.stop()
        return out

    w._list = later_list
    api.items = [tenant_obj("a", ["a1"], ["alice"]), tenant_obj("c", ["c1"], ["carol"])]
    w.start()
    assert relisted.wait(5), "no re-list after 410"
    assert set(w.items()) == {"a", "c"}


def facts_of(tenants: list[JSON], namespaces: list[JSON], get: dict[str, JSON] | None = None) -> ClusterFacts:
    t = Watched("Tenants", FakeApi(tenants).list, FakeApi([]).watch)
    n = Watched("Namespaces", FakeApi(namespaces).list, FakeApi([]).watch)
    facts = ClusterFacts(t, n, (get or {}).get)
    t.relist()
    n.relist()
    return facts


def test_cluster_facts_parse_once_per_change_and_skip_broken_tenants() -> None:
    facts = facts_of([tenant_obj("a", ["a1"], ["alice"]), {"metadata": {"name": "bad"}, "spec": {}}],
                     [ns_obj("a1"), ns_obj("c-x", {"team": "c"})])
    first = facts.tenants()
    assert [t.name for t in first] == ["a"]
    assert facts.tenants() is first  # cached until the watch changes something
    facts._tenants.apply({"type": "ADDED", "object": {"metadata": {"name": "c", "resourceVersion": "20"},
                                                      "spec": {"namespaceSelector": {"matchLabels": {"team": "c"}}}}})
    assert [t.name for t in facts.tenants()] == ["a", "c"]
    assert facts.tenant_of("c-x") == "c" and facts.tenant_of("a1") == "a" and facts.tenant_of("zz") == ""
    assert facts.namespace_labels("c-x") == {"team": "c"} and facts.namespace_labels("nope") is None
    assert facts.applier_of("a1") == ("tenant-a-applier",
                                      "system:serviceaccount:kubectl-gitops-system:tenant-a-applier")


def test_role_rules_and_cluster_roles_are_read_per_request() -> None:
    role = {"rules": [{"verbs": ["escalate"]}]}
    facts = facts_of([], [], {"/apis/rbac.authorization.k8s.io/v1/namespaces/a1/roles/r": role,
                              "/apis/rbac.authorization.k8s.io/v1/clusterroles/edit": {}})
    assert facts.role_rules("a1", "r") == [{"verbs": ["escalate"]}]
    assert facts.role_rules("a1", "ghost") is None
    assert facts.cluster_role_exists("edit") and not facts.cluster_role_exists("ghost")


def test_a_tenant_sync_is_guarded_for_the_tenant_applier() -> None:
    applier = "system:serviceaccount:kubectl-gitops-system:tenant-a-applier"
    sync = {"metadata": {"name": "s", "namespace": "a1"},
            "spec": {"sourceRef": {"name": "src"}, "serviceAccountName": "tenant-a-applier"}}
    store = {"/apis/kubectl-gitops.dev/v1alpha1/namespaces/a1/syncs/s": sync}
    lookup = CachedSyncLookup(store.get, tenant_applier=lambda ns: ("tenant-a-applier", applier)
                              if ns == "a1" else None)
    info = lookup("a1", "s")
    assert info is not None and info.appliers == frozenset({applier})
    plain = CachedSyncLookup(store.get)
    got = plain("a1", "s")
    assert got is not None and got.appliers == frozenset({"system:serviceaccount:a1:tenant-a-applier"})


# ------------------------------------------------------------------ /tenancy and /mutate


def review(kind: str, namespace: str, user: str, groups: list[str] | None = None, group: str = "") -> JSON:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"}, "operation": "CREATE",
        "name": "x", "namespace": namespace, "userInfo": {"username": user, "groups": groups or []},
        "object": {"metadata": {"name": "x", "namespace": namespace}}}}


class Broken:
    def tenants(self) -> Iterable[Any]:
        raise NotSynced("the webhook has not listed the Tenants yet")

    def __getattr__(self, name: str) -> Any:
        raise NotSynced("not yet")


def client(facts: Any) -> Any:
    return create_app(lambda: (lambda ns, name: None), tenancy_factory=lambda: facts).test_client()


def answer(c: Any, path: str, body: JSON) -> JSON:
    resp = c.post(path, data=json.dumps(body), content_type="application/json")
    assert resp.status_code == 200
    out: JSON = resp.get_json()["response"]
    return out


def test_tenancy_endpoint_refuses_with_the_rule_and_allows_the_platform() -> None:
    c = client(facts_of([tenant_obj("a", ["a1"], ["alice"]), tenant_obj("b", ["b1"], ["bob"])], []))
    out = answer(c, "/tenancy", review("ConfigMap", "b1", "alice"))
    assert out["allowed"] is False and out["status"]["code"] == 403
    assert out["status"]["message"] == ("Tenant a refuses ConfigMap b1/x: namespaces: b1 is not one of a's "
                                        "namespaces (it belongs to Tenant b)")
    assert answer(c, "/tenancy", review("ConfigMap", "b1", "platform-admin"))["allowed"] is True
    assert "kubectl_gitops_webhook_decisions_total{allowed=\"false\",endpoint=\"/tenancy\",reason=\"TenancyDenied\"}" \
        in c.get("/metrics").get_data(as_text=True)


def test_tenancy_fails_closed_until_the_tenants_are_listed_but_break_glass_passes() -> None:
    c = client(Broken())
    out = answer(c, "/tenancy", review("ConfigMap", "a1", "alice"))
    assert out["allowed"] is False and out["status"]["code"] == 500
    assert "tenancy could not decide (NotSynced" in out["status"]["message"]
    assert answer(c, "/tenancy", review("ConfigMap", "a1", "alice", [BREAK_GLASS_GROUP]))["allowed"] is True
    assert c.get("/readyz").status_code == 503
    # /mutate fails open: no tenant label, no refusal, and the applier's own stamps still happen
    assert answer(c, "/mutate", review("ConfigMap", "a1", "alice"))["allowed"] is True
    applier = json.loads((FIXTURES / "configmap_create_by_applier.json").read_text())
    stamps = create_app(lambda: (lambda ns, name: SyncInfo("shop-apps", "gitops", revision="main@sha1:abc",
                                                           appliers=frozenset({"system:serviceaccount:gitops:"
                                                                               "shop-applier"}))),
                        tenancy_factory=Broken).test_client()
    out = answer(stamps, "/mutate", applier)
    assert json.loads(base64.b64decode(out["patch"]))[0]["path"] == "/metadata/annotations"


def test_unreadable_tenancy_review_is_refused() -> None:
    c = client(facts_of([], []))
    resp = c.post("/tenancy", data=b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",'
                                    b'"request":{"uid":"u-9","operation":"NOPE"}}', content_type="application/json")
    assert resp.get_json()["response"] == {"uid": "u-9", "allowed": False, "status": {
        "code": 400, "message": resp.get_json()["response"]["status"]["message"]}}


def test_mutate_stamps_the_tenant_label_on_objects_and_claimed_namespaces() -> None:
    c = client(facts_of([tenant_obj("a", ["a1"], ["alice"])], [ns_obj("a1")]))
    out = answer(c, "/mutate", review("ConfigMap", "a1", "alice"))
    ops = json.loads(base64.b64decode(out["patch"]))
    assert ops == [{"op": "add", "path": "/metadata/labels", "value": {LABEL_TENANT: "a"}}]
    ns = review("Namespace", "a1", "platform-admin")
    ns["request"]["name"] = ns["request"]["object"]["metadata"]["name"] = "a1"  # a Namespace's namespace is itself
    out = answer(c, "/mutate", ns)
    assert json.loads(base64.b64decode(out["patch"]))[0]["value"] == {LABEL_TENANT: "a"}
    assert "patch" not in answer(c, "/mutate", review("ConfigMap", "elsewhere", "alice"))


def test_without_tenancy_there_is_no_endpoint() -> None:
    c = create_app(lambda: (lambda ns, name: SyncInfo("s", "n"))).test_client()
    assert c.post("/tenancy", data=b"{}", content_type="application/json").status_code == 404


class ChunkedResponse:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def stream(self, size: int) -> Iterator[bytes]:
        yield from self.chunks


def test_watch_events_are_split_on_newlines_across_chunks_and_errors_raise() -> None:
    from kubectl_gitops.adapters.kube import _watch_events

    events = [{"type": "ADDED", "object": {"metadata": {"name": "a"}}},
              {"type": "DELETED", "object": {"metadata": {"name": "a"}}}]
    text = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    chunks = [text[:7], text[7:40], text[40:]]
    assert list(_watch_events(ChunkedResponse(chunks), "/x")) == events
    gone = json.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired",
                                                   "message": "too old resource version: 1 (5)"}}).encode() + b"\n"
    with pytest.raises(ApiError, match="too old") as err:
        list(_watch_events(ChunkedResponse([gone]), "/x"))
    assert err.value.status == 410
