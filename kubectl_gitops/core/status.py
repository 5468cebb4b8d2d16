"""Pieces of `Sync.status`, built without I/O and without reading the clock.

Conditions follow the Kubernetes convention (metav1.Condition): `lastTransitionTime` changes only
when `status` flips, so "Ready since 3 days" stays true across a thousand successful runs, and
`observedGeneration` says which spec the condition describes. The caller passes `now` so that
reconciles are reproducible in tests and a whole run stamps one consistent time.

The run history is a short, newest-first list of `RunRecord`s in the status (Flux keeps a
similar history): enough to answer "what happened in the last runs" with `kubectl gitops
history`, small enough to keep the object well under etcd's size limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

RESULTS: Final = ("created", "configured", "unchanged", "pruned", "failed")
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
