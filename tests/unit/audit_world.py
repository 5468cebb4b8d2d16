"""Small builders for the audit's unit tests: live objects as the API server stores them (with
managedFields and the applier's record of what Git declares), Tenants, Syncs and a context."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable
from typing import Any

from kubectl_gitops.constants import ANNOTATION_FIELDS, FIELD_MANAGER, LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core import declared
from kubectl_gitops.core.audit.context import AuditContext, Facts, Scope
from kubectl_gitops.core.audit.model import AuditResult, Finding
from kubectl_gitops.core.audit.registry import RULES, run_cluster, run_object

JSON = dict[str, Any]
NOW = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)


def fields_of(value: Any) -> JSON:
    """The fieldsV1 trie server-side apply records for a manifest's maps (lists as leaves)."""
    if not isinstance(value, dict):
        return {}
    return {f"f:{k}": fields_of(v) for k, v in value.items()}


def applied(manifest: JSON, sync: tuple[str, str] = ("app", "s")) -> JSON:
    """`manifest` as the applier leaves it: ownership labels, the declared record, our managedFields."""
    obj = copy.deepcopy(manifest)
    meta = obj.setdefault("metadata", {})
    meta.setdefault("labels", {}).update({LABEL_SYNC: sync[1], LABEL_SYNC_NAMESPACE: sync[0]})
    meta.setdefault("annotations", {})[ANNOTATION_FIELDS] = declared.encode(declared.with_declared(obj))
    owned = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "status")}
    owned["metadata"] = {k: v for k, v in meta.items() if k in ("labels", "annotations")}
    meta["managedFields"] = [{"manager": FIELD_MANAGER, "operation": "Apply", "apiVersion": obj["apiVersion"],
                              "fieldsType": "FieldsV1", "fieldsV1": fields_of(owned)}]
    return obj


def edited(obj: JSON, path: tuple[str, ...], value: Any, manager: str = "kubectl-edit",
           operation: str = "Update") -> JSON:
    """`obj` after `manager` set `path` to `value`: the value moves, and so does its ownership
    (for an Update or a forced Apply with another value; `value` None removes the field)."""
    out = copy.deepcopy(obj)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    ours = out["metadata"]["managedFields"][0]["fieldsV1"]
    _drop(ours, path)
    if value is not None:
        trie: JSON = {}
        leaf = trie
        for key in path[:-1]:
            leaf = leaf.setdefault(f"f:{key}", {})
        leaf[f"f:{path[-1]}"] = {}
        out["metadata"]["managedFields"].append({"manager": manager, "operation": operation, "apiVersion": "v1",
                                                 "fieldsType": "FieldsV1", "fieldsV1": trie})
    return out


def co_owned(obj: JSON, path: tuple[str, ...], manager: str = "intruder") -> JSON:
    """`obj` after `manager` applied the same value at `path` (shared ownership)."""
    out = copy.deepcopy(obj)
    trie: JSON = {}
    leaf = trie
    for key in path[:-1]:
        leaf = leaf.setdefault(f"f:{key}", {})
    leaf[f"f:{path[-1]}"] = {}
    out["metadata"]["managedFields"].append({"manager": manager, "operation": "Apply", "apiVersion": "v1",
                                             "fieldsType": "FieldsV1", "fieldsV1": trie})
    return out


def _drop(fields: JSON, path: tuple[str, ...]) -> None:
    """Remove `path` from a fieldsV1 trie, and the parents it leaves empty (as the API server does)."""
    if not path:
        return
    child = fields.get(f"f:{path[0]}")
    if len(path) == 1 or not isinstance(child, dict):
        fields.pop(f"f:{path[0]}", None)
        return
    _drop(child, path[1:])
    if not child:
        fields.pop(f"f:{path[0]}")


def configmap(name: str, namespace: str, data: dict[str, str] | None = None, **meta: Any) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace, **meta},
            "data": data if data is not None else {"a": "1"}}


def tenant(name: str = "team-a", namespaces: Iterable[str] = ("ta",), users: Iterable[str] = ("tina",),
           **spec: Any) -> JSON:
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Tenant", "metadata": {"name": name},
            "spec": {"namespaces": list(namespaces), "people": {"users": list(users)}, **spec}}


def sync(name: str, namespace: str, *, inventory: Iterable[str] = (), ready: str | None = "True",
         stalled: bool = False, suspend: bool = False, account: str = "", reason: str = "Succeeded",
         managed_fields: list[JSON] | None = None, created: str = "2026-11-01T00:00:00Z") -> JSON:
    conditions = []
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready, "reason": reason, "message": f"{reason} message"})
        conditions.append({"type": "Stalled", "status": "True" if stalled else "False",
                           "reason": reason if stalled else "NotStalled", "message": "stuck" if stalled else ""})
    spec: JSON = {"sourceRef": {"name": "src"}, "path": ".", "prune": True, "suspend": suspend}
    if account:
        spec["serviceAccountName"] = account
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created,
                         "managedFields": managed_fields or []},
            "spec": spec,
            "status": {"conditions": conditions, "inventory": {"entries": [{"id": i, "v": "v1"} for i in inventory]}}}


def namespace(name: str, **labels: str) -> JSON:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, **labels}}}


def binding(kind: str, name: str, role: str, *subjects: JSON, namespace: str = "", role_kind: str = "ClusterRole",
            **meta: Any) -> JSON:
    metadata: JSON = {"name": name, **meta}
    if namespace:
        metadata["namespace"] = namespace
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": list(subjects)}


def user(name: str) -> JSON:
    return {"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}


def account(namespace: str, name: str) -> JSON:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


EDIT = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit"},
        "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
                  {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
                  {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]}
CLUSTER_ADMIN = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                 "metadata": {"name": "cluster-admin"},
                 "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}
BINDER = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "binder"},
          "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"]}]}
VIEW = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "view"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]}


EVERYTHING = Scope()


def context(*, scope: Scope = EVERYTHING, max_suspended: dt.timedelta = dt.timedelta(hours=24),
            **facts: Any) -> AuditContext:
    facts.setdefault("cluster_roles", [EDIT, CLUSTER_ADMIN, BINDER, VIEW])
    return AuditContext.build(Facts(**facts), scope, now=NOW, max_suspended=max_suspended)


def audit_objects(ctx: AuditContext, *objs: JSON) -> list[Finding]:
    return [f for obj in objs for f in run_object(obj, ctx)]


def audit_all(ctx: AuditContext, *objs: JSON) -> AuditResult:
    return AuditResult.of(audit_objects(ctx, *objs) + run_cluster(ctx), RULES, len(objs))


def rules_of(found: Iterable[Finding]) -> list[str]:
    return sorted(f.rule for f in found)
