"""The Tenant model: parsing with named fields, and the questions tenancy rules ask of it."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.core.spec import InvalidSpec
from kubectl_gitops.core.tenant import Tenant, overlaps, parse_tenant, role_escapes, tenant_for


def tenant(**spec: Any) -> Tenant:
    return parse_tenant({"metadata": {"name": "team-a"}, "spec": {"namespaces": ["team-a"], **spec}})


def test_defaults_are_locked_down() -> None:
    t = tenant()
    assert t.applier == "system:serviceaccount:kubectl-gitops-system:tenant-team-a-applier"
    assert t.kind("apps", "Deployment", namespaced=True).allowed
    cluster = t.kind("rbac.authorization.k8s.io", "ClusterRoleBinding", namespaced=False)
    assert not cluster.allowed and cluster.rule == "kinds.cluster"
    assert not t.source_url("https://example.com/x").allowed  # no URLs unless listed
    assert t.may_suspend and not t.may_relax_guard


def test_kind_globs_deny_wins() -> None:
    t = tenant(kinds={"allow": ["apps/*", "core/ConfigMap"], "deny": ["apps/DaemonSet"],
                      "cluster": ["*/ClusterRole"]})
    assert t.kind("apps", "Deployment", namespaced=True).allowed
    assert t.kind("", "ConfigMap", namespaced=True).allowed
    assert not t.kind("", "Secret", namespaced=True).allowed
    denied = t.kind("apps", "DaemonSet", namespaced=True)
    assert (denied.allowed, denied.rule) == (False, "kinds.deny")
    assert t.kind("rbac.authorization.k8s.io", "ClusterRole", namespaced=False).allowed
    assert not t.kind("example.com", "ConfigMap", namespaced=True).allowed  # core/ means the core group only


def test_source_urls_are_globs() -> None:
    t = tenant(sourceURLs=["https://git.example.com/team-a/*"])
    assert t.source_url("https://git.example.com/team-a/apps").allowed
    refused = t.source_url("https://git.example.com/team-b/apps")
    assert (refused.allowed, refused.rule) == (False, "sourceURLs")


def test_roles_never_admin_and_own_roles_allowed() -> None:
    t = tenant(roles=["edit", "cluster-admin"])
    assert t.role("ClusterRole", "edit").allowed
    assert not t.role("ClusterRole", "cluster-admin").allowed  # listed, still never grantable
    assert not t.role("ClusterRole", "view").allowed  # not listed
    assert t.role("Role", "deployer", own_role=True).allowed
    assert not t.role("Role", "deployer").allowed
    assert role_escapes([{"verbs": ["get"]}, {"verbs": ["bind"]}]) == "bind"
    assert role_escapes([{"verbs": ["get", "list"]}]) == ""


def test_people_and_namespaces() -> None:
    t = tenant(people={"users": ["alice"], "groups": ["team-a"]}, namespaceSelector={"matchLabels": {"t": "a"}})
    assert t.is_person("alice") and t.is_person("bob", ["team-a"]) and not t.is_person("bob", ["x"])
    assert t.claims("team-a") and t.claims("other", {"t": "a"}) and not t.claims("other", {"t": "b"})
    b = parse_tenant({"metadata": {"name": "team-b"}, "spec": {"namespaces": ["team-a", "team-b"]}})
    assert tenant_for([t, b], "team-b") is b
    assert tenant_for([t, b], "platform") is None
    assert overlaps(b, [t, b]) == ["team-a (claimed by Tenant team-a)"]


@pytest.mark.parametrize(("spec", "field"), [
    ({}, "namespaces or namespaceSelector"),
    ({"namespaces": ["Bad_NS"]}, "spec.namespaces"),
    ({"namespaces": ["a"], "kinds": {"allow": ["a/b/c"]}}, "spec.kinds.allow"),
    ({"namespaces": ["a"], "people": {"users": "alice"}}, "spec.people.users"),
    ({"namespaces": ["a"], "permissions": {"suspend": "yes"}}, "spec.permissions.suspend"),
    ({"namespaces": ["a"], "kinds": []}, "spec.kinds"),
])
def test_bad_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSpec, match="Tenant t: ") as err:
        parse_tenant({"metadata": {"name": "t"}, "spec": spec})
    assert field in str(err.value)


def test_an_unbalanced_url_glob_is_refused() -> None:
    with pytest.raises(InvalidSpec, match=r"spec.sourceURLs: 'https://x/\[a' is not a valid glob"):
        tenant(sourceURLs=["https://x/[a"])
