"""core/tenant_objects: what `create tenant` applies, and that the applier's RBAC stays inside the tenant."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.core.discovery import ResourceInfo
from kubectl_gitops.core.errors import UsageError
from kubectl_gitops.core.tenant import parse_tenant
from kubectl_gitops.core.tenant_objects import TenantRequest, tenant_object, tenant_objects

SERVED = [
    ResourceInfo("", "v1", "ConfigMap", "configmaps", True),
    ResourceInfo("", "v1", "Secret", "secrets", True),
    ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts", True),
    ResourceInfo("", "v1", "ServiceAccount", "serviceaccounts/token", True),
    ResourceInfo("", "v1", "Namespace", "namespaces", False),
    ResourceInfo("apps", "v1", "Deployment", "deployments", True),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "Role", "roles", True),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", True),
    ResourceInfo("rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterroles", False),
    ResourceInfo("storage.k8s.io", "v1", "StorageClass", "storageclasses", False),
    ResourceInfo("kubectl-gitops.dev", "v1alpha1", "Tenant", "tenants", False),
]
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}


def build(**kw: Any) -> list[dict[str, Any]]:
    req = TenantRequest("a", kw.pop("namespaces", ("a-one", "a-two")), **kw)
    return tenant_objects(req, SERVED)


def find(objs: list[dict[str, Any]], kind: str, name: str, ns: str | None = None) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name
                and o["metadata"].get("namespace") == ns)


def test_the_tenant_comes_first_and_parses() -> None:
    objs = build(users=("alice",), groups=("team-a",), source_urls=("https://git.example/a/*",))
    assert objs[0]["kind"] == "Tenant"
    t = parse_tenant(objs[0])
    assert t.namespaces == ("a-one", "a-two") and t.users == ("alice",) and t.source_urls == ("https://git.example/a/*",)
    kinds = [o["kind"] for o in objs]
    assert kinds.index("Namespace") > 0
    for ns in ("a-one", "a-two"):
        assert find(objs, "Namespace", ns)["metadata"]["labels"] == {"kubectl-gitops.dev/tenant": "a"}
    sa = find(objs, "ServiceAccount", "tenant-a-applier", "kubectl-gitops-system")
    assert sa["metadata"]["labels"] == {"kubectl-gitops.dev/tenant": "a"}


def test_the_applier_rbac_covers_only_the_tenants_namespaces_and_kinds() -> None:
    objs = build(deny_kinds=("core/Secret",))
    for ns in ("a-one", "a-two"):
        role = find(objs, "Role", "kubectl-gitops-tenant-applier", ns)
        groups = {tuple(r["apiGroups"]): r for r in role["rules"] if "bind" not in r["verbs"]}
        assert set(groups[("",)]["resources"]) == {"configmaps", "serviceaccounts"}  # no secrets, no subresource
        assert groups[("apps",)]["resources"] == ["deployments"]
        for rule in groups.values():
            assert not FORBIDDEN_VERBS & set(rule["verbs"])
        bind = next(r for r in role["rules"] if "bind" in r["verbs"])
        assert bind["resources"] == ["clusterroles"] and bind["resourceNames"] == ["edit", "view"]
        rb = find(objs, "RoleBinding", "kubectl-gitops-tenant-applier", ns)
        assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "tenant-a-applier",
                                   "namespace": "kubectl-gitops-system"}]
    cluster = find(objs, "ClusterRole", "kubectl-gitops:tenant:a:applier")
    assert cluster["rules"] == [{"apiGroups": ["kubectl-gitops.dev"], "resources": ["tenants"], "verbs": ["get"],
                                 "resourceNames": ["a"]}]
    assert not [o for o in objs if o["kind"] == "ClusterRoleBinding"
                and o["roleRef"]["name"] in ("cluster-admin", "admin", "edit")]


def test_allowed_cluster_kinds_but_never_the_never_kinds() -> None:
    objs = build(cluster_kinds=("storage.k8s.io/*", "*/ClusterRole", "*/Namespace"))
    rules = find(objs, "ClusterRole", "kubectl-gitops:tenant:a:applier")["rules"]
    granted = {r for rule in rules for r in rule["resources"]}
    assert "storageclasses" in granted
    assert not {"clusterroles", "namespaces"} & granted


def test_people_get_edit_and_their_syncs_in_each_namespace_only() -> None:
    objs = build(users=("alice",), groups=("team-a",))
    for ns in ("a-one", "a-two"):
        rb = find(objs, "RoleBinding", "kubectl-gitops-tenant-people", ns)
        assert rb["roleRef"]["kind"] == "ClusterRole" and rb["roleRef"]["name"] == "edit"
        assert {s["name"] for s in rb["subjects"]} == {"alice", "team-a"}
    # Nothing binds them anywhere else, nor to the applier's ServiceAccount namespace.
    assert not [o for o in objs if o["metadata"].get("namespace") == "kubectl-gitops-system"
                and o["kind"] != "ServiceAccount"]
    assert not [o for o in build() if "people" in o["metadata"]["name"]]  # no people, no bindings


@pytest.mark.parametrize(("kw", "text"), [
    ({"namespaces": ()}, "at least one --namespace"),
    ({"namespaces": ("kube-system",)}, "system namespace"),
    ({"namespaces": ("kubectl-gitops-system",)}, "system namespace"),
    ({"roles": ("cluster-admin",)}, "never be granted"),
    ({"namespaces": ("Not_A_Name",)}, "not a namespace name"),
    ({"allow_kinds": ("a/b/c",)}, "GROUP/KIND"),
])
def test_bad_requests_are_usage_errors_before_anything_is_sent(kw: dict[str, Any], text: str) -> None:
    with pytest.raises(UsageError, match=text):
        tenant_object(TenantRequest("a", kw.pop("namespaces", ("a-one",)), **kw))


def test_operators_may_impersonate_the_applier_through_the_aggregated_role_only() -> None:
    from pathlib import Path

    import yaml

    objs = build(users=("alice",))
    role = find(objs, "ClusterRole", "kubectl-gitops:tenant:a:impersonate")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
                              "resourceNames": ["tenant-a-applier"]}]
    assert role["metadata"]["labels"]["kubectl-gitops.dev/aggregate-to-tenant-operator"] == "true"
    assert not [o for o in objs if o.get("roleRef", {}).get("name") == role["metadata"]["name"]]  # never bound
    rbac = list(yaml.safe_load_all((Path(__file__).parents[2] / "manifests/install/rbac.yaml").read_text()))
    aggregate = next(o for o in rbac if o["metadata"]["name"] == "kubectl-gitops-tenant-operator")
    assert aggregate["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"kubectl-gitops.dev/aggregate-to-tenant-operator": "true"}}]
    operator = next(o for o in rbac if o["metadata"]["name"] == "kubectl-gitops-operator")
    assert any("tenants" in r["resources"] and "list" in r["verbs"] for r in operator["rules"])
