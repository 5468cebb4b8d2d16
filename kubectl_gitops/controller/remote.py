"""`kubectl gitops sync NAME --remote`: ask the controller to reconcile now and wait for its answer.

The request is an annotation (`kubectl-gitops.dev/requestedAt`, a fresh timestamp); the controller
reconciles, and only after recording the run's status sets `status.lastHandledReconcileAt` to the
same value (Flux's reconcile-request protocol). The answer is then read back from the status the
run recorded: the Ready condition, the revision and the run's entry in `status.history`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.constants import ANNOTATION_REQUESTED_AT
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.engine import record
from kubectl_gitops.engine.reconcile import SyncReport

JSON = dict[str, Any]


class NotHandled(GitOpsError):
    reason = "NotHandled"


def request_token(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def request(kube: Kube, namespace: str, name: str, token: str) -> None:
    if kube.get(record.SYNCS, name, namespace) is None:
        record.require_installed(kube)
        raise GitOpsError(f"Sync {namespace}/{name} not found")
    kube.merge_patch(record.SYNCS, name, namespace, {"metadata": {"annotations": {ANNOTATION_REQUESTED_AT: token}}})


def wait_handled(kube: Kube, namespace: str, name: str, token: str, timeout: float, *, poll: float = 0.5,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> JSON:
    """The Sync once its status says the request `token` was handled; NotHandled after `timeout` s."""
    deadline = clock() + timeout
    while True:
        obj = kube.get(record.SYNCS, name, namespace)
        if obj is None:
            raise GitOpsError(f"Sync {namespace}/{name} was deleted while waiting for the controller")
        if str((obj.get("status") or {}).get("lastHandledReconcileAt") or "") == token:
            return obj
        if clock() >= deadline:
            raise NotHandled(
                f"the controller did not handle the request for Sync {namespace}/{name} within {timeout:g}s "
                f"(is `kubectl gitops controller` running, for this Sync's shard, and leading?); "
                f"the request stays pending: annotation {ANNOTATION_REQUESTED_AT}={token}")
        sleep(poll)


def report_of(obj: JSON) -> SyncReport:
    """The summary of the run a status records (what `sync` prints; per-object lines are not recorded)."""
    meta, spec, status = (obj.get(k) or {} for k in ("metadata", "spec", "status"))
    ns, name = str(meta.get("namespace")), str(meta.get("name"))
    if spec.get("suspend") is True:
        return SyncReport(ns, name, str(status.get("lastAppliedRevision") or ""), False, "Suspended",
                          "the Sync is suspended; nothing was done", 0.0)
    ready: JSON = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    history = (status.get("history") or [{}])[0]
    counts = {str(k): int(v) for k, v in (history.get("counts") or {}).items()}
    return SyncReport(ns, name, str(status.get("lastAttemptedRevision") or history.get("revision") or ""),
                      ready.get("status") == "True", str(ready.get("reason") or "Unknown"),
                      str(ready.get("message") or ""), float(history.get("durationSeconds") or 0.0), (), counts)


def sync_remote(kube: Kube, namespace: str, name: str, timeout: float) -> SyncReport:
    token = request_token()
    request(kube, namespace, name, token)
    return report_of(wait_handled(kube, namespace, name, token, timeout))
