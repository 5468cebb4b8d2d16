"""The pure parts of the inspecting commands: events, stats, wait and export.

Each takes the objects as the API server returns them (dicts) and decides: which Events are
about kubectl-gitops' objects and in which order, what state a Sync or GitSource is in, whether
`wait --for` is met, and what of an object belongs in Git. No I/O and no clock: `now` is passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kubectl_gitops.constants import GROUP, PROJECT
from kubectl_gitops.core.status import find_condition

JSON = dict[str, Any]
REPORTER: Final = f"{PROJECT}.dev/{PROJECT}"
"""The reportingController of the Events the engine writes (engine/record.py)."""
OUR_KINDS: Final = ("Sync", "GitSource")

# ---------------------------------------------------------------------------------- events


def event_time(event: Mapping[str, Any]) -> str:
    """When an Event last happened, RFC 3339 to the second (events.k8s.io/v1 or core/v1 shapes)."""
    series = event.get("series") or {}
    for value in (series.get("lastObservedTime"), event.get("deprecatedLastTimestamp"), event.get("lastTimestamp"),
                  event.get("eventTime"), (event.get("metadata") or {}).get("creationTimestamp")):
        if value:
            return str(value)[:19] + "Z"
    return ""


def is_ours(event: Mapping[str, Any]) -> bool:
    """About a Sync or GitSource (any kind of our API group), or reported by the engine about any object."""
    regarding = event.get("regarding") or event.get("involvedObject") or {}
    group = str(regarding.get("apiVersion") or "").rpartition("/")[0]
    return group == GROUP or str(event.get("reportingController") or "") == REPORTER


def about(event: Mapping[str, Any], name: str) -> bool:
    """About the Sync or GitSource called `name` (in the Event's namespace)."""
    regarding = event.get("regarding") or event.get("involvedObject") or {}
    return str(regarding.get("name") or "") == name and str(regarding.get("kind") or "") in OUR_KINDS


def select_events(events: Iterable[Mapping[str, Any]], name: str = "") -> list[Mapping[str, Any]]:
    """Ours (and about `name` when given), oldest first as `flux events` lists them."""
    chosen = [e for e in events if is_ours(e) and (not name or about(e, name))]
    return sorted(chosen, key=lambda e: (event_time(e), str((e.get("metadata") or {}).get("name") or "")))


def event_row(event: Mapping[str, Any], age: str, with_namespace: bool = False) -> list[str]:
    """LAST SEEN, TYPE, REASON, OBJECT, MESSAGE (NAMESPACE first with -A)."""
    regarding = event.get("regarding") or event.get("involvedObject") or {}
    note = str(event.get("note") or event.get("message") or "").strip().splitlines()
    row = [age, str(event.get("type") or ""), str(event.get("reason") or ""),
           f"{regarding.get('kind', '')}/{regarding.get('name', '')}", note[0] if note else ""]
    if with_namespace:
        row.insert(0, str((event.get("metadata") or {}).get("namespace") or ""))
    return row


# ---------------------------------------------------------------------------------- stats

STATES: Final = ("ready", "failing", "pending", "suspended")


def state_of(obj: Mapping[str, Any]) -> str:
    """suspended (spec.suspend), else ready / failing by the Ready condition, else pending (never run)."""
    if (obj.get("spec") or {}).get("suspend"):
        return "suspended"
    ready = find_condition((obj.get("status") or {}).get("conditions"), "Ready")
    if ready is None or ready.get("status") == "Unknown":
        return "pending"
    return "ready" if ready.get("status") == "True" else "failing"


def tally(kind: str, objs: Iterable[Mapping[str, Any]]) -> JSON:
    """Counts per state, plus `pinned` (Syncs with a rollback pin) and `total`."""
    counts: JSON = {"kind": kind, "total": 0, **dict.fromkeys(STATES, 0), "pinned": 0}
    for obj in objs:
        counts["total"] += 1
        counts[state_of(obj)] += 1
        if (obj.get("spec") or {}).get("revision"):
            counts["pinned"] += 1
    return counts


# ---------------------------------------------------------------------------------- wait

WAIT_FOR: Final = ("ready", "healthy")


@dataclass(frozen=True)
class Verdict:
    """`done`: the condition holds at the current generation; `failed`: it never will without a
    change (Stalled); `why`: the state in one line, for progress and for the timeout message."""

    done: bool
    failed: bool
    why: str


def judge(sync: Mapping[str, Any], wanted: str) -> Verdict:
    """Whether `wait --for wanted` is met by this Sync, as it stands."""
    meta = sync.get("metadata") or {}
    status = sync.get("status") or {}
    generation = meta.get("generation")
    conditions = status.get("conditions")
    if status.get("observedGeneration") != generation:
        return Verdict(False, False, f"generation {generation} not reconciled yet "
                                     f"(observed {status.get('observedGeneration', 'none')})")
    stalled = find_condition(conditions, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return Verdict(False, True, f"Stalled: {stalled.get('reason')}: {stalled.get('message')}")
    if wanted == "healthy" and find_condition(conditions, "Healthy") is None and not _checks_health(sync):
        return Verdict(False, True, "it has no health checks (set spec.wait or spec.healthChecks); "
                                    "wait --for ready instead")
    condition = find_condition(conditions, "Ready" if wanted == "ready" else "Healthy")
    if condition is None:
        return Verdict(False, False, f"no {wanted.capitalize()} condition yet")
    text = f"{condition.get('type')}={condition.get('status')} {condition.get('reason')}: {condition.get('message')}"
    return Verdict(condition.get("status") == "True" and condition.get("observedGeneration", generation) == generation,
                   False, text)


def _checks_health(sync: Mapping[str, Any]) -> bool:
    spec = sync.get("spec") or {}
    return bool(spec.get("wait") or spec.get("healthChecks"))


# ---------------------------------------------------------------------------------- export

SERVER_METADATA: Final = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                          "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences",
                          "finalizers")
FOREIGN_ANNOTATIONS: Final = ("kubectl.kubernetes.io/last-applied-configuration",)


def clean(obj: Mapping[str, Any]) -> JSON:
    """What belongs in Git: apiVersion, kind, name, namespace, user labels and annotations, spec.
    Never status, server metadata, managedFields, kubectl's or the engine's own annotations."""
    meta = obj.get("metadata") or {}
    out_meta: JSON = {"name": meta.get("name")}
    if meta.get("namespace"):
        out_meta["namespace"] = meta["namespace"]
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if not _ours(k)}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if not _ours(k) and k not in FOREIGN_ANNOTATIONS}
    if labels:
        out_meta["labels"] = labels
    if annotations:
        out_meta["annotations"] = annotations
    out: JSON = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"), "metadata": out_meta}
    if "spec" in obj:
        out["spec"] = obj["spec"]
    return out


def _ours(key: str) -> bool:
    prefix = key.split("/", 1)[0] if "/" in key else ""
    return prefix == GROUP or prefix.endswith("." + GROUP)

