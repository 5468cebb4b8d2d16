"""core/lockdown: each rule a tenant's Sync and its rendered objects are held to, with the rule named."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.core.lockdown import (
    TenantViolation,
    Violation,
    check_objects,
    check_sync,
    check_url,
    file_urls_allowed,
    raise_if,
)
from kubectl_gitops.core.spec import applier_of, parse_sync
from kubectl_gitops.core.tenant import Tenant, parse_tenant

RBAC = "rbac.authorization.k8s.io/v1"
CLUSTER_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Tenant",
                 "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "StorageClass", "PriorityClass"}


def tenant(**spec: Any) -> Tenant:
    base: dict[str, Any] = {"namespaces": ["a-one", "a-two"], "people": {"users": ["alice"], "groups": ["team-a"]},
                            "sourceURLs": ["https://git.example/team-a/*"]}
    return parse_tenant({"metadata": {"name": "a"}, "spec": {**base, **spec}})


def namespaced(_api_version: str, kind: str) -> bool:
    return kind not in CLUSTER_KINDS


def no_live_role(_ns: str, _name: str) -> None:
    return None


def objects(t: Tenant, *objs: dict[str, Any], live_role: Any = no_live_role) -> list[Violation]:
    return check_objects(t, list(objs), namespaced, lambda ns: ns in t.namespaces, live_role)


def rules(found: list[Violation]) -> list[str]:
    return [v.rule for v in found]


def cm(name: str = "x", ns: str = "a-one") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}}


def binding(kind: str, role: str, *subjects: dict[str, str], ns: str = "a-one") -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "b", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": list(subjects) or [{"kind": "ServiceAccount", "name": "default"}]}


def role(name: str, *verbs: str, ns: str = "a-one") -> dict[str, Any]:
    return {"apiVersion": RBAC, "kind": "Role", "metadata": {"name": name, "namespace": ns},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": list(verbs)}]}


def sync(**spec: Any) -> Any:
    return parse_sync({"metadata": {"name": "s", "namespace": "a-one"},
                       "spec": {"sourceRef": {"name": "src"}, "serviceAccountName": "tenant-a-applier", **spec}})


# ------------------------------------------------------------------ the Sync


def test_the_tenant_applier_is_required_and_resolved_from_the_tenant() -> None:
    t = tenant()
    assert check_sync(t, sync(), t.namespaces.__contains__) == []
    assert applier_of(sync(), t.applier) == "system:serviceaccount:kubectl-gitops-system:tenant-a-applier"
    assert applier_of(sync(), None) == "system:serviceaccount:a-one:tenant-a-applier"  # the platform's rule
    for name in ("", "default", "tenant-b-applier", "kubectl-gitops-applier"):
        found = check_sync(t, sync(serviceAccountName=name), t.namespaces.__contains__)
        assert rules(found) == ["applier"], name
        assert "tenant-a-applier" in found[0].detail


@pytest.mark.parametrize(("spec", "rule"), [
    ({"sourceRef": {"name": "src", "namespace": "b-one"}}, "crossNamespaceRefs"),
    ({"dependsOn": [{"name": "x", "namespace": "b-one"}]}, "crossNamespaceRefs"),
    ({"targetNamespace": "b-one"}, "targetNamespace"),
    ({"targetNamespace": "kube-system"}, "targetNamespace"),
])
def test_references_outside_the_tenant_are_refused(spec: dict[str, Any], rule: str) -> None:
    t = tenant()
    assert rules(check_sync(t, sync(**spec), t.namespaces.__contains__)) == [rule]


def test_references_within_the_tenant_pass() -> None:
    t = tenant()
    ok = sync(dependsOn=[{"name": "x", "namespace": "a-two"}, {"name": "y"}], targetNamespace="a-two")
    assert check_sync(t, ok, t.namespaces.__contains__) == []


def test_source_urls_and_local_paths() -> None:
    t = tenant()
    assert check_url(t, "a-one/src", "https://git.example/team-a/app") == []
    assert rules(check_url(t, "a-one/src", "https://git.example/team-b/app")) == ["sourceURLs"]
    # `*` does not let a tenant read the syncing machine's disk: only a file:// glob does.
    star = tenant(sourceURLs=["*"])
    assert not file_urls_allowed(star)
    for local in ("file:///srv/git/team-b", "/srv/git/team-b", "./repo", "FILE:///x"):
        found = check_url(star, "a-one/src", local)
        assert rules(found) == ["sourceURLs"] and "local path" in found[0].detail, local
    allowed = tenant(sourceURLs=["file:///srv/git/team-a/*"])
    assert file_urls_allowed(allowed)
    assert check_url(allowed, "a-one/src", "file:///srv/git/team-a/app") == []
    assert rules(check_url(allowed, "a-one/src", "file:///srv/git/team-b/app")) == ["sourceURLs"]


# ------------------------------------------------------------------ what the Sync renders


def test_own_namespaces_and_allowed_kinds_pass() -> None:
    t = tenant()
    assert objects(t, cm("x", "a-one"), cm("y", "a-two"), role("r", "get"), binding("Role", "r"),
                   binding("ClusterRole", "edit", {"kind": "Group", "name": "team-a"})) == []


@pytest.mark.parametrize(("obj", "rule"), [
    (cm("x", "b-one"), "namespaces"),
    (cm("x", "kube-system"), "namespaces"),
    ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a-three"}}, "kinds.never"),
    ({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "x"}}, "kinds.never"),
    ({"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": "x"}}, "kinds.never"),
    ({"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": "x"}}, "kinds.never"),
    ({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "x"}},
     "kinds.never"),
    ({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
      "metadata": {"name": "x"}}, "kinds.never"),
    ({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "x"}}, "kinds.cluster"),
    (binding("ClusterRole", "cluster-admin"), "roles"),
    (binding("ClusterRole", "admin"), "roles"),
    (binding("ClusterRole", "system:aggregate-to-edit"), "roles"),
    (binding("ClusterRole", "some-platform-role"), "roles"),
    (binding("Role", "not-there"), "roles"),
    (role("r", "get", "escalate"), "roles.verbs"),
    (role("r", "*"), "roles.verbs"),
    (binding("ClusterRole", "edit", {"kind": "User", "name": "mallory"}), "subjects"),
    (binding("ClusterRole", "edit", {"kind": "Group", "name": "system:masters"}), "subjects"),
    (binding("ClusterRole", "edit", {"kind": "ServiceAccount", "name": "x", "namespace": "b-one"}), "subjects"),
    ({"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "GitSource", "metadata": {"name": "g", "namespace": "a-one"},
      "spec": {"url": "https://git.example/team-b/x"}}, "sourceURLs"),
    ({"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync", "metadata": {"name": "s", "namespace": "a-one"},
      "spec": {"sourceRef": {"name": "g"}}}, "applier"),
    ({"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync", "metadata": {"name": "s", "namespace": "a-one"},
      "spec": {"sourceRef": {"name": "g", "namespace": "b-one"}, "serviceAccountName": "tenant-a-applier"}},
     "crossNamespaceRefs"),
])
def test_each_reach_past_the_tenant_is_refused_with_its_rule(obj: dict[str, Any], rule: str) -> None:
    assert rule in rules(objects(tenant(), cm(), obj))


def test_a_binding_to_a_live_role_is_judged_by_that_roles_verbs() -> None:
    t = tenant()

    def live(ns: str, name: str) -> list[dict[str, Any]] | None:
        return [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}] if name == "bad" \
            else ([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}] if name == "good" else None)

    assert objects(t, binding("Role", "good"), live_role=live) == []
    found = objects(t, binding("Role", "bad"), live_role=live)
    assert rules(found) == ["roles.verbs"] and "impersonate" in found[0].detail


def test_kinds_deny_wins_and_cluster_kinds_can_be_allowed() -> None:
    t = tenant(kinds={"deny": ["apps/*"], "cluster": ["storage.k8s.io/StorageClass", "*/ClusterRole"]})
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "a-one"}}
    assert rules(objects(t, deploy)) == ["kinds.deny"]
    sc = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "x"}}
    assert objects(t, sc) == []
    crole = {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "x"}}
    assert rules(objects(t, crole)) == ["kinds.never"]  # never, whatever the Tenant says


def test_every_violation_is_reported_at_once_naming_tenant_and_sync() -> None:
    t = tenant()
    found = objects(t, cm("x", "b-one"), binding("ClusterRole", "cluster-admin"))
    with pytest.raises(TenantViolation) as err:
        raise_if(t, "a-one/s", found, "before applying")
    text = str(err.value)
    assert err.value.reason == "TenantViolation"
    assert "Tenant a refuses Sync a-one/s before applying; nothing of it was applied" in text
    assert "[namespaces] ConfigMap/b-one/x" in text and "[roles] RoleBinding/a-one/b" in text
    raise_if(t, "a-one/s", [], "before applying")  # nothing to say: no error
