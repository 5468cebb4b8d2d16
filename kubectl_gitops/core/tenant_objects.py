"""Everything `kubectl gitops create tenant` puts in the cluster, built purely from the flags.

Order matters and is the order returned: the Tenant first (so a namespace is never, even for a
moment, an unclaimed namespace whose Syncs would run as the platform's applier), then the
namespaces, the applier ServiceAccount (in kubectl-gitops-system, out of the tenant's people's
reach: they can neither impersonate it nor mint its tokens), its RBAC and the people's.

The applier's Roles are written from discovery: every namespaced kind the Tenant allows (deny
wins, never-kinds never) with the verbs an apply and a prune need, and `bind` on exactly the
ClusterRoles the tenant may grant. No `escalate`, `impersonate` or `*` verb: RBAC itself then
refuses what the engine's checks would (a second wall). A kind served after the tenant was
created is not in its Roles until `create tenant` runs again (idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubectl_gitops.constants import API_VERSION, GROUP, KIND_TENANT, LABEL_TENANT
from kubectl_gitops.core.discovery import ResourceInfo
from kubectl_gitops.core.errors import UsageError
from kubectl_gitops.core.lockdown import NEVER
from kubectl_gitops.core.spec import InvalidSpec
from kubectl_gitops.core.tenant import FORBIDDEN_ROLES, Tenant, parse_tenant

JSON = dict[str, Any]
RBAC_V1: Final = "rbac.authorization.k8s.io/v1"
APPLY_VERBS: Final = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
SYSTEM_NAMESPACES: Final = frozenset({"kube-system", "kube-public", "kube-node-lease", "default",
                                      "kubectl-gitops-system"})
APPLIER_ROLE: Final = "kubectl-gitops-tenant-applier"
PEOPLE_BINDING: Final = "kubectl-gitops-tenant-people"
PEOPLE_ROLE: Final = "kubectl-gitops-tenant-syncs"
AGGREGATE_TO_OPERATOR: Final = f"{GROUP}/aggregate-to-tenant-operator"


@dataclass(frozen=True)
class TenantRequest:
    """The flags of `create tenant`."""

    name: str
    namespaces: tuple[str, ...]
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    allow_kinds: tuple[str, ...] = ()
    deny_kinds: tuple[str, ...] = ()
    cluster_kinds: tuple[str, ...] = ()
    source_urls: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


def tenant_object(req: TenantRequest) -> JSON:
    """The Tenant; validated by the same parser the engine and the webhook use."""
    _refuse_reserved(req)
    spec: JSON = {"namespaces": list(req.namespaces)}
    people = {k: list(v) for k, v in (("users", req.users), ("groups", req.groups)) if v}
    if people:
        spec["people"] = people
    kinds = {k: list(v) for k, v in (("allow", req.allow_kinds), ("deny", req.deny_kinds),
                                     ("cluster", req.cluster_kinds)) if v}
    if kinds:
        spec["kinds"] = kinds
    if req.source_urls:
        spec["sourceURLs"] = list(req.source_urls)
    if req.roles:
        spec["roles"] = list(req.roles)
    obj = {"apiVersion": API_VERSION, "kind": KIND_TENANT, "metadata": {"name": req.name}, "spec": spec}
    try:
        parse_tenant(obj)
    except InvalidSpec as err:
        raise UsageError(str(err)) from err
    return obj


def _refuse_reserved(req: TenantRequest) -> None:
    """What the CRD's own rules refuse, said before anything is sent."""
    if not req.namespaces:
        raise UsageError(f"tenant {req.name}: give at least one --namespace")
    for ns in req.namespaces:
        if ns in SYSTEM_NAMESPACES:
            raise UsageError(f"tenant {req.name}: {ns} is a system namespace and can't belong to a tenant")
    for role in req.roles:
        if role in FORBIDDEN_ROLES or role.startswith("system:"):
            raise UsageError(f"tenant {req.name}: --role {role} can never be granted by a tenant")


def tenant_objects(req: TenantRequest, served: Iterable[ResourceInfo]) -> list[JSON]:
    """The Tenant, its namespaces, applier and RBAC, in the order to apply them."""
    obj = tenant_object(req)
    tenant = parse_tenant(obj)
    served = list(served)
    labels = {LABEL_TENANT: tenant.name}
    out: list[JSON] = [obj]
    out += [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": labels}}
            for ns in tenant.namespaces]
    out.append({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": tenant.applier_name, "namespace": tenant.applier_namespace,
                             "labels": labels}})
    out += _applier_cluster_rbac(tenant, served, labels)
    out.append(_operator_impersonation(tenant, labels))
    for ns in tenant.namespaces:
        out += _applier_namespace_rbac(tenant, ns, served, labels)
        out += _people_rbac(tenant, ns, labels)
    out += _people_cluster_rbac(tenant, labels)
    return out


def cluster_role_name(tenant: str, who: str) -> str:
    return f"kubectl-gitops:tenant:{tenant}:{who}"


def applier_rules(tenant: Tenant, served: Iterable[ResourceInfo], *, namespaced: bool) -> list[JSON]:
    """RBAC rules for the kinds this Tenant may hold (per API group), from discovery."""
    by_group: dict[str, set[str]] = {}
    for info in served:
        if info.namespaced != namespaced or (info.group, info.kind) in NEVER or "/" in info.plural:
            continue
        if tenant.kind(info.group, info.kind, namespaced=namespaced).allowed:
            by_group.setdefault(info.group, set()).add(info.plural)
    return [{"apiGroups": [group], "resources": sorted(plurals), "verbs": list(APPLY_VERBS)}
            for group, plurals in sorted(by_group.items())]


def _subject(tenant: Tenant) -> JSON:
    return {"kind": "ServiceAccount", "name": tenant.applier_name, "namespace": tenant.applier_namespace}


def _operator_impersonation(tenant: Tenant, labels: JSON) -> JSON:
    """Impersonating this tenant's applier, for the platform's operators only: aggregated into
    kubectl-gitops-tenant-operator (manifests/install/rbac.yaml), never bound to the tenant."""
    return {"apiVersion": RBAC_V1, "kind": "ClusterRole",
            "metadata": {"name": cluster_role_name(tenant.name, "impersonate"),
                         "labels": {**labels, AGGREGATE_TO_OPERATOR: "true"}},
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"],
                       "resourceNames": [tenant.applier_name]}]}


def _applier_namespace_rbac(tenant: Tenant, ns: str, served: Sequence[ResourceInfo], labels: JSON) -> list[JSON]:
    rules = applier_rules(tenant, served, namespaced=True)
    grantable = [r for r in tenant.roles if r not in FORBIDDEN_ROLES]
    if grantable:
        rules.append({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
                      "resourceNames": grantable})
    meta = {"name": APPLIER_ROLE, "namespace": ns, "labels": labels}
    return [
        {"apiVersion": RBAC_V1, "kind": "Role", "metadata": meta, "rules": rules},
        {"apiVersion": RBAC_V1, "kind": "RoleBinding", "metadata": dict(meta),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": APPLIER_ROLE},
         "subjects": [_subject(tenant)]},
    ]


def _applier_cluster_rbac(tenant: Tenant, served: Sequence[ResourceInfo], labels: JSON) -> list[JSON]:
    """Read its own Tenant, and write only the cluster kinds the Tenant allows (none by default)."""
    name = cluster_role_name(tenant.name, "applier")
    rules: list[JSON] = [{"apiGroups": [GROUP], "resources": ["tenants"], "verbs": ["get"],
                          "resourceNames": [tenant.name]}]
    rules += applier_rules(tenant, served, namespaced=False)
    return _cluster_role_and_binding(name, rules, [_subject(tenant)], labels)


def _people_rbac(tenant: Tenant, ns: str, labels: JSON) -> list[JSON]:
    """`edit` in each namespace, and the Syncs and GitSources there (no aggregated role covers them)."""
    subjects = _people(tenant)
    if not subjects:
        return []
    meta = {"namespace": ns, "labels": labels}
    crds = {"apiGroups": [GROUP], "resources": ["gitsources", "syncs"], "verbs": list(APPLY_VERBS)}
    status = {"apiGroups": [GROUP], "resources": ["gitsources/status", "syncs/status"], "verbs": ["get"]}
    return [
        {"apiVersion": RBAC_V1, "kind": "RoleBinding", "metadata": {"name": PEOPLE_BINDING, **meta},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
         "subjects": subjects},
        {"apiVersion": RBAC_V1, "kind": "Role", "metadata": {"name": PEOPLE_ROLE, **meta},
         "rules": [crds, status]},
        {"apiVersion": RBAC_V1, "kind": "RoleBinding", "metadata": {"name": PEOPLE_ROLE, **meta},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": PEOPLE_ROLE},
         "subjects": subjects},
    ]


def _people_cluster_rbac(tenant: Tenant, labels: JSON) -> list[JSON]:
    subjects = _people(tenant)
    if not subjects:
        return []
    rules: list[JSON] = [{"apiGroups": [GROUP], "resources": ["tenants"], "verbs": ["get"],
                          "resourceNames": [tenant.name]}]
    return _cluster_role_and_binding(cluster_role_name(tenant.name, "people"), rules, subjects, labels)


def _people(tenant: Tenant) -> list[JSON]:
    return ([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in tenant.users]
            + [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in tenant.groups])


def _cluster_role_and_binding(name: str, rules: list[JSON], subjects: list[JSON], labels: JSON) -> list[JSON]:
    meta = {"name": name, "labels": labels}
    return [
        {"apiVersion": RBAC_V1, "kind": "ClusterRole", "metadata": meta, "rules": rules},
        {"apiVersion": RBAC_V1, "kind": "ClusterRoleBinding", "metadata": dict(meta),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
         "subjects": subjects},
    ]

