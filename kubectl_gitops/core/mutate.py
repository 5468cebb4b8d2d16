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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubectl_gitops.constants import ANNOTATION_REVISION, LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core.admission import AdmissionRequest
from kubectl_gitops.core.drift import SyncLookup, ownership

JSON = dict[str, Any]


def stamp_patch(req: AdmissionRequest, lookup: SyncLookup) -> list[JSON]:
    """A JSONPatch adding the missing ownership labels and revision annotation, or []."""
    obj = req.object
    if req.operation not in ("CREATE", "UPDATE") or req.sub_resource or obj is None or req.unreadable:
        return []
    owner = ownership(obj)
    if owner is None:
        return []
    sync = lookup(*owner)
    if sync is None or req.user_info.username not in sync.appliers:
        return []
    labels = {LABEL_SYNC: sync.name, LABEL_SYNC_NAMESPACE: sync.namespace}
    annotations = {ANNOTATION_REVISION: sync.revision} if sync.revision else {}
    return ensure_entries(obj, "labels", labels) + ensure_entries(obj, "annotations", annotations)


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
