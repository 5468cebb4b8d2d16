from datetime import UTC, datetime, timedelta, timezone

import pytest

from kubectl_gitops.core.status import (
    RunRecord,
    condition,
    count_results,
    find_condition,
    format_time,
    is_true,
    push_history,
    remove_condition,
    set_condition,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def test_format_time():
    assert format_time(T0) == "2024-05-01T12:00:00Z"
    assert format_time(datetime(2024, 5, 1, 12, 0, 0, 999)) == "2024-05-01T12:00:00Z"
    assert format_time(datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))) == "2024-05-01T12:00:00Z"
    assert format_time("2024-05-01T12:00:00Z") == "2024-05-01T12:00:00Z"
    with pytest.raises(ValueError):
        format_time("yesterday")


def test_condition():
    assert condition("Ready", True, "ReconciliationSucceeded", "Applied revision main@sha1:abc", 3, T0) == {
        "type": "Ready",
        "status": "True",
        "observedGeneration": 3,
        "lastTransitionTime": "2024-05-01T12:00:00Z",
        "reason": "ReconciliationSucceeded",
        "message": "Applied revision main@sha1:abc",
    }
    assert condition("Ready", "Unknown", "Progressing", "", 1, T0)["status"] == "Unknown"
    assert condition("Ready", False, "BuildFailed", "x", 1, T0)["status"] == "False"
    with pytest.raises(ValueError):
        condition("Ready", "yes", "r", "m", 1, T0)


def test_set_condition_keeps_transition_time_when_status_is_unchanged():
    first = set_condition([], condition("Ready", True, "A", "one", 1, T0))
    second = set_condition(first, condition("Ready", True, "B", "two", 2, T1))
    assert second == [{**condition("Ready", True, "B", "two", 2, T1), "lastTransitionTime": "2024-05-01T12:00:00Z"}]
    third = set_condition(second, condition("Ready", False, "BuildFailed", "bad", 2, T1))
    assert third[0]["lastTransitionTime"] == "2024-05-01T12:05:00Z"
    assert first[0]["reason"] == "A"  # inputs not modified


def test_set_condition_keeps_order_and_appends():
    conditions = [condition("Ready", True, "A", "", 1, T0), condition("Healthy", True, "A", "", 1, T0)]
    updated = set_condition(conditions, condition("Reconciling", True, "Progressing", "", 1, T1))
    assert [c["type"] for c in updated] == ["Ready", "Healthy", "Reconciling"]
    updated = set_condition(updated, condition("Ready", False, "X", "", 1, T1))
    assert [c["type"] for c in updated] == ["Ready", "Healthy", "Reconciling"]
    assert is_true(updated, "Reconciling") and not is_true(updated, "Ready") and not is_true(updated, "Stalled")
    assert find_condition(updated, "Healthy") is not None
    assert [c["type"] for c in remove_condition(updated, "Reconciling")] == ["Ready", "Healthy"]
    assert set_condition(None, condition("Ready", True, "A", "", 1, T0))[0]["type"] == "Ready"


def test_run_record_round_trip():
    record = RunRecord.of("main@sha1:abc", T0, 12.34567, "ReconciliationSucceeded", {"created": 2}, "ok")
    data = record.to_dict()
    assert data == {
        "revision": "main@sha1:abc",
        "startedAt": "2024-05-01T12:00:00Z",
        "durationSeconds": 12.346,
        "result": "ReconciliationSucceeded",
        "counts": {"created": 2},
        "message": "ok",
    }
    assert RunRecord.from_dict(data) == record


def test_push_history_is_newest_first_and_bounded():
    history: list[dict] = []
    for i in range(12):
        history = push_history(history, RunRecord.of(f"r{i}", T0 + timedelta(seconds=i), 1, "ReconciliationSucceeded"))
    assert len(history) == 10
    assert [h["revision"] for h in history[:3]] == ["r11", "r10", "r9"]
    assert history[-1]["revision"] == "r2"
    assert push_history(None, RunRecord.of("x", T0, 0, "BuildFailed"), limit=1)[0]["result"] == "BuildFailed"
    with pytest.raises(ValueError):
        push_history([], RunRecord.of("x", T0, 0, "r"), limit=0)


def test_count_results():
    assert count_results(["created", "unchanged", "unchanged", "failed"]) == {
        "created": 1,
        "configured": 0,
        "unchanged": 2,
        "pruned": 0,
        "failed": 1,
    }
    with pytest.raises(ValueError):
        count_results(["exploded"])


def test_count_results_accepts_str_enums():
    from enum import StrEnum

    class Result(StrEnum):
        PRUNED = "pruned"

    assert count_results([Result.PRUNED])["pruned"] == 1
