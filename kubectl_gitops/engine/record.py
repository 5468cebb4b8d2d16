"""Write what a run did: Sync status (conditions, revisions, inventory, history) and Events.

Status is written with a JSON merge patch on the status subresource, by the caller's identity
(not the applier's: the applier may write workloads, the operator records). A failure to
record is reported, never swallowed: a status that lies is worse than an error.
"""

from __future__ import annotations

import contextlib
import socket
import time
from datetime import UTC, datetime
from typing import Any

from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.constants import API_VERSION, KIND_SYNC, PROJECT
from kubectl_gitops.core.discovery import ResourceInfo
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.status import kstatus_conditions

SYNCS = ResourceInfo("kubectl-gitops.dev", "v1alpha1", KIND_SYNC, "syncs", True)
SOURCES = ResourceInfo("kubectl-gitops.dev", "v1alpha1", "GitSource", "gitsources", True)
EVENTS = ResourceInfo("events.k8s.io", "v1", "Event", "events", True)

JSON = dict[str, Any]


class NotInstalled(GitOpsError):
    reason = "NotInstalled"


def require_installed(kube: Kube) -> None:
    """Turn "404 on our API group" into the fix, rather than a bare "not found"."""
    try:
        kube.request("GET", f"/apis/{SYNCS.group}/{SYNCS.version}")
    except GitOpsError as err:
        if getattr(err, "status", 0) == 404:
            raise NotInstalled(f"kubectl-gitops is not installed in the cluster at {kube.server} (no "
                               f"{SYNCS.group} API): run `kubectl gitops install`") from err
        raise


def now() -> datetime:
    return datetime.now(UTC)


def conditions_for(old: list[JSON] | None, *, ready: bool | str, reason: str, message: str, generation: int,
                   at: datetime, reconciling: bool = False, stalled: bool = False,
                   healthy: bool | None = None) -> list[JSON]:
    """The kstatus set (core.status.kstatus_conditions), for the GitSource's status."""
    return kstatus_conditions(old, ready=ready, reason=reason, message=message, generation=generation, at=at,
                              reconciling=reconciling, stalled=stalled, healthy=healthy)


def patch_status(kube: Kube, info: ResourceInfo, namespace: str, name: str, status: JSON) -> None:
    kube.merge_patch(info, name, namespace, {"status": status}, subresource="status")


def emit_event(kube: Kube, regarding: JSON, *, warning: bool, reason: str, note: str, action: str) -> None:
    """An events.k8s.io/v1 Event on the object; best effort (an event must not fail a sync)."""
    meta = regarding.get("metadata") or {}
    stamp = now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event = {
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        # client-go's naming: <object>.<unix nanoseconds in hex>
        "metadata": {"name": f"{meta.get('name')}.{time.time_ns():x}", "namespace": meta.get("namespace")},
        "eventTime": stamp, "type": "Warning" if warning else "Normal", "reason": reason,
        "note": note[:1024], "action": action, "reportingController": f"{PROJECT}.dev/{PROJECT}",
        "reportingInstance": f"{PROJECT}-{socket.gethostname()}"[:128],
        "regarding": {"apiVersion": regarding.get("apiVersion", API_VERSION), "kind": regarding.get("kind"),
                      "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                      "resourceVersion": meta.get("resourceVersion")},
    }
    with contextlib.suppress(GitOpsError):
        kube.create(EVENTS, event)
