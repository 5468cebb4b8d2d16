"""The engine's tenant plumbing: a namespaced applier lists per namespace, a tenant's fetch policy only narrows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from kubectl_gitops.adapters.git import SourcePolicy
from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.core.discovery import ResourceInfo
from kubectl_gitops.core.errors import SourceFailed
from kubectl_gitops.engine.apply import Applier
from kubectl_gitops.engine.source import SourceFetcher
from tests.unit.test_engine_apply import RESOURCES


class ListingKube:
    def __init__(self) -> None:
        self.lists: list[tuple[str, str | None]] = []

    def list(self, info: ResourceInfo, *, label_selector: str = "", namespace: str | None = None,
             page: int = 1000) -> list[dict[str, Any]]:
        self.lists.append((info.kind, namespace))
        return []


KINDS = {("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("rbac.authorization.k8s.io/v1", "ClusterRole")}


def test_a_platform_applier_lists_cluster_wide() -> None:
    kube = ListingKube()
    Applier(cast(Kube, kube), RESOURCES, "s", "ns").live_objects(KINDS)
    assert sorted(kube.lists) == [("ClusterRole", None), ("ConfigMap", None), ("Deployment", None)]


def test_a_tenant_applier_lists_in_each_of_its_namespaces_and_allowed_cluster_kinds_only() -> None:
    kube = ListingKube()
    Applier(cast(Kube, kube), RESOURCES, "s", "a-one", namespaces=("a-one", "a-two"),
            cluster_ok=lambda info: False).live_objects(KINDS)
    assert sorted(kube.lists) == [("ConfigMap", "a-one"), ("ConfigMap", "a-two"), ("Deployment", "a-one"),
                                  ("Deployment", "a-two")]
    kube = ListingKube()
    Applier(cast(Kube, kube), RESOURCES, "s", "a-one", namespaces=("a-one",),
            cluster_ok=lambda info: info.kind == "ClusterRole").live_objects(KINDS)
    assert ("ClusterRole", None) in kube.lists


def test_a_tenant_policy_never_widens_the_machines(tmp_path: Path) -> None:
    open_machine = SourceFetcher(cast(Kube, None), policy=SourcePolicy(allow_file_urls=True))
    assert open_machine.tenant_policy(False).allow_file_urls is False
    assert open_machine.tenant_policy(True).allow_file_urls is True
    closed = SourceFetcher(cast(Kube, None), policy=SourcePolicy(allow_file_urls=False))
    assert closed.tenant_policy(True).allow_file_urls is False


def test_a_fetch_under_a_tenant_policy_refuses_file_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECTL_GITOPS_CACHE", str(tmp_path / "cache"))
    fetcher = SourceFetcher(cast(Kube, None), policy=SourcePolicy(allow_file_urls=True))
    recorded: list[Any] = []
    monkeypatch.setattr(fetcher, "_record", lambda *args: recorded.append(args))
    source = {"metadata": {"name": "src", "namespace": "a-one"},
              "spec": {"url": (tmp_path / "repo").as_uri(), "ref": {"branch": "main"}}}
    with pytest.raises(SourceFailed, match="file:// URLs and local paths are not allowed"):
        fetcher.fetch(source, fetcher.tenant_policy(False))
    assert recorded  # the refusal is recorded on the GitSource like any fetch failure


def test_tenant_status_names_namespaces_syncs_and_the_last_violation() -> None:
    import datetime as dt

    from kubectl_gitops.core.tenant import parse_tenant
    from kubectl_gitops.engine.tenants import MAX_VIOLATION, TenantScope, tenant_status

    scope = TenantScope(parse_tenant({"metadata": {"name": "team-a"}, "spec": {"namespaces": ["a", "b"]}}),
                        ("a", "b"))
    at = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
    quiet = tenant_status(scope, 3, now=at)
    assert quiet == {"namespaces": "a, b", "syncs": 3}
    loud = tenant_status(scope, 3, now=at, violation=("kinds.cluster", "x" * 2000))
    assert loud["lastViolation"]["rule"] == "kinds.cluster"
    assert loud["lastViolation"]["time"] == "2026-11-27T12:00:00Z"
    assert len(loud["lastViolation"]["message"]) == MAX_VIOLATION


def test_a_violation_carries_its_tenant_and_first_rule() -> None:
    import pytest as _pytest

    from kubectl_gitops.core import lockdown
    from kubectl_gitops.core.tenant import parse_tenant

    tenant = parse_tenant({"metadata": {"name": "team-a"}, "spec": {"namespaces": ["a"]}})
    with _pytest.raises(lockdown.TenantViolation) as err:
        lockdown.raise_if(tenant, "a/s", [lockdown.Violation("sourceURLs", "GitSource a/s", "no"),
                                          lockdown.Violation("applier", "Sync a/s", "no")], "before fetching")
    assert (err.value.tenant, err.value.rule) == ("team-a", "sourceURLs")
