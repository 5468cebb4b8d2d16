"""Which Tenant, if any, claims a Sync's namespace, and which namespaces are then the tenant's.

Read with the operator's connection at the start of every run (Tenants change rarely, but a
stale answer here would be a hole), and failing closed: when the Tenants cannot be read, no Sync
runs, because the engine could not tell a tenant's Sync (locked down) from the platform's. Only
a cluster without the Tenant CRD (404) has no tenants.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.constants import GROUP, KIND_SYNC, KIND_TENANT, VERSION
from kubectl_gitops.core.discovery import ResourceInfo
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.spec import InvalidSpec
from kubectl_gitops.core.tenant import Tenant, parse_tenant, tenant_for

JSON = dict[str, Any]
TENANTS = ResourceInfo(GROUP, VERSION, KIND_TENANT, "tenants", False)
NAMESPACES = ResourceInfo("", "v1", "Namespace", "namespaces", False)


@dataclass(frozen=True)
class TenantScope:
    """A Tenant and the namespaces it owns right now (by name, and by label when it has a selector)."""

    tenant: Tenant
    namespaces: tuple[str, ...]

    def owns(self, namespace: str) -> bool:
        return namespace in self.namespaces


def load_tenants(kube: Kube) -> list[Tenant]:
    """Every Tenant; [] without the CRD. A Tenant that can't be parsed stops everything (fail closed)."""
    try:
        items = kube.list(TENANTS)
    except ApiError as err:
        if err.status == 404:
            return []
        raise GitOpsError(f"cannot read the Tenants, so no Sync can be told apart from a tenant's: {err}") from err
    tenants = []
    for obj in items:
        try:
            tenants.append(parse_tenant(obj))
        except InvalidSpec as err:
            raise GitOpsError(f"{err} (fix the Tenant: until then no Sync runs, as any could be its)") from err
    return tenants


def scope_for(kube: Kube, namespace: str) -> TenantScope | None:
    """The Tenant claiming `namespace` with its namespaces, or None (the platform's namespace)."""
    tenants = load_tenants(kube)
    if not tenants:
        return None
    labels = _labels(kube, namespace)
    tenant = tenant_for(tenants, namespace, labels)
    if tenant is None:
        return None
    owned = set(tenant.namespaces)
    if tenant.namespace_labels:
        for ns in kube.list(NAMESPACES):
            meta = ns.get("metadata") or {}
            if tenant.claims(str(meta.get("name") or ""), meta.get("labels") or {}):
                owned.add(str(meta.get("name")))
    return TenantScope(tenant, tuple(sorted(owned)))


def _labels(kube: Kube, namespace: str) -> Mapping[str, str]:
    found = kube.get(NAMESPACES, namespace)
    return dict(((found or {}).get("metadata") or {}).get("labels") or {})


SYNCS = ResourceInfo(GROUP, VERSION, KIND_SYNC, "syncs", True)
MAX_VIOLATION: Final = 500
"""Characters of a violation message kept in the Tenant's status."""


def tenant_status(scope: TenantScope, syncs: int, *, now: dt.datetime,
                  violation: tuple[str, str] | None = None) -> JSON:
    """The Tenant's status as one run saw it: namespaces found, Syncs, and the last violation (rule, message)."""
    status: JSON = {"namespaces": ", ".join(scope.namespaces), "syncs": syncs}
    if violation is not None:
        rule, message = violation
        status["lastViolation"] = {"time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "rule": rule,
                                   "message": message[:MAX_VIOLATION]}
    return status


def record_tenant(kube: Kube, scope: TenantScope, *, violation: tuple[str, str] | None = None) -> str:
    """Write the Tenant's status (best effort: the Sync's own record is what matters); "" or why not."""
    try:
        syncs = sum(len(kube.list(SYNCS, namespace=ns)) for ns in scope.namespaces)
        status = tenant_status(scope, syncs, now=dt.datetime.now(dt.UTC), violation=violation)
        kube.merge_patch(TENANTS, scope.tenant.name, None, {"status": status}, subresource="status")
    except GitOpsError as err:
        return f"Tenant {scope.tenant.name} status not recorded: {err}"
    return ""
