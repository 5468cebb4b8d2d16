"""The cluster facts every audit rule may consult, gathered once per run (pure).

The reader lists the few small collections rules need as a whole (Tenants, Syncs, GitSources,
Namespaces, RBAC, webhook configurations) and builds an `AuditContext` from them; everything else
(every object of every kind) is streamed past the object rules one page at a time. The derived
indexes (what each Sync's inventory holds, which namespaces are managed, which objects the
platform made for each Tenant, who applies for each Sync) are computed here once, with the very
functions the webhook and the engine use (`drift.sync_info`, `tenant.parse_tenants`,
`tenant_objects.tenant_objects`, `inventory.Inventory`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from kubectl_gitops.constants import DEFAULT_APPLIER_SA, SYSTEM_NAMESPACE
from kubectl_gitops.core.checks import CheckResult
from kubectl_gitops.core.drift import SyncInfo, ownership, sync_info
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.impersonation import Account
from kubectl_gitops.core.inventory import Inventory
from kubectl_gitops.core.manifest_sig import Verify
from kubectl_gitops.core.objects import IdentityKey
from kubectl_gitops.core.tenancy import StaticFacts
from kubectl_gitops.core.tenant import Tenant, parse_tenants, tenant_for
from kubectl_gitops.core.tenant_objects import TenantRequest, tenant_objects
from kubectl_gitops.core.trust import TrustPolicy, parse_trust_policy

JSON = dict[str, Any]
SYSTEM_NAMESPACES: Final = frozenset({"kube-system", "kube-public", "kube-node-lease", SYSTEM_NAMESPACE})
"""Never audited for orphans: the control plane's and our own."""
DEFAULT_MAX_SUSPENDED: Final = dt.timedelta(hours=24)


@dataclass(frozen=True)
class Scope:
    """What one audit covers: every namespace (`namespaces` None) or some, optionally one Sync's objects."""

    namespaces: frozenset[str] | None = None
    sync: str | None = None

    @property
    def cluster_wide(self) -> bool:
        """Cluster-scoped objects and cluster-wide rules (webhook, ClusterRoleBindings) are audited."""
        return self.namespaces is None and self.sync is None

    def namespace(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def describe(self) -> str:
        where = "all namespaces" if self.namespaces is None else "namespace(s) " + ", ".join(sorted(self.namespaces))
        return where + (f", Sync {self.sync}" if self.sync else "")


@dataclass(frozen=True)
class Facts:
    """The raw collections, as listed (plain JSON)."""

    tenants: Sequence[JSON] = ()
    syncs: Sequence[JSON] = ()
    sources: Sequence[JSON] = ()
    namespaces: Sequence[JSON] = ()
    cluster_roles: Sequence[JSON] = ()
    roles: Sequence[JSON] = ()
    cluster_role_bindings: Sequence[JSON] = ()
    role_bindings: Sequence[JSON] = ()
    webhook_configurations: Sequence[JSON] = ()
    """Our live Validating/MutatingWebhookConfigurations."""
    shipped_webhooks: Sequence[JSON] = ()
    """The configurations `install` ships (manifests/install), to compare the live ones with."""
    webhook_probe: Sequence[CheckResult] | None = None
    """`kubectl gitops check`'s webhook results (caBundle, certificate, endpoint, callers), or None
    when not probed (then only the configurations themselves are judged)."""
    plurals: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(group, kind) -> resource (plural), from discovery."""
    trust_policies: Sequence[JSON] = ()
    """The TrustPolicies (cluster-scoped), as listed."""


@dataclass(frozen=True)
class AuditContext:
    facts: Facts
    scope: Scope
    now: dt.datetime
    max_suspended: dt.timedelta
    tenants: tuple[Tenant, ...]
    invalid_tenants: Mapping[str, str]
    """Tenant name -> why it does not parse (reported; such a Tenant is not enforced)."""
    namespace_labels: Mapping[str, Mapping[str, str]]
    sync_infos: Mapping[tuple[str, str], SyncInfo]
    inventory: frozenset[IdentityKey]
    managed_namespaces: frozenset[str]
    platform_objects: frozenset[IdentityKey]
    appliers: frozenset[Account]
    role_rules: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]]
    cluster_roles: Mapping[str, JSON]
    tenancy_facts: StaticFacts
    """What the webhook's tenancy review asks, answered from this snapshot."""
    trust_policies: tuple[TrustPolicy, ...] = ()
    """The TrustPolicies that parse (one that doesn't is not enforced at admission either)."""
    verify: Verify | None = None
    """The manifest signature check (adapters/keys.py `verify_manifest`), injected: without it the
    signature rules find nothing."""

    @classmethod
    def build(cls, facts: Facts, scope: Scope = Scope(), *, now: dt.datetime,
              max_suspended: dt.timedelta = DEFAULT_MAX_SUSPENDED, verify: Verify | None = None) -> AuditContext:
        tenants, invalid = parse_tenants(facts.tenants)
        labels = {_name(ns): _labels(ns) for ns in facts.namespaces}
        sources = {(_namespace(s), _name(s)): s for s in facts.sources}
        infos = {}
        for sync in facts.syncs:
            key = (_namespace(sync), _name(sync))
            ref = _map(_map(sync.get("spec")).get("sourceRef")).get("name")
            owner = tenant_for(tenants, key[0], labels.get(key[0]))
            infos[key] = sync_info(sync, sources.get((key[0], str(ref or ""))),
                                   (owner.applier_name, owner.applier) if owner else None)
        inventory = frozenset(k for sync in facts.syncs for k in _inventory(sync))
        return cls(
            facts=facts, scope=scope, now=now, max_suspended=max_suspended, tenants=tenants,
            invalid_tenants=invalid, namespace_labels=labels, sync_infos=infos, inventory=inventory,
            managed_namespaces=_managed(tenants, labels, facts.syncs, inventory),
            platform_objects=_platform_objects(tenants),
            appliers=_appliers(tenants, infos),
            role_rules=(role_rules := {(_namespace(r), _name(r)): _rules(r) for r in facts.roles}),
            cluster_roles={_name(r): r for r in facts.cluster_roles},
            tenancy_facts=StaticFacts(tenants, labels, role_rules, frozenset(_name(r) for r in facts.cluster_roles)),
            trust_policies=_trust_policies(facts.trust_policies), verify=verify,
        )

    def tenant_of(self, namespace: str) -> Tenant | None:
        return tenant_for(self.tenants, namespace, self.namespace_labels.get(namespace)) if namespace else None

    def sync_of(self, obj: Mapping[str, Any]) -> tuple[tuple[str, str] | None, SyncInfo | None]:
        """(the Sync an object's ownership labels name, that Sync if it exists)."""
        owner = ownership(obj)
        return owner, (self.sync_infos.get(owner) if owner else None)

    def in_scope(self, obj: Mapping[str, Any]) -> bool:
        """Is this object audited in this run's scope?"""
        namespace = _namespace(obj)
        if self.scope.sync:
            owner = ownership(obj)
            return owner is not None and owner[1] == self.scope.sync and self.scope.namespace(owner[0])
        if not namespace:
            return self.scope.cluster_wide
        return self.scope.namespace(namespace)


# ------------------------------------------------------------------ derived indexes


def _inventory(sync: JSON) -> Iterable[IdentityKey]:
    try:
        return Inventory.from_status(_map(sync.get("status")).get("inventory")).keys
    except (ValueError, TypeError, AttributeError):
        return ()  # an unreadable inventory: its objects show up as orphans, which is what they are now


def _managed(tenants: Sequence[Tenant], labels: Mapping[str, Mapping[str, str]], syncs: Sequence[JSON],
             inventory: frozenset[IdentityKey]) -> frozenset[str]:
    """Namespaces GitOps is responsible for: a Tenant's, a Sync's target, or where a Sync applied."""
    found = {ns for ns, lab in labels.items() if tenant_for(tenants, ns, lab) is not None}
    found |= {t_ns for t_ns in (str(_map(s.get("spec")).get("targetNamespace") or "") for s in syncs) if t_ns}
    found |= {ns for (_, _, ns, _) in inventory if ns}
    found |= {name for (group, kind, _, name) in inventory if group == "" and kind == "Namespace"}
    return frozenset(found - SYSTEM_NAMESPACES)


def _platform_objects(tenants: Iterable[Tenant]) -> frozenset[IdentityKey]:
    """What `kubectl gitops create tenant` makes for each Tenant (its applier, RBAC, namespaces):
    the platform's design, neither an orphan nor a boundary violation."""
    keys: set[IdentityKey] = set()
    for tenant in tenants:
        if not tenant.namespaces:
            continue  # claimed by labels only: `create tenant` did not make them
        request = TenantRequest(tenant.name, tenant.namespaces, tenant.users, tenant.groups)
        try:
            objs = tenant_objects(request, ())
        except GitOpsError:
            continue
        for obj in objs:
            group = str(obj.get("apiVersion") or "").rpartition("/")[0]
            keys.add((group, str(obj.get("kind")), _namespace(obj), _name(obj)))
    return frozenset(keys)


def _appliers(tenants: Iterable[Tenant], infos: Mapping[tuple[str, str], SyncInfo]) -> frozenset[Account]:
    accounts = {Account(SYSTEM_NAMESPACE, DEFAULT_APPLIER_SA)}
    accounts |= {Account(t.applier_namespace, t.applier_name) for t in tenants}
    for info in infos.values():
        for username in info.appliers:
            parts = username.split(":")
            if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
                accounts.add(Account(parts[2], parts[3]))
    return frozenset(accounts)


def _trust_policies(objs: Iterable[JSON]) -> tuple[TrustPolicy, ...]:
    """The TrustPolicies that parse, by name (the webhook skips, and logs, the others)."""
    parsed = []
    for obj in sorted(objs, key=_name):
        try:
            parsed.append(parse_trust_policy(obj))
        except GitOpsError:
            continue
    return tuple(parsed)


# ------------------------------------------------------------------ small readers


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _map(obj.get("metadata"))


def _name(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name") or "")


def _namespace(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("namespace") or "")


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    labels = meta(obj).get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}


def _rules(role: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rules = role.get("rules")
    return [r for r in rules if isinstance(r, Mapping)] if isinstance(rules, list) else []


name_of = _name
namespace_of = _namespace
rules_of = _rules
