"""Tenancy at admission (kubectl_gitops.core.tenancy): each attack a tenant could try, refused with its rule.

Pure: requests are built as values, the facts are plain (StaticFacts). The e2e counterpart, against
a real API server, is tests/e2e/test_tenancy_admission.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.core.admission import AdmissionRequest, GroupVersionKind, GroupVersionResource, UserInfo
from kubectl_gitops.core.tenancy import StaticFacts, review
from kubectl_gitops.core.tenant import Tenant, parse_tenant

A_APPLIER = "system:serviceaccount:kubectl-gitops-system:tenant-team-a-applier"
RBAC = "rbac.authorization.k8s.io"


def tenant(name: str, **spec: Any) -> Tenant:
    return parse_tenant({"metadata": {"name": name}, "spec": spec})


TEAM_A = tenant("team-a", namespaces=["a1", "a2"], people={"users": ["alice", "amy"], "groups": ["team-a"]},
                sourceURLs=["https://git.example.com/team-a/*"], kinds={"deny": ["core/Secret"]})
TEAM_B = tenant("team-b", namespaces=["b1"], people={"users": ["bob"]})
LABELLED = tenant("team-c", namespaceSelector={"matchLabels": {"team": "c"}}, people={"users": ["carol"]})
FACTS = StaticFacts(
    (TEAM_A, TEAM_B, LABELLED),
    labels={"c-x": {"team": "c"}, "platform": {}},
    roles={("a1", "reader"): [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
           ("a1", "escalator"): [{"apiGroups": [RBAC], "resources": ["roles"], "verbs": ["escalate"]}]},
)


def request(kind: str, *, group: str = "", namespace: str = "", name: str = "x", user: str = "alice",
            groups: tuple[str, ...] = (), op: str = "CREATE", obj: dict[str, Any] | None = None,
            old: dict[str, Any] | None = None, sub: str = "") -> AdmissionRequest:
    body = obj if obj is not None else {"metadata": {"name": name}}
    return AdmissionRequest(
        uid="u1", kind=GroupVersionKind(group, "v1", kind), resource=GroupVersionResource(group, "v1", kind.lower()),
        operation=op, user_info=UserInfo(user, groups=groups), sub_resource=sub, name=name, namespace=namespace,
        object=None if op == "DELETE" else body, old_object=old)


def refused(req: AdmissionRequest, facts: StaticFacts = FACTS) -> str:
    resp = review(req, facts)
    assert not resp.allowed and resp.code == 403, resp
    return resp.message


def allowed(req: AdmissionRequest, facts: StaticFacts = FACTS) -> str:
    resp = review(req, facts)
    assert resp.allowed, resp.message
    return resp.reason


def binding(role_kind: str, role: str, *subjects: dict[str, str], kind: str = "RoleBinding") -> dict[str, Any]:
    return {"metadata": {"name": "x"}, "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
            "subjects": list(subjects)}


def sync(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "s"}, "spec": {"sourceRef": {"name": "src"}, **spec}}


# ------------------------------------------------------------------ who is judged


def test_platform_users_and_controllers_are_not_judged() -> None:
    assert allowed(request("ClusterRoleBinding", group=RBAC, user="platform-admin")) == "NotATenant"
    assert allowed(request("Namespace", name="b1", namespace="b1", user="system:admin")) == "NotATenant"
    assert allowed(request("ConfigMap", namespace="b1", user="system:serviceaccount:kube-system:ns-ctl",
                           op="DELETE")) == "NotATenant"


def test_a_person_stays_in_their_tenants_namespaces() -> None:
    # alice has RBAC rights in b1 (say a RoleBinding there); the webhook still refuses.
    assert refused(request("ConfigMap", namespace="b1")) == (
        "Tenant team-a refuses ConfigMap b1/x: namespaces: b1 is not one of team-a's namespaces "
        "(it belongs to Tenant team-b)")
    assert "namespaces" in refused(request("ConfigMap", namespace="b1", op="DELETE"))
    assert "Tenant team-a" in refused(request("ConfigMap", namespace="b1", user="zed", groups=("team-a",)))
    assert allowed(request("ConfigMap", namespace="a1")) == "TenantAllowed"
    assert allowed(request("ConfigMap", namespace="a2", op="DELETE")) == "TenantAllowed"


def test_the_applier_stays_in_its_namespaces_even_unclaimed_ones() -> None:
    assert "(no Tenant claims it)" in refused(request("ConfigMap", namespace="platform", user=A_APPLIER))
    assert "it belongs to Tenant team-b" in refused(request("Deployment", group="apps", namespace="b1",
                                                            user=A_APPLIER))
    # a person in a namespace no Tenant claims: the platform's, RBAC decides
    assert allowed(request("ConfigMap", namespace="platform")) == "PlatformNamespace"


def test_namespaces_claimed_by_label_are_looked_up() -> None:
    assert allowed(request("ConfigMap", namespace="c-x", user="carol")) == "TenantAllowed"
    assert "team-c" in refused(request("ConfigMap", namespace="a1", user="carol"))


def test_a_person_of_two_tenants_is_judged_by_the_namespace_owner() -> None:
    both = StaticFacts((TEAM_A, tenant("team-b", namespaces=["b1"], people={"users": ["alice"]})))
    assert allowed(request("Secret", namespace="b1"), both) == "TenantAllowed"  # team-b allows Secrets
    assert "kinds.deny" in refused(request("Secret", namespace="a1"), both)


# ------------------------------------------------------------------ kinds


def test_kinds_deny_and_allow() -> None:
    assert refused(request("Secret", namespace="a1")) == (
        "Tenant team-a refuses Secret a1/x: kinds.deny: core/Secret is denied")
    narrow = StaticFacts((tenant("team-a", namespaces=["a1"], people={"users": ["alice"]},
                                 kinds={"allow": ["apps/*"]}),))
    assert "kinds.allow: core/ConfigMap is not in the allowed kinds" in refused(
        request("ConfigMap", namespace="a1"), narrow)
    assert allowed(request("ConfigMap", namespace="a1", op="DELETE"), narrow)  # cleanup stays possible


@pytest.mark.parametrize(("kind", "group"), [("ClusterRoleBinding", RBAC), ("ClusterRole", RBAC),
                                             ("PersistentVolume", ""), ("StorageClass", "storage.k8s.io")])
def test_cluster_scoped_kinds_refused_by_default(kind: str, group: str) -> None:
    message = refused(request(kind, group=group, user=A_APPLIER))
    assert message == (f"Tenant team-a refuses {kind} x: kinds.cluster: cluster-scoped "
                       f"{group or 'core'}/{kind} is not allowed")
    assert "kinds.cluster" in refused(request(kind, group=group, op="DELETE"))


def test_cluster_kinds_allowed_when_listed_still_judge_the_binding() -> None:
    loose = StaticFacts((tenant("team-a", namespaces=["a1"], people={"users": ["alice"]},
                                kinds={"cluster": [f"{RBAC}/*"]}),))
    ok = binding("ClusterRole", "view", {"kind": "User", "name": "alice"}, kind="ClusterRoleBinding")
    assert allowed(request("ClusterRoleBinding", group=RBAC, obj=ok), loose)
    bad = binding("ClusterRole", "cluster-admin", {"kind": "User", "name": "alice"})
    assert "roles: ClusterRole cluster-admin is never grantable" in refused(
        request("ClusterRoleBinding", group=RBAC, obj=bad), loose)
    escalating = {"metadata": {"name": "x"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
    assert "roles: a role granting '*'" in refused(request("ClusterRole", group=RBAC, obj=escalating), loose)
    aggregated = {"metadata": {"name": "x"}, "aggregationRule": {"clusterRoleSelectors": []}}
    assert "aggregated" in refused(request("ClusterRole", group=RBAC, obj=aggregated), loose)


@pytest.mark.parametrize(("kind", "group", "name"), [
    ("Tenant", "kubectl-gitops.dev", "team-a"),
    ("Tenant", "kubectl-gitops.dev", "team-z"),
    ("CustomResourceDefinition", "apiextensions.k8s.io", "syncs.kubectl-gitops.dev"),
    ("ValidatingWebhookConfiguration", "admissionregistration.k8s.io", "x"),
    ("MutatingWebhookConfiguration", "admissionregistration.k8s.io", "x"),
    ("ValidatingAdmissionPolicyBinding", "admissionregistration.k8s.io", "x"),
    ("Namespace", "", "a1"),
])
@pytest.mark.parametrize("op", ["CREATE", "UPDATE", "DELETE"])
def test_protected_kinds_never_writable_even_when_listed(kind: str, group: str, name: str, op: str) -> None:
    everything = StaticFacts((tenant("team-a", namespaces=["a1"], people={"users": ["alice"]},
                                     kinds={"cluster": ["*"]}),))
    ns = name if kind == "Namespace" else ""
    message = refused(request(kind, group=group, name=name, namespace=ns, op=op), everything)
    assert message.startswith(f"Tenant team-a refuses {kind} {name}: protected: "), message


def test_subresources_are_judged_by_namespace_only() -> None:
    assert allowed(request("Scale", group="autoscaling", namespace="a1", op="UPDATE", sub="scale"))
    assert "namespaces" in refused(request("Scale", group="autoscaling", namespace="b1", op="UPDATE", sub="scale"))


# ------------------------------------------------------------------ RoleBindings


def test_binding_cluster_admin_or_admin_refused() -> None:
    for role in ("cluster-admin", "admin"):
        message = refused(request("RoleBinding", group=RBAC, namespace="a1",
                                  obj=binding("ClusterRole", role, {"kind": "User", "name": "amy"})))
        assert message == (f"Tenant team-a refuses RoleBinding a1/x: roles: ClusterRole {role} is never "
                           f"grantable by a tenant")


def test_binding_an_escalating_role_refused() -> None:
    message = refused(request("RoleBinding", group=RBAC, namespace="a1",
                              obj=binding("Role", "escalator", {"kind": "User", "name": "amy"})))
    assert "roles: Role a1/escalator grants 'escalate'" in message
    assert "does not exist" in refused(request("RoleBinding", group=RBAC, namespace="a1",
                                               obj=binding("Role", "ghost", {"kind": "User", "name": "amy"})))
    for verb in ("bind", "impersonate", "*", "escalate"):
        role = {"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": [verb]}]}
        assert f"roles: a role granting {verb!r}" in refused(request("Role", group=RBAC, namespace="a1", obj=role))


def test_binding_to_outsiders_refused() -> None:
    for subject, text in (({"kind": "User", "name": "mallory"}, "User mallory is not one of team-a's people"),
                          ({"kind": "Group", "name": "system:authenticated"}, "Group system:authenticated"),
                          ({"kind": "ServiceAccount", "name": "ci", "namespace": "b1"},
                           "ServiceAccount b1/ci is not in one of team-a's namespaces"),
                          ({"kind": "ServiceAccount", "name": "tenant-team-a-applier",
                            "namespace": "kubectl-gitops-system"},
                           "ServiceAccount kubectl-gitops-system/tenant-team-a-applier")):
        message = refused(request("RoleBinding", group=RBAC, namespace="a1",
                                  obj=binding("ClusterRole", "edit", subject)))
        assert "subjects: " + text in message, message


def test_legitimate_bindings_pass() -> None:
    ok = binding("ClusterRole", "edit", {"kind": "User", "name": "amy"}, {"kind": "Group", "name": "team-a"},
                 {"kind": "ServiceAccount", "name": "ci"},
                 {"kind": "ServiceAccount", "name": "ci", "namespace": "a2"})
    assert allowed(request("RoleBinding", group=RBAC, namespace="a1", obj=ok)) == "TenantAllowed"
    assert allowed(request("RoleBinding", group=RBAC, namespace="a1",
                           obj=binding("Role", "reader", {"kind": "User", "name": "amy"})))
    assert "not among the grantable roles" in refused(request(
        "RoleBinding", group=RBAC, namespace="a1", obj=binding("ClusterRole", "secret-reader",
                                                                {"kind": "User", "name": "amy"})))


# ------------------------------------------------------------------ GitSources and Syncs


def test_git_source_urls() -> None:
    def source(url: str) -> AdmissionRequest:
        return request("GitSource", group="kubectl-gitops.dev", namespace="a1",
                       obj={"metadata": {"name": "src"}, "spec": {"url": url}})

    assert allowed(source("https://git.example.com/team-a/apps"))
    assert refused(source("https://git.example.com/team-b/apps")) == (
        "Tenant team-a refuses GitSource a1/x: sourceURLs: https://git.example.com/team-b/apps matches none of "
        "https://git.example.com/team-a/*")


def test_sync_must_apply_as_the_tenant_applier() -> None:
    def as_sync(obj: dict[str, Any], **kw: Any) -> AdmissionRequest:
        return request("Sync", group="kubectl-gitops.dev", namespace="a1", obj=obj, **kw)

    assert allowed(as_sync(sync(serviceAccountName="tenant-team-a-applier")))
    assert "applier: a Sync of team-a applies as serviceAccountName 'tenant-team-a-applier', not no " \
           "serviceAccountName (the platform's applier)" in refused(as_sync(sync()))
    assert "not serviceAccountName 'tenant-team-b-applier'" in refused(
        as_sync(sync(serviceAccountName="tenant-team-b-applier")))
    assert "targetNamespace b1 is not one of team-a's namespaces" in refused(
        as_sync(sync(serviceAccountName="tenant-team-a-applier", targetNamespace="b1")))


def test_sync_permissions() -> None:
    strict = StaticFacts((tenant("team-a", namespaces=["a1"], people={"users": ["alice"]},
                                 permissions={"suspend": False}),))
    mine = {"serviceAccountName": "tenant-team-a-applier"}

    def as_sync(spec: dict[str, Any], old: dict[str, Any] | None = None) -> AdmissionRequest:
        return request("Sync", group="kubectl-gitops.dev", namespace="a1", obj=sync(**spec),
                       op="UPDATE" if old else "CREATE", old=sync(**old) if old else None)

    assert "permissions.suspend" in refused(as_sync({**mine, "suspend": True}), strict)
    assert allowed(as_sync({**mine, "suspend": True}, old={**mine, "suspend": True}), strict)  # unchanged
    assert allowed(as_sync({**mine, "suspend": True}))  # default: may suspend
    for mode in ("warn", "off"):
        assert "permissions.relaxDriftGuard: driftGuard " + mode in refused(as_sync({**mine, "driftGuard": mode}))
    relaxed = StaticFacts((tenant("team-a", namespaces=["a1"], people={"users": ["alice"]},
                                  permissions={"relaxDriftGuard": True}),))
    assert allowed(as_sync({**mine, "driftGuard": "off"}), relaxed)


# ------------------------------------------------------------------ Tenant objects


def tenant_req(spec: dict[str, Any], name: str = "team-d", user: str = "platform-admin") -> AdmissionRequest:
    return request("Tenant", group="kubectl-gitops.dev", name=name, user=user,
                   obj={"metadata": {"name": name}, "spec": spec})


def test_tenant_objects_are_validated_for_anyone() -> None:
    assert allowed(tenant_req({"namespaces": ["d1"]})) == "TenantValid"
    assert allowed(tenant_req({"namespaces": ["a1", "a2"]}, name="team-a"))  # its own namespaces
    assert refused(tenant_req({"namespaces": ["d1", "a2"]})) == (
        "Tenant team-d is refused: Tenant team-d: spec.namespaces: a2 (claimed by Tenant team-a); "
        "a namespace belongs to one Tenant")
    assert "spec.roles: ClusterRole ghost does not exist" in refused(tenant_req({"namespaces": ["d1"],
                                                                                "roles": ["ghost"]}))
    assert "spec.kinds.allow: 'apps/[' is not a valid glob" in refused(
        tenant_req({"namespaces": ["d1"], "kinds": {"allow": ["apps/["]}}))
    assert "spec.applier: kubectl-gitops-system/ci is not seen" in refused(tenant_req({"namespaces": ["d1"],
                                                                                "applier": {"name": "ci"}}))
    assert "spec.applier: ops/tenant-d is not seen" in refused(tenant_req({"namespaces": ["d1"], "applier": {
        "namespace": "ops", "name": "tenant-d"}}))
    assert "spec.applier.namespace: d1" in refused(tenant_req({"namespaces": ["d1"], "applier": {"namespace": "d1"}}))
    assert "spec.people.users: system:admin" in refused(tenant_req({"namespaces": ["d1"],
                                                                    "people": {"users": ["system:admin"]}}))
    assert "give namespaces or namespaceSelector" in refused(tenant_req({}))
    assert allowed(request("Tenant", group="kubectl-gitops.dev", name="team-a", user="platform-admin", op="DELETE"))


def test_a_tenant_never_writes_a_tenant() -> None:
    for user in ("alice", A_APPLIER):
        for name in ("team-a", "team-b", "team-z"):
            message = refused(tenant_req({"namespaces": ["z"]}, name=name, user=user))
            assert message == (f"Tenant team-a refuses Tenant {name}: protected: Tenants are the platform's; "
                               f"a tenant never writes one")


def test_connect_is_not_judged() -> None:
    assert allowed(request("PodExecOptions", namespace="b1", op="CONNECT")) == "NotJudged"
