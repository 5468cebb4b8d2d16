"""Health: is a live object done becoming what Git asked for? kstatus-style rules.

The vocabulary is kstatus's (Current, InProgress, Failed, Terminating, Unknown), because Flux and
cli-utils users already read it, and because it separates "not yet" (InProgress: keep waiting
until the timeout) from "will not" (Failed: stop waiting now).

Order of the rules, and why:
1. being deleted -> Terminating;
2. `status.observedGeneration` behind `metadata.generation` -> InProgress: whatever else the
   status says describes an older spec;
3. the kstatus conditions `Reconciling=True` (InProgress) and `Stalled=True` (Failed), which
   controllers set precisely so tools like this need not know their kind;
4. rules for built-in kinds, from their rollout counters (most set no useful conditions);
5. for anything else, a `Ready` condition: True -> Current, False or Unknown -> InProgress.
   Ready=False is *not* Failed: many controllers report Ready=False while they are still working
   (a certificate being issued), and only `Stalled` promises the failure is final. The timeout
   turns a lasting Ready=False into a failure, with the condition's message;
6. objects with no status to speak of (ConfigMaps, Services, RBAC) are Current once they exist.

Only facts from the object are used: no clock, no requests (a Pod's crash loop, say, is seen
from its own status, never by listing events).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from kubectl_gitops.core.objects import split_api_version


class HealthStatus(StrEnum):
    CURRENT = "Current"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    message: str
    reason: str = ""

    @property
    def done(self) -> bool:
        """Stop waiting: either healthy or failed for good."""
        return self.status in (HealthStatus.CURRENT, HealthStatus.FAILED)


Obj = Mapping[str, Any]


def _current(message: str) -> Health:
    return Health(HealthStatus.CURRENT, message)


def _progress(reason: str, message: str) -> Health:
    return Health(HealthStatus.IN_PROGRESS, message, reason)


def _failed(reason: str, message: str) -> Health:
    return Health(HealthStatus.FAILED, message, reason)


def _status(obj: Obj) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _int(mapping: Mapping[str, Any], key: str, default: int) -> int:
    value = mapping.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def conditions_of(obj: Obj) -> Sequence[Mapping[str, Any]]:
    conditions = _status(obj).get("conditions")
    if not isinstance(conditions, list):
        return []
    return [c for c in conditions if isinstance(c, Mapping)]


def find_condition(obj: Obj, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions_of(obj) if c.get("type") == type_), None)


def _describe(condition: Mapping[str, Any]) -> str:
    reason, message = condition.get("reason") or "", condition.get("message") or ""
    return f"{reason}: {message}" if reason and message else str(reason or message or condition.get("type"))


# --- generic rules ---------------------------------------------------------------------------


def _generic(obj: Obj) -> Health | None:
    raw_metadata = obj.get("metadata")
    metadata: Mapping[str, Any] = raw_metadata if isinstance(raw_metadata, Mapping) else {}
    if metadata.get("deletionTimestamp"):
        return Health(HealthStatus.TERMINATING, "being deleted", "Terminating")
    generation = _int(metadata, "generation", -1)
    observed = _int(_status(obj), "observedGeneration", -1)
    if generation >= 0 and 0 <= observed < generation:
        return _progress("LatestGenerationNotObserved", f"generation {generation} not yet observed ({observed})")
    reconciling = find_condition(obj, "Reconciling")
    if reconciling is not None and reconciling.get("status") == "True":
        return _progress(str(reconciling.get("reason") or "Reconciling"), _describe(reconciling))
    stalled = find_condition(obj, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return _failed(str(stalled.get("reason") or "Stalled"), _describe(stalled))
    return None


def _ready_condition(obj: Obj) -> Health | None:
    ready = find_condition(obj, "Ready")
    if ready is None:
        return None
    if ready.get("status") == "True":
        return _current(_describe(ready) if ready.get("message") else "Ready")
    return _progress(str(ready.get("reason") or "NotReady"), f"not Ready: {_describe(ready)}")


# --- built-in kinds --------------------------------------------------------------------------


def _deployment(obj: Obj) -> Health:
    spec = obj.get("spec") or {}
    status = _status(obj)
    available = False
    # Without progressDeadlineSeconds the controller never reports progress: don't wait for it.
    progressing = "progressDeadlineSeconds" not in spec
    for cond in conditions_of(obj):
        if cond.get("type") == "Progressing":
            if cond.get("reason") == "ProgressDeadlineExceeded":
                return _failed("ProgressDeadlineExceeded", _describe(cond))
            progressing = progressing or (
                cond.get("status") == "True" and cond.get("reason") == "NewReplicaSetAvailable"
            )
        elif cond.get("type") == "Available":
            available = cond.get("status") == "True"
    want = _int(spec, "replicas", 1)
    have, updated = _int(status, "replicas", 0), _int(status, "updatedReplicas", 0)
    ready, avail = _int(status, "readyReplicas", 0), _int(status, "availableReplicas", 0)
    checks = (
        (want > have, "LessReplicas", f"replicas: {have}/{want}"),
        (want > updated, "LessUpdated", f"updated: {updated}/{want}"),
        (have > want, "ExtraPods", f"pending termination: {have - want}"),
        (updated > avail, "LessAvailable", f"available: {avail}/{updated}"),
        (want > ready, "LessReady", f"ready: {ready}/{want}"),
        (not progressing, "ReplicaSetNotAvailable", "new ReplicaSet not yet available"),
        (not available, "DeploymentNotAvailable", "Deployment not Available"),
    )
    return _first_failing(checks) or _current(f"Deployment is available, replicas: {have}")


def _first_failing(checks: Sequence[tuple[bool, str, str]]) -> Health | None:
    return next((_progress(reason, message) for failing, reason, message in checks if failing), None)


def _statefulset(obj: Obj) -> Health:
    spec = obj.get("spec") or {}
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") == "OnDelete":
        return _current("StatefulSet uses the OnDelete update strategy")
    status = _status(obj)
    want = _int(spec, "replicas", 1)
    have, ready = _int(status, "replicas", 0), _int(status, "readyReplicas", 0)
    current, updated = _int(status, "currentReplicas", 0), _int(status, "updatedReplicas", 0)
    checks = [
        (want > have, "LessReplicas", f"replicas: {have}/{want}"),
        (want > ready, "LessReady", f"ready: {ready}/{want}"),
        (have > want, "ExtraPods", f"pending termination: {have - want}"),
    ]
    partition = _int(strategy.get("rollingUpdate") or {}, "partition", -1)
    if partition > 0:
        checks.append((updated < want - partition, "PartitionRollout", f"updated: {updated}/{want - partition}"))
        return _first_failing(checks) or _current(f"partitioned rollout complete, updated: {updated}")
    revision_mismatch = status.get("currentRevision") != status.get("updateRevision")
    checks += [
        (want > current, "LessCurrent", f"current: {current}/{want}"),
        (revision_mismatch, "RevisionMismatch", "waiting for the update revision to become current"),
    ]
    return _first_failing(checks) or _current(f"all replicas updated and ready: {have}")


def _daemonset(obj: Obj) -> Health:
    # The controller always writes observedGeneration; before it has, it has not looked yet.
    if _int(_status(obj), "observedGeneration", -1) < 0:
        return _progress("NoObservedGeneration", "DaemonSet not yet observed by its controller")
    status = _status(obj)
    desired = _int(status, "desiredNumberScheduled", -1)
    if desired < 0:
        return _progress("NoDesiredNumber", "status.desiredNumberScheduled not yet set")
    current, updated = _int(status, "currentNumberScheduled", 0), _int(status, "updatedNumberScheduled", 0)
    available, ready = _int(status, "numberAvailable", 0), _int(status, "numberReady", 0)
    checks = (
        (desired > current, "LessCurrent", f"scheduled: {current}/{desired}"),
        (desired > updated, "LessUpdated", f"updated: {updated}/{desired}"),
        (desired > available, "LessAvailable", f"available: {available}/{desired}"),
        (desired > ready, "LessReady", f"ready: {ready}/{desired}"),
    )
    return _first_failing(checks) or _current(f"all {desired} pods scheduled, updated and available")


def _job(obj: Obj) -> Health:
    for cond in conditions_of(obj):
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return _current("Job completed")
        if cond.get("type") == "Failed":
            return _failed(str(cond.get("reason") or "JobFailed"), f"Job failed: {_describe(cond)}")
    status = _status(obj)
    counts = ", ".join(f"{k}: {_int(status, k, 0)}" for k in ("active", "succeeded", "failed"))
    return _progress("JobInProgress", f"Job in progress ({counts})")


def _crd(obj: Obj) -> Health:
    names = find_condition(obj, "NamesAccepted")
    if names is not None and names.get("status") == "False":
        return _failed("NamesNotAccepted", f"CRD names not accepted: {_describe(names)}")
    established = find_condition(obj, "Established")
    if established is not None and established.get("status") == "True":
        return _current("CRD is established")
    return _progress("NotEstablished", "CRD is not established yet")


def _namespace(obj: Obj) -> Health:
    phase = _status(obj).get("phase")
    if phase == "Active":
        return _current("Namespace is active")
    return _progress(f"Namespace{phase or 'NoPhase'}", f"Namespace phase is {phase or 'not set'}")


def _pvc(obj: Obj) -> Health:
    phase = _status(obj).get("phase")
    if phase == "Bound":
        return _current("PVC is bound")
    return _progress("NotBound", f"PVC is not bound (phase {phase or 'not set'})")


def _pod(obj: Obj) -> Health:
    phase = _status(obj).get("phase")
    if phase == "Succeeded":
        return _current("Pod completed")
    if phase == "Failed":
        return _failed("PodFailed", str(_status(obj).get("message") or "Pod failed"))
    ready = find_condition(obj, "Ready")
    if phase == "Running" and ready is not None and ready.get("status") == "True":
        return _current("Pod is ready")
    looping = [
        str(c.get("name"))
        for c in _status(obj).get("containerStatuses") or []
        if isinstance(c, Mapping) and ((c.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
    ]
    if looping:
        return _failed("ContainerCrashLooping", f"containers in CrashLoopBackOff: {', '.join(looping)}")
    return _progress("PodNotReady", f"Pod is {phase or 'pending'} and not ready")


_RULES: dict[tuple[str, str], Callable[[Obj], Health]] = {
    ("apps", "Deployment"): _deployment,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    ("", "Namespace"): _namespace,
    ("", "PersistentVolumeClaim"): _pvc,
    ("", "Pod"): _pod,
}


def assess(obj: Mapping[str, Any]) -> Health:
    """The health of one live object (see the module docstring for the rules)."""
    if not isinstance(obj.get("kind"), str) or not isinstance(obj.get("apiVersion"), str):
        return Health(HealthStatus.UNKNOWN, "not a Kubernetes object", "Unknown")
    generic = _generic(obj)
    if generic is not None:
        return generic
    group, _ = split_api_version(obj["apiVersion"])
    rule = _RULES.get((group, obj["kind"]))
    if rule is not None:
        return rule(obj)
    return _ready_condition(obj) or _current("Resource is current")
