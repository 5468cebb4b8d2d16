"""Sync lookup and parent fetch for the webhook (kubectl_gitops_webhook.lookup), on a fake API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kubectl_gitops.core.admission import request_from_review
from kubectl_gitops_webhook.lookup import (
    ApiParentFetcher,
    CachedSyncLookup,
    applier_username,
    parent_path,
    sync_info,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "admission"
SYNC_PATH = "/apis/kubectl-gitops.dev/v1alpha1/namespaces/gitops/syncs/shop-apps"
SOURCE_PATH = "/apis/kubectl-gitops.dev/v1alpha1/namespaces/gitops/gitsources/shop"


def sync(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
            "metadata": {"name": "shop-apps", "namespace": "gitops"},
            "spec": {"sourceRef": {"name": "shop"}, "path": "./apps/shop", **spec},
            "status": {"lastAppliedRevision": "main@sha1:abc"}}


SOURCE = {"kind": "GitSource", "metadata": {"name": "shop", "namespace": "gitops"},
          "spec": {"url": "https://github.com/acme/shop.git"}}


class FakeApi:
    def __init__(self, objects: dict[str, dict[str, Any]]) -> None:
        self.objects = objects
        self.gets: list[str] = []

    def __call__(self, path: str) -> dict[str, Any] | None:
        self.gets.append(path)
        return self.objects.get(path)


def test_sync_info_maps_spec_status_and_source() -> None:
    info = sync_info(sync(serviceAccountName="shop-applier", driftGuard="warn", suspend=True), SOURCE)
    assert (info.name, info.namespace, info.path, info.revision) == (
        "shop-apps", "gitops", "./apps/shop", "main@sha1:abc")
    assert info.source_url == "https://github.com/acme/shop.git"
    assert info.appliers == {"system:serviceaccount:gitops:shop-applier"}
    assert info.mode == "warn" and info.suspended is True


def test_default_applier_and_unknown_mode_is_enforce() -> None:
    info = sync_info(sync(driftGuard="Off", suspend="true"), None)
    assert info.appliers == {"system:serviceaccount:kubectl-gitops-system:kubectl-gitops-applier"}
    assert info.mode == "enforce"
    assert info.suspended is False  # only a real boolean suspends
    assert info.source_url == ""
    assert applier_username("team-a", "") == applier_username("x", None)


def test_cached_lookup_reads_sync_and_source_once_per_ttl() -> None:
    now = [100.0]
    api = FakeApi({SYNC_PATH: sync(), SOURCE_PATH: SOURCE})
    lookup = CachedSyncLookup(api, ttl=5.0, clock=lambda: now[0])
    first = lookup("gitops", "shop-apps")
    assert first is not None and first.source_url == "https://github.com/acme/shop.git"
    assert lookup("gitops", "shop-apps") is first
    assert api.gets == [SYNC_PATH, SOURCE_PATH]
    now[0] += 5.0
    lookup("gitops", "shop-apps")
    assert len(api.gets) == 4


def test_cached_lookup_caches_not_found_and_quotes_names() -> None:
    now = [0.0]
    api = FakeApi({})
    lookup = CachedSyncLookup(api, ttl=5.0, clock=lambda: now[0])
    assert lookup("gitops", "a/../b") is None
    assert lookup("gitops", "a/../b") is None
    assert api.gets == ["/apis/kubectl-gitops.dev/v1alpha1/namespaces/gitops/syncs/a%2F..%2Fb"]


def test_parent_path_and_fetch() -> None:
    doc = json.loads((FIXTURES / "deployment_scale.json").read_text())
    req = request_from_review(doc)
    assert parent_path(req) == "/apis/apps/v1/namespaces/shop/deployments/web"
    doc["request"]["resource"] = {"group": "", "version": "v1", "resource": "replicationcontrollers"}
    core = request_from_review(doc)
    assert parent_path(core) == "/api/v1/namespaces/shop/replicationcontrollers/web"
    api = FakeApi({"/apis/apps/v1/namespaces/shop/deployments/web": {"kind": "Deployment"}})
    assert ApiParentFetcher(api)(req) == {"kind": "Deployment"}


def test_parent_cache_is_keyed_by_the_scales_uid_and_resource_version() -> None:
    """A Scale carries its parent's uid and resourceVersion: a parent at that version is reused,
    any other version is read again, so the cache is never stale."""
    doc = json.loads((FIXTURES / "deployment_scale.json").read_text())
    path = "/apis/apps/v1/namespaces/shop/deployments/web"
    meta = doc["request"]["oldObject"]["metadata"]
    parent = {"kind": "Deployment", "metadata": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}}
    api = FakeApi({path: parent})
    fetch = ApiParentFetcher(api)
    req = request_from_review(doc)
    assert fetch(req) == parent and fetch(req) == parent
    assert api.gets == [path]
    meta["resourceVersion"] = "999999"  # the parent moved on (a scale went through, an apply)
    newer = {"kind": "Deployment", "metadata": {"uid": meta["uid"], "resourceVersion": "999999"}}
    api.objects[path] = newer
    assert fetch(request_from_review(doc)) == newer
    meta["uid"] = "another-object-same-name"
    api.objects[path] = {"kind": "Deployment", "metadata": {"uid": "another-object-same-name",
                                                            "resourceVersion": "999999"}}
    assert fetch(request_from_review(doc))["metadata"]["uid"] == "another-object-same-name"  # type: ignore[index]
    assert api.gets == [path, path, path]
    del doc["request"]["oldObject"]
    fetch(request_from_review(doc))
    assert len(api.gets) == 4  # no version to match: always read


def test_a_chart_syncs_source_is_its_helm_repository_not_a_gitsource_of_that_name() -> None:
    chart_sync = sync(sourceRef={"kind": "HelmRepository", "name": "shop"}, chart={"name": "shop"})
    repo = {"kind": "HelmRepository", "spec": {"url": "https://charts.acme.example"}}
    api = FakeApi({SYNC_PATH: chart_sync, SOURCE_PATH: SOURCE,
                   "/apis/kubectl-gitops.dev/v1alpha1/namespaces/gitops/helmrepositories/shop": repo})
    info = CachedSyncLookup(api)("gitops", "shop-apps")
    assert info is not None and info.source_url == "https://charts.acme.example"
