"""core.status.build_status: the one pure function that decides what a run writes to Sync.status."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kubectl_gitops.core.inventory import Inventory
from kubectl_gitops.core.objects import ObjectRef
from kubectl_gitops.core.status import (
    ObjectAction,
    Outcome,
    RunRecord,
    build_status,
    count_results,
    inventory_status,
    readable_history,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=1)
REF = ObjectRef("", "v1", "ConfigMap", "ns", "a")


def ok(revision: str = "main@sha1:1", **kw: object) -> Outcome:
    entry = RunRecord.of(revision, T0, 1.0, "ReconciliationSucceeded")
    return Outcome(True, "ReconciliationSucceeded", f"Applied revision: {revision}", 3, revision, applied=True,
                   inventory=Inventory([REF]), run=entry, **kw)  # type: ignore[arg-type]


def test_success_records_both_revisions_inventory_history_and_conditions() -> None:
    status = build_status(None, ok(), T0)
    assert status["observedGeneration"] == 3
    assert status["lastAppliedRevision"] == status["lastAttemptedRevision"] == "main@sha1:1"
    assert status["inventory"] == Inventory([REF]).to_status()
    assert status["history"][0]["result"] == "ReconciliationSucceeded"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"] == "2026-01-01T12:00:00Z"
    assert "Healthy" not in {c["type"] for c in status["conditions"]}


def test_a_failure_keeps_the_last_applied_revision_and_the_inventory_it_did_not_know() -> None:
    previous = build_status(None, ok(), T0)
    failed = Outcome(False, "BuildFailed", "bad.yaml: invalid", 4, "main@sha1:2", stalled=False,
                     run=RunRecord.of("main@sha1:2", T1, 0.5, "BuildFailed"))
    status = build_status(previous, failed, T1)
    assert "lastAppliedRevision" not in status  # a merge patch: the recorded one stays
    assert "inventory" not in status
    assert status["lastAttemptedRevision"] == "main@sha1:2"
    assert [h["result"] for h in status["history"]] == ["BuildFailed", "ReconciliationSucceeded"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("False", "BuildFailed",
                                                                               "2026-01-01T13:00:00Z")


def test_a_condition_that_does_not_flip_keeps_its_transition_time() -> None:
    status = build_status(build_status(None, ok(), T0), ok("main@sha1:2"), T1)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_garbage_in_the_previous_status_is_dropped_not_raised() -> None:
    previous = {"conditions": "Ready", "history": [
        1, "x", {"revision": "r", "durationSeconds": "slow"},
        {"revision": "no time", "result": "BuildFailed"},
        {"revision": "bad time", "startedAt": "yesterday", "result": "BuildFailed"},
        {"revision": "kept", "startedAt": "2026-01-01T00:00:00Z", "result": "BuildFailed", "counts": {"created": 1}}]}
    status = build_status(previous, ok(), T0)
    assert [h["revision"] for h in status["history"]] == ["main@sha1:1", "kept"]
    assert build_status("not a status", ok(), T0)["history"][0]["revision"] == "main@sha1:1"
    assert readable_history({"not": "a list"}) == []


def test_the_history_is_bounded() -> None:
    status: dict[str, Any] = {}
    for i in range(15):
        status = build_status(status, ok(f"main@sha1:{i}"), T0)
    assert len(status["history"]) == 10 and status["history"][0]["revision"] == "main@sha1:14"


def test_the_write_ahead_patch_is_the_inventory_only() -> None:
    assert inventory_status(Inventory([REF])) == {"inventory": Inventory([REF]).to_status()}


def test_object_actions_are_their_strings_in_json_and_counts() -> None:
    assert json.dumps({"result": ObjectAction.CREATED}) == '{"result": "created"}'
    assert f"{ObjectAction.PRUNED:<8}|" == "pruned  |"
    assert count_results([ObjectAction.CREATED, ObjectAction.CREATED, ObjectAction.FAILED])["created"] == 2
    assert ObjectAction.WAITING.keeps_in_inventory and not ObjectAction.PRUNED.keeps_in_inventory
    assert not ObjectAction.IGNORED.counted and ObjectAction.UNCHANGED.counted
