"""Run history and rollback pins, decided purely from a Sync's status and spec.

A rollback is a pin: `spec.revision` on the Sync names an earlier revision (a full commit SHA,
or the revision string history records, `main@sha1:<sha>`), and the source step checks that
commit out instead of the ref's tip, as long as it is in the ref's history. Keeping the pin in the
spec (not in an annotation or in the status) makes it declared, visible in `get`, in `export`
and in the object's generation, and removable by one field: `rollback --cancel` or `resume`.

Which revision a rollback goes to is chosen here from `status.history` (newest first): the
target must be a revision that a run applied successfully, so nobody can pin a Sync to a commit
that never built or applied.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.status import RESULTS, RunRecord

SUCCEEDED: Final = "ReconciliationSucceeded"
PIN_RE: Final = re.compile(r"^(?:(?P<ref>[^@]+)@)?(?:sha1:)?(?P<sha>[0-9a-f]{40})$")
_SHA_PREFIX = re.compile(r"^[0-9a-f]{7,40}$")


class RevisionNotInHistory(GitOpsError):
    reason = "RevisionNotInHistory"


def pin_sha(pin: str) -> str:
    """The commit SHA a `spec.revision` names (ValueError when it names none)."""
    found = PIN_RE.match(pin.strip())
    if found is None:
        raise ValueError(f"{pin!r} is not a full commit SHA nor a revision like main@sha1:<40 hex digits>")
    return found.group("sha")


def sha_of(revision: str) -> str:
    """The SHA of a recorded revision (`main@sha1:<sha>`, `sha1:<sha>`), or "" when there is none."""
    found = PIN_RE.match(revision.strip())
    return found.group("sha") if found else ""


def short(revision: str, digits: int = 12) -> str:
    """`main@sha1:0123456789ab`: the revision with its SHA cut to `digits` characters."""
    sha = sha_of(revision)
    return revision[: len(revision) - len(sha) + digits] if sha else revision


def pinned(sync: Mapping[str, Any]) -> str:
    """The Sync's pin (`spec.revision`), "" when it tracks its ref."""
    return str((sync.get("spec") or {}).get("revision") or "")


def records(sync: Mapping[str, Any]) -> list[RunRecord]:
    """`status.history` as RunRecords, newest first; entries that can't be read are skipped."""
    out = []
    for entry in (sync.get("status") or {}).get("history") or []:
        if isinstance(entry, Mapping):
            try:
                out.append(RunRecord.from_dict(entry))
            except (TypeError, ValueError):
                continue
    return out


def changes(counts: Mapping[str, int]) -> str:
    """`2 created, 1 configured` (unchanged objects are left out); `-` when nothing changed."""
    shown = [f"{counts[k]} {k}" for k in RESULTS if k != "unchanged" and counts.get(k)]
    return ", ".join(shown) or "-"


@dataclass(frozen=True)
class Target:
    """Where a rollback goes: the revision string to pin and the run that applied it."""

    revision: str
    sha: str
    run: RunRecord


def rollback_target(history: Sequence[RunRecord], current: str, to: str, where: str) -> Target:
    """The revision `rollback` pins. `to` may be a full revision string, a SHA or a SHA prefix of
    at least 7 digits; empty means the newest applied revision other than `current` (the Sync's
    lastAppliedRevision). Only revisions a run applied successfully qualify."""
    applied = [r for r in history if r.result == SUCCEEDED and sha_of(r.revision)]
    if not to:
        current_sha = sha_of(current)
        for run in applied:
            if sha_of(run.revision) != current_sha:
                return Target(run.revision, sha_of(run.revision), run)
        raise RevisionNotInHistory(f"{where} has no earlier applied revision in its history "
                                   f"({_listed(applied)}); nothing to roll back to")
    matches = _matching(history, to.strip())
    good = _unique([r for r in matches if r.result == SUCCEEDED])
    if len(good) == 1:
        return Target(good[0].revision, sha_of(good[0].revision), good[0])
    if len(good) > 1:
        raise RevisionNotInHistory(f"revision {to!r} is ambiguous in the history of {where}: "
                                   + ", ".join(short(r.revision) for r in good))
    if matches:
        results = ", ".join(sorted({r.result for r in matches}))
        raise RevisionNotInHistory(f"revision {to!r} was never applied successfully by {where} "
                                   f"(its runs: {results}); only applied revisions can be rolled back to")
    raise RevisionNotInHistory(f"revision {to!r} is not in the history of {where} ({_listed(applied)})")


def _matching(history: Sequence[RunRecord], to: str) -> list[RunRecord]:
    exact = [r for r in history if r.revision == to]
    if exact:
        return exact
    wanted = sha_of(to) or (to.lower() if _SHA_PREFIX.match(to.lower()) else "")
    if not wanted:
        return []
    return [r for r in history if sha_of(r.revision).startswith(wanted)]


def _unique(runs: list[RunRecord]) -> list[RunRecord]:
    seen: dict[str, RunRecord] = {}
    for run in runs:
        seen.setdefault(sha_of(run.revision), run)
    return list(seen.values())


def _listed(applied: Sequence[RunRecord]) -> str:
    revisions = list(dict.fromkeys(short(r.revision) for r in applied))
    if not revisions:
        return "no applied revisions recorded"
    return "applied: " + ", ".join(revisions)
