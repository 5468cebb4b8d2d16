"""Audit rules over one live object at a time, each a call into the decision admission makes (pure).

* `tenancy/boundary`: the object is handed to `core.tenancy.review`, the very function behind the
  webhook's /tenancy endpoint, as a CREATE by the identity that would have to have made it (the
  Tenant's applier; for a Tenant object, the platform). A refusal there is the finding, with the
  webhook's own message.
* `drift/changed`: `core.declared.lost_paths`, the guard's rule for what Git declares but the
  applier no longer owns, on the object as it is. Server-side apply moves a field's ownership
  only when its value changes (an update, or a forced apply, with another value), so a lost field
  was changed (or removed) since the last apply: drift, with the managers that own it now named.
* `drift/ownership`: a declared field the applier still owns but another manager owns as well
  (it applied the same value): ownership has started to leave Git, and the other client takes the
  field over with its next change.
* `rbac/tenant-escalation` and `rbac/applier-impersonation`: bindings, judged with
  `core.tenant` (the roles and verbs a tenant may never hold) and `core.impersonation.analyse`
  (what `kubectl gitops check` reports).
* `orphan/unowned`: objects in managed namespaces no Sync's inventory holds, or labelled for a
  Sync that does not exist (the guard lets anyone change those: `OrphanSync`).

A rule may name rules that take precedence on the same object (`unless` in the registry): an
object a tenant was never allowed to make is reported as that, not also as an orphan.
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubectl_gitops.constants import (
    ANNOTATION_FIELDS,
    ANNOTATION_REVISION,
    FIELD_MANAGER,
    GROUP,
    KIND_TENANT,
)
from kubectl_gitops.core import declared, tenancy
from kubectl_gitops.core.admission import AdmissionRequest, GroupVersionKind, GroupVersionResource, UserInfo
from kubectl_gitops.core.audit.context import SYSTEM_NAMESPACES, AuditContext, meta, name_of, rules_of
from kubectl_gitops.core.audit.model import Finding, Rule, ref_of
from kubectl_gitops.core.bounded import LimitExceeded
from kubectl_gitops.core.impersonation import analyse
from kubectl_gitops.core.managed_fields import MAX_ENTRIES, MISSING, format_path
from kubectl_gitops.core.tenant import FORBIDDEN_ROLES, Tenant, role_escapes

AUDITOR: Final = "kubectl-gitops:audit"
"""The username synthetic reviews of Tenant objects carry: nobody's, so no Tenant judges it as its own."""
RBAC: Final = "rbac.authorization.k8s.io"
BINDINGS: Final = frozenset({"RoleBinding", "ClusterRoleBinding"})
OPERATOR_ROLES: Final = frozenset({"kubectl-gitops-operator", "kubectl-gitops-tenant-operator"})
"""Bindings of these roles make operators: impersonating appliers is their job."""
MAX_PATHS_SHOWN: Final = 5

# Objects the control plane (or we) make in every namespace, which nobody's Git holds.
_GENERATED_KINDS: Final = frozenset({
    ("", "Event"), ("events.k8s.io", "Event"), ("coordination.k8s.io", "Lease"), ("", "Endpoints"),
    ("discovery.k8s.io", "EndpointSlice"), ("apps", "ControllerRevision"),
})
_GENERATED_OBJECTS: Final = frozenset({("", "ServiceAccount", "default"), ("", "ConfigMap", "kube-root-ca.crt")})
_REPORTS: Final = frozenset({(GROUP, "AuditReport"), (GROUP, "ClusterAuditReport")})


# ------------------------------------------------------------------ shared tests


def generated(obj: Mapping[str, Any]) -> bool:
    """Made by a controller or the control plane (or our reports), not by a person or a Sync."""
    ref = ref_of(obj)
    if (ref.group, ref.kind) in _GENERATED_KINDS or (ref.group, ref.kind, ref.name) in _GENERATED_OBJECTS:
        return True
    if meta(obj).get("ownerReferences"):
        return True
    return ref.group == "" and ref.kind == "Secret" and obj.get("type") == "kubernetes.io/service-account-token"


def gitops_configuration(obj: Mapping[str, Any]) -> bool:
    """GitSources, Syncs and the like: made by `kubectl gitops create`, not expected in Git."""
    ref = ref_of(obj)
    return ref.group == GROUP and ref.kind != KIND_TENANT


# ------------------------------------------------------------------ tenancy/boundary


def tenant_boundary(rule: Rule, obj: Mapping[str, Any], ctx: AuditContext) -> Iterator[Finding]:
    ref = ref_of(obj)
    if ref.group == GROUP and ref.kind == KIND_TENANT:
        answer = tenancy.review(_request(obj, ctx, AUDITOR), ctx.tenancy_facts)
        if not answer.allowed:
            yield rule.finding(ref, answer.message, "Fix the Tenant's spec (the webhook refuses it as it is)")
        return
    if ref.key in ctx.platform_objects or generated(obj) or (ref.group, ref.kind) in _REPORTS:
        return
    tenant = _judging_tenant(obj, ctx)
    if tenant is None:
        return
    answer = tenancy.review(_request(obj, ctx, tenant.applier), ctx.tenancy_facts)
    if not answer.allowed:
        yield rule.finding(ref, answer.message,
                           f"Delete it (or move it where Tenant {tenant.name} allows it), or change Tenant "
                           f"{tenant.name} if the platform means to allow it; the webhook refuses it today")


def _judging_tenant(obj: Mapping[str, Any], ctx: AuditContext) -> Tenant | None:
    """The Tenant whose rules the object must follow: the one claiming its namespace (unless a
    platform Sync applied it there), or the one whose Sync applied it (cluster-scoped or elsewhere)."""
    ref = ref_of(obj)
    owner, info = ctx.sync_of(obj)
    by_sync = ctx.tenant_of(owner[0]) if owner else None
    if by_sync is not None:
        return by_sync
    if info is not None:
        return None  # a platform Sync put it there: the platform's choice, not the tenant's
    return ctx.tenant_of(ref.namespace) if ref.namespace else None


def _request(obj: Mapping[str, Any], ctx: AuditContext, username: str) -> AdmissionRequest:
    """The CREATE of this very object by `username`, as the API server would send it to /tenancy."""
    ref = ref_of(obj)
    plural = ctx.facts.plurals.get((ref.group, ref.kind), ref.kind.lower() + "s")
    groups = ("system:serviceaccounts", "system:authenticated") if username.startswith("system:serviceaccount:") \
        else ("system:authenticated",)
    return AdmissionRequest(
        uid=f"audit-{ref.id}", kind=GroupVersionKind(ref.group, ref.version, ref.kind),
        resource=GroupVersionResource(ref.group, ref.version, plural), operation="CREATE",
        user_info=UserInfo(username, groups=groups), name=ref.name, namespace=ref.namespace,
        object=dict(obj), request_kind=GroupVersionKind(ref.group, ref.version, ref.kind))


# ------------------------------------------------------------------ drift/changed, drift/ownership-lost


@dataclass(frozen=True)
class DeclaredField:
    """A field Git declares and the other field managers that own it (manager, operation)."""

    path: str
    owners: tuple[tuple[str, str], ...]
    removed: bool = False


@dataclass(frozen=True)
class Ownership:
    """What became of the fields Git declares on one object."""

    lost: tuple[DeclaredField, ...] = ()
    """Our manager no longer owns them: someone changed (or removed) them since the last apply."""
    shared: tuple[DeclaredField, ...] = ()
    """Our manager still owns them, and so does another manager: another client applies them too."""
    problem: str = ""


class _LastObject(threading.local):
    """The last object's analysis, per reader thread: two rules ask about the same object in a row."""

    obj: object = None
    ownership: Ownership | None = None


_LAST: Final = _LastObject()


def declared_ownership(obj: Mapping[str, Any]) -> Ownership:
    """The guard's `lost_paths` on `obj`, and the declared fields another manager co-owns."""
    if _LAST.obj is obj and _LAST.ownership is not None:
        return _LAST.ownership
    found = _declared_ownership(obj)
    _LAST.obj, _LAST.ownership = obj, found
    return found


# Objects applied from the same manifests share their record's text: decode each text once (the
# tries are shared, and nothing here writes to them). Bounded like the guard's own cache.
_decode_record: Final = functools.lru_cache(maxsize=1024)(declared.decode)


def _recorded(obj: Mapping[str, Any]) -> declared.Trie | None:
    notes = meta(obj).get("annotations")
    text = notes.get(ANNOTATION_FIELDS) if isinstance(notes, Mapping) else None
    return _decode_record(text) if isinstance(text, str) and len(text) <= declared.MAX_BYTES else None


def _declared_ownership(obj: Mapping[str, Any]) -> Ownership:
    trie = _recorded(obj)
    if trie is None:
        return Ownership()
    try:
        lost = declared.lost_paths(trie, obj)
        entries = _other_entries(obj)
    except LimitExceeded as err:
        return Ownership(problem=str(err))
    changed = []
    for path in lost:
        value = declared.value_at(obj, path)
        owners = tuple(sorted({(m, op) for m, op, fields in entries if _owns(fields, path, exactly=False)}))
        if value in ([], {}) and not owners:
            continue  # an empty list or map leaves no owner (the engine forgives it too)
        changed.append(DeclaredField(_render(path), owners, value is MISSING))
    gone = set(lost)
    shared = []
    for path in declared.leaf_paths(trie) if entries else []:
        if path in gone:
            continue
        owners = tuple(sorted({(m, op) for m, op, fields in entries if _owns(fields, path, exactly=True)}))
        if owners:
            shared.append(DeclaredField(_render(path), owners))
    return Ownership(tuple(changed), tuple(shared))


def _render(path: tuple[str, ...]) -> str:
    return format_path(tuple(("f", k) for k in path))


def _other_entries(obj: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """Every other manager's entries (the scale subresource's too: it writes spec.replicas; not status)."""
    entries = meta(obj).get("managedFields")
    if not isinstance(entries, list):
        return []
    if len(entries) > MAX_ENTRIES:
        raise LimitExceeded(f"metadata.managedFields has {len(entries):,} entries (at most {MAX_ENTRIES} are read)")
    return [(str(e.get("manager") or "(unnamed)"), str(e.get("operation") or ""), e["fieldsV1"])
            for e in entries if isinstance(e, Mapping) and isinstance(e.get("fieldsV1"), Mapping)
            and e.get("subresource") != "status"
            and not (e.get("manager") == FIELD_MANAGER and e.get("operation") == "Apply" and not e.get("subresource"))]


def _owns(fields: Mapping[str, Any], path: tuple[str, ...], *, exactly: bool) -> bool:
    """Does this fieldsV1 trie own `path` (or an atomic node above it)? Unless `exactly`, a field
    below it counts too (someone who changed a key inside a declared list or map changed it)."""
    node: Any = fields
    for key in path:
        node = node.get(f"f:{key}", MISSING) if isinstance(node, Mapping) else MISSING
        if node is MISSING:
            return False
        if not isinstance(node, Mapping) or not node:
            return True  # a leaf: owned as a whole
    return not exactly or "." in node


def drift_changed(rule: Rule, obj: Mapping[str, Any], ctx: AuditContext) -> Iterator[Finding]:
    owner, info = ctx.sync_of(obj)
    if owner is None or info is None:
        return
    state = declared_ownership(obj)
    sync = f"{owner[0]}/{owner[1]}"
    if state.problem:
        yield rule.finding(ref_of(obj), f"Sync {sync}: the fields Git declares could not be compared ({state.problem})",
                           f"Sync it again: kubectl gitops sync {owner[1]} -n {owner[0]}")
        return
    if not state.lost:
        return
    by = sorted({f"{m} ({op})" for f in state.lost for m, op in f.owners})
    removed = [f.path for f in state.lost if f.removed]
    who = f" by {', '.join(by)}" if by else " (no field manager owns them now: managedFields rewritten)"
    gone = f"; {_paths(removed)} removed" if removed else ""
    yield rule.finding(
        ref_of(obj),
        f"{_paths([f.path for f in state.lost])} changed{who}{gone} since Sync {sync} applied "
        f"{_revision(obj, info.revision)} (driftGuard {info.mode}{', suspended' if info.suspended else ''})",
        f"Put the change in Git, or revert it with a sync: kubectl gitops sync {owner[1]} -n {owner[0]}")


def drift_ownership(rule: Rule, obj: Mapping[str, Any], ctx: AuditContext) -> Iterator[Finding]:
    owner, info = ctx.sync_of(obj)
    if owner is None or info is None:
        return
    shared = declared_ownership(obj).shared
    if not shared:
        return
    managers = sorted({f"{m} ({op})" for f in shared for m, op in f.owners})
    yield rule.finding(
        ref_of(obj),
        f"Git declares {_paths([f.path for f in shared])} (Sync {owner[0]}/{owner[1]}), and {', '.join(managers)} "
        "owns them too: another client applies the same fields, and will take them over on its next change",
        "Stop the other client from applying these fields (or drop them from Git if it is their owner)")


def _paths(paths: list[str]) -> str:
    shown = ", ".join(paths[:MAX_PATHS_SHOWN])
    return shown + (f" (+{len(paths) - MAX_PATHS_SHOWN} more)" if len(paths) > MAX_PATHS_SHOWN else "")


def _revision(obj: Mapping[str, Any], fallback: str) -> str:
    notes = meta(obj).get("annotations")
    stamped = notes.get(ANNOTATION_REVISION) if isinstance(notes, Mapping) else None
    return str(stamped or fallback or "its last revision")


# ------------------------------------------------------------------ rbac/*


def tenant_escalation(rule: Rule, obj: Mapping[str, Any], ctx: AuditContext) -> Iterator[Finding]:
    """A binding outside a tenant's namespaces that gives its people, accounts or applier cluster-admin
    (or admin), or a role that can escalate, bind or impersonate (inside, tenancy/boundary judges it)."""
    ref = ref_of(obj)
    if ref.group != RBAC or ref.kind not in BINDINGS or ref.key in ctx.platform_objects:
        return
    role_ref = _map(obj.get("roleRef"))
    role_kind, role_name = str(role_ref.get("kind") or ""), str(role_ref.get("name") or "")
    rules = ctx.role_rules.get((ref.namespace, role_name)) if role_kind == "Role" else \
        rules_of(ctx.cluster_roles.get(role_name) or {})
    verb = "" if role_name in FORBIDDEN_ROLES else role_escapes(rules or [])
    if role_name not in FORBIDDEN_ROLES and not verb:
        return
    for tenant in ctx.tenants:
        if ref.namespace and tenant.claims(ref.namespace, ctx.namespace_labels.get(ref.namespace)):
            continue
        who = [s for s in _subjects(obj) if _of_tenant(s, tenant, ref.namespace, ctx)]
        if who:
            grants = f"{role_kind} {role_name}" + (f" (which grants {verb!r})" if verb else "")
            yield rule.finding(ref, f"gives {', '.join(who)} of Tenant {tenant.name} {grants}: they can "
                                    "leave the tenant", "Delete the binding, or remove the tenant's subjects from it")


def _of_tenant(subject: str, tenant: Tenant, namespace: str, ctx: AuditContext) -> bool:
    kind, _, rest = subject.partition(" ")
    if kind == "User":
        return rest in tenant.users or rest == tenant.applier
    if kind == "Group":
        return rest in tenant.groups
    sa_ns, _, sa_name = rest.partition("/")
    return (sa_ns, sa_name) == (tenant.applier_namespace, tenant.applier_name) or \
        tenant.claims(sa_ns, ctx.namespace_labels.get(sa_ns))


def _subjects(obj: Mapping[str, Any]) -> list[str]:
    out = []
    namespace = str(meta(obj).get("namespace") or "")
    for raw in obj.get("subjects") or []:
        s = _map(raw)
        kind, name = str(s.get("kind") or ""), str(s.get("name") or "")
        out.append(f"ServiceAccount {s.get('namespace') or namespace}/{name}" if kind == "ServiceAccount"
                   else f"{kind} {name}")
    return out


def applier_impersonation(rule: Rule, obj: Mapping[str, Any], ctx: AuditContext) -> Iterator[Finding]:
    """`core.impersonation.analyse` on this one binding: who may impersonate an applier or mint its tokens."""
    ref = ref_of(obj)
    if ref.group != RBAC or ref.kind not in BINDINGS:
        return
    if str(_map(obj.get("roleRef")).get("name") or "") in OPERATOR_ROLES:
        return
    cluster = ref.kind == "ClusterRoleBinding"
    analysis = analyse(cluster_roles=ctx.cluster_roles.values(), roles=_roles_near(ctx, ref.namespace),
                       cluster_role_bindings=[dict(obj)] if cluster else [],
                       role_bindings=[] if cluster else [dict(obj)], appliers=ctx.appliers)
    for found in analysis.findings:
        yield rule.finding(ref, found.message(max_items=5).split(", bypassing")[0] + ", bypassing the drift guard",
                           "Drop the binding (or narrow it with resourceNames), or move the applier to a "
                           "namespace those subjects can't reach")


def _roles_near(ctx: AuditContext, namespace: str) -> Iterable[Mapping[str, Any]]:
    return [{"metadata": {"namespace": ns, "name": name}, "rules": list(rules)}
            for (ns, name), rules in ctx.role_rules.items() if ns == namespace]


# ------------------------------------------------------------------ orphan/unowned


def orphan(rule: Rule, obj: Mapping[str, Any], ctx: AuditContext) -> Iterator[Finding]:
    ref = ref_of(obj)
    owner, info = ctx.sync_of(obj)
    if owner is not None and info is None:
        yield rule.finding(ref, f"labelled as applied by Sync {owner[0]}/{owner[1]}, which does not exist: nothing "
                                "guards or prunes it", "Delete it, or add it to a Sync's Git (and remove the "
                                                       "stale ownership labels)")
        return
    if ref.namespace not in ctx.managed_namespaces or ref.namespace in SYSTEM_NAMESPACES:
        return
    if ref.key in ctx.inventory or ref.key in ctx.platform_objects or generated(obj) or gitops_configuration(obj):
        return
    if owner is not None:
        yield rule.finding(ref, f"labelled as applied by Sync {owner[0]}/{owner[1]}, but not in its inventory "
                                "(labels copied, or an inventory lost)",
                           f"Add it to the Sync's Git, or delete it; `kubectl gitops sync {owner[1]} -n {owner[0]} "
                           "--reset-inventory` repairs a lost inventory")
        return
    where = f"Tenant {t.name}'s" if (t := ctx.tenant_of(ref.namespace)) else "a GitOps-managed"
    yield rule.finding(ref, f"in {where} namespace {ref.namespace}, but no Sync applied it (made by "
                            f"{_makers(obj)})", "Add it to Git (a Sync's path), or delete it")


def _makers(obj: Mapping[str, Any]) -> str:
    entries = meta(obj).get("managedFields")
    names = sorted({str(e.get("manager")) for e in entries if isinstance(e, Mapping) and e.get("manager")}) \
        if isinstance(entries, list) else []
    return ", ".join(names[:3]) if names else "an unknown client"


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def parse_time(value: object) -> dt.datetime | None:
    """A metav1.Time (`2024-05-01T12:00:00Z`), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


__all__ = ["applier_impersonation", "declared_ownership", "drift_changed", "drift_ownership", "generated",
           "gitops_configuration", "name_of", "orphan", "parse_time", "tenant_boundary", "tenant_escalation"]
