"""When a Sync or GitSource event means "reconcile now" (pure rules over the objects' JSON).

The controller reconciles on a spec change (metadata.generation), on a `requestedAt` annotation
not yet handled, on deletion (the finalizer's prune), when its finalizer is missing, and when a
dependency turns Ready; its own status writes never trigger a run (they change none of these).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubectl_gitops.constants import ANNOTATION_REQUESTED_AT, FINALIZER
from kubectl_gitops.core.status import is_true

JSON = Mapping[str, Any]


def _meta(obj: JSON) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _status(obj: JSON) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def generation(obj: JSON) -> int:
    return int(_meta(obj).get("generation") or 0)


def requested_at(obj: JSON) -> str:
    return str((_meta(obj).get("annotations") or {}).get(ANNOTATION_REQUESTED_AT) or "")


def request_pending(obj: JSON) -> bool:
    token = requested_at(obj)
    return bool(token) and token != str(_status(obj).get("lastHandledReconcileAt") or "")


def deleting(obj: JSON) -> bool:
    return bool(_meta(obj).get("deletionTimestamp"))


def has_finalizer(obj: JSON) -> bool:
    return FINALIZER in (_meta(obj).get("finalizers") or [])


def ready_now(obj: JSON) -> bool:
    """Ready=True for the current generation (what a dependent waits for)."""
    status = _status(obj)
    return is_true(status.get("conditions"), "Ready") and status.get("observedGeneration") == generation(obj)


def observed(obj: JSON) -> bool:
    """The status describes the current spec."""
    return _status(obj).get("observedGeneration") == generation(obj)


def sync_needs_run(obj: JSON, old: JSON | None) -> bool:
    """Reconcile now (rather than at the next interval)?"""
    if deleting(obj):
        return has_finalizer(obj)
    if not has_finalizer(obj):
        return True
    if old is None:
        return request_pending(obj) or not observed(obj)
    # A request counts once, when its value appears: the run's own status writes (before it marks
    # the request handled) must not queue a second run that would overwrite the answer.
    new_request = request_pending(obj) and requested_at(obj) != requested_at(old)
    return new_request or generation(obj) != generation(old)


def became_ready(obj: JSON, old: JSON | None) -> bool:
    return ready_now(obj) and (old is None or not ready_now(old))


def depends_on(obj: JSON) -> set[str]:
    """`namespace/name` of each Sync in spec.dependsOn."""
    spec = obj.get("spec") or {}
    ns = str(_meta(obj).get("namespace") or "")
    out = set()
    for dep in spec.get("dependsOn") or []:
        if isinstance(dep, Mapping):
            out.add(f"{dep.get('namespace') or ns}/{dep.get('name')}")
    return out


def source_key(obj: JSON) -> str:
    """`namespace/name` of the Sync's GitSource (always in the Sync's namespace)."""
    ref = (obj.get("spec") or {}).get("sourceRef") or {}
    return f"{_meta(obj).get('namespace') or ''}/{ref.get('name') or ''}"


def last_attempted(obj: JSON) -> str:
    return str(_status(obj).get("lastAttemptedRevision") or "")
