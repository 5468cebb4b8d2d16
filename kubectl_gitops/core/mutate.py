"""Ownership and revision stamps added at admission (pure), for the mutating webhook.

The applier already labels what it applies; the webhook makes the stamps hold for every write
the applier makes, including ones that reach the API server by another path (a retried apply,
a manifest that set its own `metadata.annotations: null`). It is deliberately conservative:

* only CREATE/UPDATE of the main resource, only by the applier identity (`userInfo.username`)
  of the Sync named by the object's ownership labels; anyone else's request is never touched,
  so the mutating webhook can not be used to make a foreign write look like Git's;
* it only adds what is missing and never overwrites: the applier writes revision N before
  `status.lastAppliedRevision` says N, so the annotation it sent is newer than what we know;
* it is idempotent: run again on the patched object it returns `[]` (the API server may call a
  mutating webhook twice under `reinvocationPolicy: IfNeeded`);
* it never patches an object it could not fully read (`req.unreadable`): a map it read as None
  may exist, and "add" on an existing map replaces it.

The tenant label (`kubectl-gitops.dev/tenant`) is the one exception to "only the applier's writes"
and "never overwrite": every object created or updated in a namespace a Tenant claims gets the
claiming Tenant's name, whoever sends it, and a wrong value is replaced, so the label can be
trusted by selectors, `audit` and the tenancy entries (`tenant_patch`). A Namespace a Tenant
claims by name gets it too, which is what the tenancy entries' namespaceSelector matches on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubectl_gitops.constants import ANNOTATION_REVISION, LABEL_SYNC, LABEL_SYNC_NAMESPACE, LABEL_TENANT
from kubectl_gitops.core.admission import AdmissionRequest
from kubectl_gitops.core.drift import SyncLookup, ownership

JSON = dict[str, Any]


def stamp_patch(req: AdmissionRequest, lookup: SyncLookup, tenant: str = "") -> list[JSON]:
    """A JSONPatch adding the missing ownership labels and revision annotation, or [].

    `tenant`: the Tenant claiming the object's namespace (or the Namespace itself), "" if none.
    """
    obj = req.object
    if req.operation not in ("CREATE", "UPDATE") or req.sub_resource or obj is None or req.unreadable:
        return []
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    owner = ownership(obj)
    sync = lookup(*owner) if owner is not None else None
    if sync is not None and req.user_info.username in sync.appliers:
        labels = {LABEL_SYNC: sync.name, LABEL_SYNC_NAMESPACE: sync.namespace}
        annotations = {ANNOTATION_REVISION: sync.revision} if sync.revision else {}
    if tenant:
        labels[LABEL_TENANT] = tenant
    return (ensure_entries(obj, "labels", labels) + _replace_wrong_tenant(obj, tenant)
            + ensure_entries(obj, "annotations", annotations))


def _replace_wrong_tenant(obj: Mapping[str, Any], tenant: str) -> list[JSON]:
    """A `replace` of a tenant label that names another tenant (adding a missing one is ensure_entries')."""
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not tenant or not isinstance(labels, Mapping) or LABEL_TENANT not in labels or labels[LABEL_TENANT] == tenant:
        return []
    return [{"op": "replace", "path": f"/metadata/labels/{pointer_escape(LABEL_TENANT)}", "value": tenant}]


def ensure_entries(obj: Mapping[str, Any], map_name: str, wanted: Mapping[str, str]) -> list[JSON]:
    """JSONPatch ops adding the keys of `wanted` missing from `metadata.<map_name>` (never replacing)."""
    if not wanted:
        return []
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return [{"op": "add", "path": "/metadata", "value": {map_name: dict(wanted)}}]
    current = meta.get(map_name)
    if not isinstance(current, Mapping):
        # absent or null: one op creates the whole map (a per-key add would fail on a missing parent)
        return [{"op": "add", "path": f"/metadata/{pointer_escape(map_name)}", "value": dict(wanted)}]
    return [{"op": "add", "path": f"/metadata/{pointer_escape(map_name)}/{pointer_escape(key)}", "value": value}
            for key, value in wanted.items() if key not in current]


def pointer_escape(token: str) -> str:
    """One JSON Pointer reference token (RFC 6901): `~` first, then `/`."""
    return token.replace("~", "~0").replace("/", "~1")
