"""The pure parts of events, stats, wait and export (core/inspect.py)."""

from __future__ import annotations

from typing import Any

from kubectl_gitops.core.inspect import (
    clean,
    event_row,
    event_time,
    is_ours,
    judge,
    select_events,
    state_of,
    tally,
)

JSON = dict[str, Any]


def event(name: str, when: str, *, kind: str = "Sync", api: str = "kubectl-gitops.dev/v1alpha1",
          reporter: str = "", note: str = "note", **extra: Any) -> JSON:
    return {"metadata": {"name": f"{name}.{when}", "namespace": "ns"}, "eventTime": when, "type": "Normal",
            "reason": "ReconciliationSucceeded", "note": note, "reportingController": reporter,
            "regarding": {"apiVersion": api, "kind": kind, "name": name}, **extra}


def test_events_ours_only_oldest_first_and_by_name():
    pod = event("web", "2026-01-01T00:00:03.000000Z", kind="Pod", api="v1")
    mine = event("app", "2026-01-01T00:00:02.123456Z")
    older = event("src", "2026-01-01T00:00:01.000000Z", kind="GitSource")
    reported = event("cm", "2026-01-01T00:00:04.000000Z", kind="ConfigMap", api="v1",
                     reporter="kubectl-gitops.dev/kubectl-gitops")
    assert not is_ours(pod) and is_ours(mine) and is_ours(reported)
    assert select_events([pod, mine, older, reported]) == [older, mine, reported]
    assert select_events([pod, mine, older, reported], "app") == [mine]
    assert select_events([event("app", "2026-01-01T00:00:00Z", kind="Tenant")], "app") == []


def test_event_time_prefers_the_latest_observation():
    assert event_time({"eventTime": "2026-01-01T00:00:02.123456Z"}) == "2026-01-01T00:00:02Z"
    series = {"eventTime": "2026-01-01T00:00:02.1Z", "series": {"lastObservedTime": "2026-01-01T01:00:00.5Z"}}
    assert event_time(series) == "2026-01-01T01:00:00Z"
    assert event_time({"metadata": {"creationTimestamp": "2026-01-01T00:00:09Z"}}) == "2026-01-01T00:00:09Z"
    assert event_time({}) == ""


def test_event_row_first_line_of_the_note_and_namespace_with_all():
    row = event_row(event("app", "t", note="line one\nline two"), "5s", with_namespace=True)
    assert row == ["ns", "5s", "Normal", "ReconciliationSucceeded", "Sync/app", "line one"]


def sync(ready: str | None, *, suspend: bool = False, pin: str = "") -> JSON:
    conds = [] if ready is None else [{"type": "Ready", "status": ready}]
    spec: JSON = {"suspend": suspend}
    if pin:
        spec["revision"] = pin
    return {"spec": spec, "status": {"conditions": conds}}


def test_states_and_tally():
    assert [state_of(s) for s in (sync("True"), sync("False"), sync(None), sync("Unknown"),
                                  sync("True", suspend=True))] == ["ready", "failing", "pending", "pending",
                                                                    "suspended"]
    counts = tally("Sync", [sync("True"), sync("False", pin="a" * 40), sync("True", suspend=True), sync(None)])
    assert counts == {"kind": "Sync", "total": 4, "ready": 1, "failing": 1, "pending": 1, "suspended": 1, "pinned": 1}


def waited(generation: int, observed: int, **conds: str) -> JSON:
    return {"metadata": {"generation": generation}, "spec": {"wait": True},
            "status": {"observedGeneration": observed,
                       "conditions": [{"type": k, "status": v, "reason": "R", "message": "m",
                                       "observedGeneration": observed} for k, v in conds.items()]}}


def test_wait_needs_the_current_generation():
    assert not judge(waited(2, 1, Ready="True"), "ready").done
    assert "generation 2 not reconciled yet (observed 1)" in judge(waited(2, 1, Ready="True"), "ready").why
    assert judge(waited(2, 2, Ready="True"), "ready").done
    assert not judge(waited(2, 2, Ready="False"), "ready").done
    assert not judge(waited(2, 2, Ready="False"), "ready").failed


def test_wait_stalled_fails_and_healthy_needs_health_checks():
    stalled = judge(waited(1, 1, Ready="False", Stalled="True"), "ready")
    assert stalled.failed and stalled.why.startswith("Stalled: R")
    assert judge(waited(1, 1, Ready="True", Healthy="True"), "healthy").done
    assert not judge(waited(1, 1, Ready="True"), "healthy").done
    no_checks = waited(1, 1, Ready="True")
    no_checks["spec"] = {}
    verdict = judge(no_checks, "healthy")
    assert verdict.failed and "no health checks" in verdict.why


def test_export_keeps_what_a_person_declares():
    live = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
            "metadata": {"name": "app", "namespace": "ns", "uid": "u", "resourceVersion": "9", "generation": 3,
                         "creationTimestamp": "t", "managedFields": [{}], "finalizers": ["x"],
                         "labels": {"team": "a", "kubectl-gitops.dev/sync": "parent"},
                         "annotations": {"note": "keep", "kubectl.kubernetes.io/last-applied-configuration": "{}",
                                         "kubectl-gitops.dev/revision": "main@sha1:x",
                                         "sub.kubectl-gitops.dev/x": "y"}},
            "spec": {"path": "apps"}, "status": {"history": []}}
    assert clean(live) == {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
                           "metadata": {"name": "app", "namespace": "ns", "labels": {"team": "a"},
                                        "annotations": {"note": "keep"}},
                           "spec": {"path": "apps"}}
