"""`sync --remote`: the wait for the controller's answer and the summary read from the status."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.constants import ANNOTATION_ORPHAN, FINALIZER
from kubectl_gitops.controller.remote import NotHandled, report_of, wait_handled
from kubectl_gitops.engine.install import _release_syncs

JSON = dict[str, Any]


def status_obj(handled: str = "", ready: str = "True", reason: str = "ReconciliationSucceeded") -> JSON:
    return {"metadata": {"name": "app", "namespace": "n"}, "spec": {},
            "status": {"lastHandledReconcileAt": handled, "lastAttemptedRevision": "main@sha1:abc",
                       "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": "m"}],
                       "history": [{"revision": "main@sha1:abc", "durationSeconds": 1.5, "result": reason,
                                    "counts": {"created": 2, "unchanged": 3}}]}}


class FakeKube:
    def __init__(self, answers: list[JSON | None]) -> None:
        self.answers = answers
        self.gets = 0

    def get(self, _info: Any, _name: str, _ns: str | None = None) -> JSON | None:
        self.gets += 1
        return self.answers[min(self.gets - 1, len(self.answers) - 1)]


def test_waits_until_the_request_is_handled() -> None:
    kube = FakeKube([status_obj("old"), status_obj("old"), status_obj("t1")])
    got = wait_handled(kube, "n", "app", "t1", 10, sleep=lambda _s: None)  # type: ignore[arg-type]
    assert kube.gets == 3 and got["status"]["lastHandledReconcileAt"] == "t1"


def test_times_out_naming_the_cause() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises(NotHandled, match="did not handle the request"):
        wait_handled(FakeKube([status_obj("old")]), "n", "app", "t1", 2, clock=lambda: now[0],  # type: ignore[arg-type]
                     sleep=sleep)


def test_report_is_the_recorded_run() -> None:
    report = report_of(status_obj("t1"))
    assert report.ready and report.reason == "ReconciliationSucceeded" and report.revision == "main@sha1:abc"
    assert report.counts == {"created": 2, "unchanged": 3} and report.duration == 1.5
    failed = report_of(status_obj("t1", ready="False", reason="BuildFailed"))
    assert not failed.ready and failed.reason == "BuildFailed"
    suspended = status_obj("t1")
    suspended["spec"]["suspend"] = True
    assert report_of(suspended).reason == "Suspended"


class UninstallKube:
    def __init__(self) -> None:
        self.patches: list[JSON] = []
        self.deleted: list[str] = []

    def delete(self, _info: Any, name: str, _ns: str | None = None) -> bool:
        self.deleted.append(name)
        return True

    def list(self, _info: Any) -> list[JSON]:
        return [{"metadata": {"name": "a", "namespace": "n", "resourceVersion": "5",
                              "finalizers": ["other/keep", FINALIZER]}},
                {"metadata": {"name": "b", "namespace": "n", "resourceVersion": "6"}}]

    def merge_patch(self, _info: Any, name: str, _ns: str | None, patch: JSON) -> JSON:
        self.patches.append({"name": name, **patch})
        return {}


class Resources:
    def get(self, _api_version: str, _kind: str) -> object:
        return object()


def test_uninstall_stops_the_controller_then_releases_finalized_syncs() -> None:
    kube = UninstallKube()
    objs = [{"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "kubectl-gitops-controller", "namespace": "kubectl-gitops-system"}}]
    _release_syncs(kube, Resources(), objs)  # type: ignore[arg-type]
    assert kube.deleted == ["kubectl-gitops-controller"]
    assert kube.patches == [{"name": "a", "metadata": {"finalizers": ["other/keep"],
                                                       "annotations": {ANNOTATION_ORPHAN: "true"},
                                                       "resourceVersion": "5"}}]
