"""Tenancy at admission: nothing a tenant's applier or people send may reach past its Tenant (pure).

`review(request, facts)` is the whole decision, with the same shape as the drift guard
(core/drift.py): the webhook parses, the adapter answers the few questions in `Facts` (the
Tenants from a watch-backed cache, a namespace's labels, the rules of a Role a RoleBinding
references, whether a ClusterRole exists), and the answer comes from here. The rules, in order
(docs/tenancy.md, "At admission", says what each guarantees and what is left to RBAC):

1. Tenant objects are validated for anyone: a spec that does not parse, namespaces another
   Tenant already lists, a ClusterRole in `roles` that does not exist, an invalid glob, an
   applier living in the tenant's own namespaces (its people could mint its tokens), an applier
   not named `kubectl-gitops-system/tenant-*` or `system:` users among its people (the
   admission entries never send their requests) are refused, naming the field.
2. Identity comes from `userInfo` only: a request is judged as a tenant's when its username is
   a Tenant's applier, or it is one of the Tenant's people (users, groups). Anyone else (the
   platform's admins, controllers, the default applier) is not judged here: RBAC and the drift
   guard decide, as before Tenants existed.
3. `protected`: a Tenant, the project's CRDs, webhook and admission-policy configurations and
   Namespaces are never written by a tenant, whatever its Tenant says.
4. `namespaces`: a namespaced request must be in a namespace of the tenant judging it. A person
   of several Tenants is judged by the one that claims the namespace. A namespace no Tenant
   claims is the platform's: an applier is refused there, a person is left to RBAC.
5. `kinds.allow` / `kinds.deny` / `kinds.cluster`: the kind must be allowed (deny wins; a
   cluster-scoped kind only if `kinds.cluster` lists it). Deletes are judged by 3 and 4 only (and
   `kinds.cluster` for cluster-scoped objects), so a kind denied later can still be cleaned up.
6. Content: RoleBindings (and allowed ClusterRoleBindings) grant only grantable roles (`roles`;
   a Role with escalate/bind/impersonate/* never; cluster-admin/admin never) to the tenant's own
   subjects only (`subjects`); Roles may not carry those verbs (`roles`); a GitSource's URL must
   match `sourceURLs`; a Sync must apply as the tenant's applier (`applier`: its
   serviceAccountName is the applier's name, the engine resolves the applier's namespace from the
   Tenant, since a Sync can only name an account by name), stay in the tenant's namespaces
   (`namespaces`: targetNamespace), and may be suspended or have its drift guard relaxed only as
   `permissions` allow (judged when the value changes).

Every refusal is a 403 whose message names the tenant, the object and the rule:
`Tenant team-a refuses ClusterRoleBinding x: kinds.cluster: cluster-scoped
rbac.authorization.k8s.io/ClusterRoleBinding is not allowed`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from kubectl_gitops.constants import GROUP, KIND_SOURCE, KIND_SYNC, KIND_TENANT, SYSTEM_NAMESPACE
from kubectl_gitops.core.admission import AdmissionRequest, AdmissionResponse, allow
from kubectl_gitops.core.spec import InvalidSpec
from kubectl_gitops.core.tenant import Tenant, Verdict, kind_id, overlaps, parse_tenant, role_escapes, tenant_for

JSON = dict[str, Any]
RBAC: Final = "rbac.authorization.k8s.io"
ADMISSION_GROUPS: Final = frozenset({"admissionregistration.k8s.io"})
BINDINGS: Final = frozenset({"RoleBinding", "ClusterRoleBinding"})
ROLES: Final = frozenset({"Role", "ClusterRole"})
RELAXED_GUARD: Final = frozenset({"warn", "off"})
APPLIER_PREFIX: Final = f"system:serviceaccount:{SYSTEM_NAMESPACE}:tenant-"
"""What the tenancy webhook entries' matchConditions send: appliers must be named so."""


class Facts(Protocol):
    """What the adapter looks up for `review`; every method may be called zero or more times."""

    def tenants(self) -> Sequence[Tenant]:
        """Every Tenant that parses (from a cache kept current by a watch)."""
        ...

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        """The namespace's labels, or None when it does not exist (or is not known)."""
        ...

    def role_rules(self, namespace: str, name: str) -> Sequence[Mapping[str, Any]] | None:
        """The rules of Role `namespace/name`, or None when it does not exist."""
        ...

    def cluster_role_exists(self, name: str) -> bool:
        ...


@dataclass(frozen=True)
class StaticFacts:
    """Facts from plain values (tests, benchmarks, and a snapshot the adapter already holds)."""

    all_tenants: tuple[Tenant, ...] = ()
    labels: Mapping[str, Mapping[str, str]] | None = None
    roles: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]] | None = None
    cluster_roles: frozenset[str] = frozenset({"edit", "view", "admin", "cluster-admin"})

    def tenants(self) -> Sequence[Tenant]:
        return self.all_tenants

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        return (self.labels or {}).get(namespace)

    def role_rules(self, namespace: str, name: str) -> Sequence[Mapping[str, Any]] | None:
        return (self.roles or {}).get((namespace, name))

    def cluster_role_exists(self, name: str) -> bool:
        return name in self.cluster_roles


class Refusal(Exception):
    """One rule of one Tenant refused the request (internal: becomes a 403)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


# ------------------------------------------------------------------ entry point


def review(req: AdmissionRequest, facts: Facts) -> AdmissionResponse:
    """Judge one admission request against the Tenants."""
    if req.operation == "CONNECT":
        return allow(req, "NotJudged")
    if _is(req, GROUP, KIND_TENANT) and not req.sub_resource:
        refused = _judge_tenant_write(req, facts)
        if refused is not None:
            return refused
        return _validate_tenant(req, facts)
    tenants = facts.tenants()
    actors = [t for t in tenants if _acts_for(req, t)]
    if not actors:
        return allow(req, "NotATenant")
    if req.namespace and not _is(req, "", "Namespace"):
        return _judge_namespaced(req, facts, tenants, actors)
    return _judge_cluster(req, facts, actors)


def refuses(req: AdmissionRequest, tenant: str, rule: str, detail: str) -> AdmissionResponse:
    """The 403 naming the tenant, the object and the rule."""
    return AdmissionResponse(uid=req.uid, allowed=False, code=403, reason="TenancyDenied",
                             message=f"Tenant {tenant} refuses {describe(req)}: {rule}: {detail}")


def describe(req: AdmissionRequest) -> str:
    """`Kind namespace/name` (or `Kind name` when cluster-scoped) of the object a request is about."""
    name = req.name or _meta(req.object).get("name") or f"{_meta(req.object).get('generateName') or ''}*"
    where = f"{req.namespace}/{name}" if req.namespace and not _is(req, "", "Namespace") else str(name)
    return f"{req.kind.kind} {where}"


# ------------------------------------------------------------------ who is judged


def _acts_for(req: AdmissionRequest, tenant: Tenant) -> bool:
    user = req.user_info
    return user.username == tenant.applier or tenant.is_person(user.username, user.groups)


def _judge_namespaced(req: AdmissionRequest, facts: Facts, tenants: Sequence[Tenant],
                      actors: Sequence[Tenant]) -> AdmissionResponse:
    owner = tenant_for(tenants, req.namespace, _labels_if_needed(facts, tenants, req.namespace))
    tenant = owner if owner is not None and owner in actors else None
    if tenant is None:
        judged = next((t for t in actors if req.user_info.username == t.applier), None)
        if owner is None and judged is None:
            return allow(req, "PlatformNamespace")  # a person outside any tenant: RBAC decides
        judged = judged or actors[0]
        whose = f"it belongs to Tenant {owner.name}" if owner is not None else "no Tenant claims it"
        return refuses(req, judged.name, "namespaces",
                       f"{req.namespace} is not one of {judged.name}'s namespaces ({whose})")
    try:
        _check(req, facts, tenant, namespaced=True)
    except Refusal as no:
        return refuses(req, tenant.name, no.rule, no.detail)
    return allow(req, "TenantAllowed")


def _judge_cluster(req: AdmissionRequest, facts: Facts, actors: Sequence[Tenant]) -> AdmissionResponse:
    first: tuple[Tenant, Refusal] | None = None
    for tenant in sorted(actors, key=lambda t: t.name):
        try:
            _check(req, facts, tenant, namespaced=False)
        except Refusal as no:
            first = first or (tenant, no)
            continue
        return allow(req, "TenantAllowed")
    assert first is not None
    return refuses(req, first[0].name, first[1].rule, first[1].detail)


def _labels_if_needed(facts: Facts, tenants: Sequence[Tenant], namespace: str) -> Mapping[str, str] | None:
    # Only a selector needs the labels; claims by name cost no lookup.
    if any(t.namespace_labels for t in tenants) and not any(namespace in t.namespaces for t in tenants):
        return facts.namespace_labels(namespace)
    return None


# ------------------------------------------------------------------ the rules


def _check(req: AdmissionRequest, facts: Facts, tenant: Tenant, *, namespaced: bool) -> None:
    """Raise Refusal for the first rule of `tenant` the request breaks."""
    _protected(req)
    group, kind = req.kind.group, req.kind.kind
    if req.sub_resource:
        return  # status/scale of an object in the tenant's namespace: the object itself was judged
    if req.operation == "DELETE" and namespaced:
        return
    _verdict(tenant.kind(group, kind, namespaced=namespaced))
    obj = req.object
    if req.operation == "DELETE" or obj is None:
        return
    if group == RBAC and kind in BINDINGS:
        _binding(req, facts, tenant, obj)
    elif group == RBAC and kind in ROLES:
        _role_object(obj)
    elif group == GROUP and kind == KIND_SOURCE:
        _verdict(tenant.source_url(str(_spec(obj).get("url") or "")))
    elif group == GROUP and kind == KIND_SYNC:
        _sync(req, facts, tenant, obj)


def _protected(req: AdmissionRequest) -> None:
    group, kind = req.kind.group, req.kind.kind
    what = kind_id(group, kind)
    if group == GROUP and kind == KIND_TENANT:
        raise Refusal("protected", "Tenants are the platform's; a tenant never writes one")
    if group == "apiextensions.k8s.io" and kind == "CustomResourceDefinition" and \
            (req.name or _meta(req.object).get("name") or "").endswith(f".{GROUP}"):
        raise Refusal("protected", f"the {GROUP} CRDs are the platform's")
    if group in ADMISSION_GROUPS:
        raise Refusal("protected", f"{what} decides admission; a tenant never writes one")
    if group == "" and kind == "Namespace":
        raise Refusal("protected", "Namespaces are the platform's (they say which Tenant owns what)")


def _verdict(verdict: Verdict) -> None:
    if not verdict.allowed:
        raise Refusal(verdict.rule, verdict.detail)


def _binding(req: AdmissionRequest, facts: Facts, tenant: Tenant, obj: Mapping[str, Any]) -> None:
    ref = _map(obj.get("roleRef"))
    ref_kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    own = ref_kind == "Role" and bool(req.namespace)
    _verdict(tenant.role(ref_kind, ref_name, own_role=own))
    if ref_kind == "Role":
        rules = facts.role_rules(req.namespace, ref_name)
        if rules is None:
            raise Refusal("roles", f"Role {req.namespace}/{ref_name} does not exist (create the Role first)")
        verb = role_escapes(rules)
        if verb:
            raise Refusal("roles", f"Role {req.namespace}/{ref_name} grants {verb!r}, which would let its "
                                   f"holders leave the tenant")
    for subject in obj.get("subjects") or []:
        _subject(facts, tenant, _map(subject), req.namespace)


def _subject(facts: Facts, tenant: Tenant, subject: Mapping[str, Any], namespace: str) -> None:
    kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "")
    if kind == "User" and name in tenant.users:
        return
    if kind == "Group" and name in tenant.groups:
        return
    if kind == "ServiceAccount":
        sa_ns = str(subject.get("namespace") or namespace)
        labels = facts.namespace_labels(sa_ns) if tenant.namespace_labels else None
        if sa_ns and tenant.claims(sa_ns, labels):
            return
        raise Refusal("subjects", f"ServiceAccount {sa_ns}/{name} is not in one of {tenant.name}'s namespaces")
    raise Refusal("subjects", f"{kind or 'subject'} {name} is not one of {tenant.name}'s people")


def _role_object(obj: Mapping[str, Any]) -> None:
    rules = obj.get("rules")
    verb = role_escapes([_map(r) for r in rules] if isinstance(rules, list) else [])
    if verb:
        raise Refusal("roles", f"a role granting {verb!r} would let its holders leave the tenant")
    if obj.get("aggregationRule") is not None:
        raise Refusal("roles", "an aggregated ClusterRole gathers rules the tenant does not choose")


def _sync(req: AdmissionRequest, facts: Facts, tenant: Tenant, obj: Mapping[str, Any]) -> None:
    spec, old = _spec(obj), _spec(req.old_object)
    account = str(spec.get("serviceAccountName") or "")
    if account != tenant.applier_name:
        got = f"serviceAccountName {account!r}" if account else "no serviceAccountName (the platform's applier)"
        raise Refusal("applier", f"a Sync of {tenant.name} applies as serviceAccountName "
                                 f"{tenant.applier_name!r}, not {got}")
    target = str(spec.get("targetNamespace") or "")
    if target and not tenant.claims(target, facts.namespace_labels(target) if tenant.namespace_labels else None):
        raise Refusal("namespaces", f"targetNamespace {target} is not one of {tenant.name}'s namespaces")
    if spec.get("suspend") is True and old.get("suspend") is not True and not tenant.may_suspend:
        raise Refusal("permissions.suspend", f"{tenant.name}'s Syncs may not be suspended")
    guard = spec.get("driftGuard")
    if guard in RELAXED_GUARD and guard != old.get("driftGuard") and not tenant.may_relax_guard:
        raise Refusal("permissions.relaxDriftGuard", f"driftGuard {guard} is not allowed for {tenant.name}")


# ------------------------------------------------------------------ Tenant objects


def _judge_tenant_write(req: AdmissionRequest, facts: Facts) -> AdmissionResponse | None:
    actors = [t for t in facts.tenants() if _acts_for(req, t)]
    if not actors:
        return None
    return refuses(req, actors[0].name, "protected", "Tenants are the platform's; a tenant never writes one")


def _validate_tenant(req: AdmissionRequest, facts: Facts) -> AdmissionResponse:
    if req.operation not in ("CREATE", "UPDATE") or req.object is None:
        return allow(req, "NotJudged")
    try:
        tenant = parse_tenant(req.object)
        _tenant_rules(tenant, facts)
    except InvalidSpec as err:
        return AdmissionResponse(uid=req.uid, allowed=False, code=403, reason="TenantInvalid",
                                 message=f"{describe(req)} is refused: {err}")
    return allow(req, "TenantValid")


def _tenant_rules(tenant: Tenant, facts: Facts) -> None:
    where = f"Tenant {tenant.name}: spec"
    clash = overlaps(tenant, facts.tenants())
    if clash:
        raise InvalidSpec(f"{where}.namespaces: {', '.join(clash)}; a namespace belongs to one Tenant")
    for role in tenant.roles:
        if not facts.cluster_role_exists(role):
            raise InvalidSpec(f"{where}.roles: ClusterRole {role} does not exist")
    if tenant.claims(tenant.applier_namespace, None):
        raise InvalidSpec(f"{where}.applier.namespace: {tenant.applier_namespace} is one of the tenant's "
                          f"namespaces, where its people could act as the applier")
    if not tenant.applier.startswith(APPLIER_PREFIX):
        raise InvalidSpec(f"{where}.applier: {tenant.applier_namespace}/{tenant.applier_name} is not seen by the "
                          f"admission webhook; an applier is a ServiceAccount named tenant-* in {SYSTEM_NAMESPACE}")
    system = [u for u in tenant.users if u.startswith("system:")]
    if system:
        raise InvalidSpec(f"{where}.people.users: {system[0]} is a system identity, not a person")
    for field, globs in (("sourceURLs", tenant.source_urls), ("kinds.allow", tenant.allow_kinds),
                         ("kinds.deny", tenant.deny_kinds), ("kinds.cluster", tenant.cluster_kinds)):
        for glob in globs:
            _check_glob(f"{where}.{field}", glob)


def _check_glob(where: str, glob: str) -> None:
    try:
        fnmatch.translate(glob)
        fnmatch.fnmatchcase("", glob)
    except Exception as err:  # re.error and friends: whatever fnmatch can't compile
        raise InvalidSpec(f"{where}: {glob!r} is not a valid glob ({err})") from None
    if "[]" in glob or "[!]" in glob:
        raise InvalidSpec(f"{where}: {glob!r} is not a valid glob (empty [ ])")


# ------------------------------------------------------------------ small helpers


def _is(req: AdmissionRequest, group: str, kind: str) -> bool:
    return req.kind.group == group and req.kind.kind == kind


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return _map((obj or {}).get("metadata"))


def _spec(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return _map((obj or {}).get("spec"))
