"""Pieces of `Sync.status`, built without I/O and without reading the clock.

Conditions follow the Kubernetes convention (metav1.Condition): `lastTransitionTime` changes only
when `status` flips, so "Ready since 3 days" stays true across a thousand successful runs, and
`observedGeneration` says which spec the condition describes. The caller passes `now` so that
reconciles are reproducible in tests and a whole run stamps one consistent time.

The run history is a short, newest-first list of `RunRecord`s in the status (Flux keeps a
similar history): enough to answer "what happened in the last runs" with `kubectl gitops
history`, small enough to keep the object well under etcd's size limit.

`build_status` is the one place that decides what a run writes: the engine gathers an
`Outcome` along the run and hands it here with the status it read. A status someone damaged
(conditions or history that are not lists of objects, a generation that is not a number) is
read as far as it can be and rewritten whole: a bad entry is dropped, never a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from kubectl_gitops.core.inventory import Inventory

RESULTS: Final = ("created", "configured", "unchanged", "pruned", "failed")


class ObjectAction(StrEnum):
    """What happened to one object in a run (sync, delete, install, uninstall).

    A str enum: it compares, formats and serialises as its value, so `-o json` output and the
    history counts are the same strings as before."""

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Left alone on purpose (not ours any more, prune opted out, gone already)."""
    WAITING = "waiting"
    """Deleted but held by finalizers: still in the inventory."""
    IGNORED = "ignored"
    """A labelled stranger: neither in the inventory nor in Git."""
    DELETED = "deleted"
    ABSENT = "absent"
    """Asked to delete, already gone."""
    WOULD_DELETE = "would-delete"
    """--dry-run: this object would be deleted (pruned)."""
    WOULD_SKIP = "would-skip"
    """--dry-run: this object would be left alone (the message says why)."""

    @property
    def counted(self) -> bool:
        """Counted in a run's summary and history (the others are reported, not counted)."""
        return self.value in RESULTS

    @property
    def keeps_in_inventory(self) -> bool:
        """After a prune, the object stays listed (retried, or still being deleted)."""
        return self in (ObjectAction.FAILED, ObjectAction.WAITING)
Condition = dict[str, Any]
Time = datetime | str


def format_time(value: Time) -> str:
    """RFC 3339 in UTC with second precision, as metav1.Time serialises (`2024-05-01T12:00:00Z`).
    Naive datetimes are taken as UTC. Strings are parsed and re-formatted (ValueError if not ISO)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_string(status: bool | str) -> str:
    if isinstance(status, bool):
        return "True" if status else "False"
    if status not in ("True", "False", "Unknown"):
        raise ValueError(f"condition status must be True, False or Unknown, not {status!r}")
    return status


def condition(type_: str, status: bool | str, reason: str, message: str, generation: int, now: Time) -> Condition:
    """A metav1.Condition as a dict. `status` may be a bool or "True"/"False"/"Unknown"."""
    return {
        "type": type_,
        "status": _status_string(status),
        "observedGeneration": generation,
        "lastTransitionTime": format_time(now),
        "reason": reason,
        "message": message,
    }


def find_condition(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions or () if c.get("type") == type_), None)


def is_true(conditions: Iterable[Mapping[str, Any]] | None, type_: str) -> bool:
    found = find_condition(conditions, type_)
    return found is not None and found.get("status") == "True"


def set_condition(conditions: Sequence[Mapping[str, Any]] | None, new: Mapping[str, Any]) -> list[Condition]:
    """A new list with `new` in place of the condition of the same type (appended if absent).
    When the status did not change, the old `lastTransitionTime` is kept."""
    result: list[Condition] = []
    replaced = False
    for old in conditions or ():
        if old.get("type") != new.get("type"):
            result.append(dict(old))
            continue
        merged = dict(new)
        if old.get("status") == new.get("status") and old.get("lastTransitionTime"):
            merged["lastTransitionTime"] = old["lastTransitionTime"]
        result.append(merged)
        replaced = True
    if not replaced:
        result.append(dict(new))
    return result


def remove_condition(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> list[Condition]:
    return [dict(c) for c in conditions or () if c.get("type") != type_]


@dataclass(frozen=True)
class RunRecord:
    """One reconcile run, as kept in `status.history`."""

    revision: str
    started: str
    """RFC 3339 (pass a datetime or ISO string to `RunRecord.of`)."""
    duration: float
    """Seconds."""
    result: str
    """The reason: ReconciliationSucceeded, BuildFailed, ..."""
    counts: Mapping[str, int] = field(default_factory=dict)
    message: str = ""
    by: str = ""
    """Who ran it: the identity the run's caller authenticated as ("" when unknown)."""
    pinned: bool = False
    """The run applied the Sync's pinned `spec.revision` (a rollback), not its ref's tip."""

    @classmethod
    def of(
        cls,
        revision: str,
        started: Time,
        duration: float,
        result: str,
        counts: Mapping[str, int] | None = None,
        message: str = "",
        *,
        by: str = "",
        pinned: bool = False,
    ) -> RunRecord:
        return cls(revision, format_time(started), round(float(duration), 3), result, dict(counts or {}), message,
                   by, pinned)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "revision": self.revision,
            "startedAt": self.started,
            "durationSeconds": self.duration,
            "result": self.result,
            "counts": dict(self.counts),
        }
        if self.message:
            out["message"] = self.message
        if self.by:
            out["by"] = self.by
        if self.pinned:
            out["pinned"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        return cls(
            revision=str(data.get("revision", "")),
            started=str(data.get("startedAt", "")),
            duration=float(data.get("durationSeconds", 0.0)),
            result=str(data.get("result", "")),
            counts={str(k): int(v) for k, v in (data.get("counts") or {}).items()},
            message=str(data.get("message", "")),
            by=str(data.get("by", "")),
            pinned=bool(data.get("pinned", False)),
        )


def push_history(
    history: Sequence[Mapping[str, Any]] | None, record: RunRecord, limit: int = 10
) -> list[dict[str, Any]]:
    """`record` first, then the older entries, at most `limit` in all (status form, dicts)."""
    if limit < 1:
        raise ValueError("history limit must be at least 1")
    return [record.to_dict(), *(dict(h) for h in (history or ()))][:limit]


def count_results(results: Iterable[str]) -> dict[str, int]:
    """Per-object results (created/configured/unchanged/pruned/failed; str enums work) counted,
    every key present so the history always has the same shape."""
    counts = dict.fromkeys(RESULTS, 0)
    for result in results:
        key = str(result.value) if hasattr(result, "value") else str(result)
        if key not in counts:
            raise ValueError(f"unknown result {key!r}; expected one of {', '.join(RESULTS)}")
        counts[key] += 1
    return counts


@dataclass(frozen=True)
class Outcome:
    """What one run found, as the status records it (built along the run, written once)."""

    ready: bool
    reason: str
    message: str
    generation: int
    revision: str = ""
    applied: bool = False
    """The revision was applied (lastAppliedRevision moves); False keeps the last good one."""
    stalled: bool = False
    healthy: bool | None = None
    """None: health was not judged in this run (the Healthy condition is left as it was)."""
    inventory: Inventory | None = None
    """None: the run never got as far as knowing it (the recorded inventory is left as it was)."""
    run: RunRecord | None = None
    """The history entry; None when the run never started (an invalid spec)."""


def generation_of(obj: Mapping[str, Any]) -> int:
    """`metadata.generation` as a number (0 when missing or not one)."""
    meta = obj.get("metadata")
    value = meta.get("generation") if isinstance(meta, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def readable_conditions(value: Any) -> list[Condition]:
    """The conditions that can be read; anything else (not a list, an entry without a type) dropped."""
    if not isinstance(value, list):
        return []
    return [dict(c) for c in value if isinstance(c, Mapping) and isinstance(c.get("type"), str)]


def readable_history(value: Any) -> list[dict[str, Any]]:
    """The history entries that can be read back as RunRecords with the fields the CRD requires
    (revision, startedAt as a time, result); the rest dropped, so what is written back is valid."""
    if not isinstance(value, list):
        return []
    out = []
    for entry in value:
        if not isinstance(entry, Mapping):
            continue
        try:
            run = RunRecord.from_dict(entry)
            format_time(run.started)
        except (TypeError, ValueError, AttributeError):
            continue
        if run.result and "revision" in entry:
            out.append(run.to_dict())
    return out


def kstatus_conditions(old: Any, *, ready: bool | str, reason: str, message: str, generation: int,
                       at: Time, reconciling: bool = False, stalled: bool = False,
                       healthy: bool | None = None) -> list[Condition]:
    """The kstatus set: Ready, Reconciling and Stalled always; Healthy when health was judged."""
    conds = set_condition(readable_conditions(old), condition("Ready", ready, reason, message, generation, at))
    conds = set_condition(conds, condition("Reconciling", reconciling, "Progressing" if reconciling else reason,
                                           message if reconciling else "", generation, at))
    conds = set_condition(conds, condition("Stalled", stalled, reason if stalled else "NotStalled",
                                           message if stalled else "", generation, at))
    if healthy is not None:
        conds = set_condition(conds, condition("Healthy", healthy, "Succeeded" if healthy else reason,
                                               "all health checks passed" if healthy else message,
                                               generation, at))
    return conds


def build_status(previous: Any, outcome: Outcome, now: Time) -> dict[str, Any]:
    """The `status` merge patch for a run's outcome over the `previous` status (as read)."""
    old = previous if isinstance(previous, Mapping) else {}
    status: dict[str, Any] = {
        "observedGeneration": outcome.generation,
        "conditions": kstatus_conditions(old.get("conditions"), ready=outcome.ready, reason=outcome.reason,
                                         message=outcome.message, generation=outcome.generation, at=now,
                                         stalled=outcome.stalled, healthy=outcome.healthy),
    }
    if outcome.revision:
        status["lastAttemptedRevision"] = outcome.revision
        if outcome.applied:
            status["lastAppliedRevision"] = outcome.revision
    if outcome.inventory is not None:
        status["inventory"] = outcome.inventory.to_status()
    if outcome.run is not None:
        status["history"] = push_history(readable_history(old.get("history")), outcome.run)
    return status


def inventory_status(inventory: Inventory) -> dict[str, Any]:
    """The status patch that records only an inventory (written ahead of a run's writes)."""
    return {"inventory": inventory.to_status()}
