"""The informer (list, watch from the list's version, bookmarks, re-list on 410) and the trigger rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubectl_gitops.adapters.kube import ApiError
from kubectl_gitops.constants import ANNOTATION_REQUESTED_AT, FINALIZER
from kubectl_gitops.controller import triggers
from kubectl_gitops.controller.informer import Informer

JSON = dict[str, Any]


def obj(name: str, rv: str, ns: str = "n", **meta: Any) -> JSON:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv, **meta}}


class FakeServer:
    def __init__(self) -> None:
        self.items = [obj("a", "1")]
        self.list_version = "1"
        self.watch_from: list[str] = []
        self.script: list[list[JSON] | ApiError] = []

    def list(self) -> tuple[list[JSON], str]:
        return list(self.items), self.list_version

    def watch(self, version: str) -> Iterator[JSON]:
        self.watch_from.append(version)
        step = self.script.pop(0)
        if isinstance(step, ApiError):
            raise step
        yield from step


def test_watch_starts_at_the_list_version_and_follows_bookmarks() -> None:
    server = FakeServer()
    events: list[tuple[str, str]] = []
    inf = Informer("x", server.list, server.watch).on_event(
        lambda k, o, _old: events.append((k, o["metadata"]["name"])))
    inf.relist()
    server.script = [[{"type": "ADDED", "object": obj("b", "5")},
                      {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}}],
                     [{"type": "DELETED", "object": obj("a", "11")}]]
    inf.watch_once()
    inf.watch_once()
    assert server.watch_from == ["1", "9"], "a restarted watch must resume from the bookmark"
    assert events == [("ADDED", "a"), ("ADDED", "b"), ("DELETED", "a")]
    assert inf.get("n/a") is None and inf.get("n/b") is not None


def test_gone_means_list_again_and_changes_missed_meanwhile_are_reported() -> None:
    server = FakeServer()
    events: list[tuple[str, str]] = []
    inf = Informer("x", server.list, server.watch, backoff=0).on_event(
        lambda k, o, _old: events.append((k, o["metadata"]["name"])))
    inf.relist()
    server.script = [ApiError(410, "too old resource version", "Expired")]
    try:
        inf.watch_once()
    except ApiError as err:
        assert err.status == 410
    server.items = [obj("a", "20"), obj("c", "21")]  # a changed, c created while we were not watching
    server.list_version = "21"
    inf.relist()
    assert events == [("ADDED", "a"), ("MODIFIED", "a"), ("ADDED", "c")]
    assert inf.version == "21" and inf.lists == 2


def sync(gen: int = 1, observed: int = 1, **meta: Any) -> JSON:
    return {"metadata": {"name": "s", "namespace": "n", "generation": gen, "finalizers": [FINALIZER], **meta},
            "spec": {"sourceRef": {"name": "src"}},
            "status": {"observedGeneration": observed,
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def test_spec_change_runs_now_status_write_does_not() -> None:
    old = sync()
    assert triggers.sync_needs_run(sync(gen=2), old)
    status_only = sync()
    status_only["status"]["history"] = [{"revision": "x"}]
    assert not triggers.sync_needs_run(status_only, old)


def test_request_annotation_runs_until_handled() -> None:
    asked = sync(annotations={ANNOTATION_REQUESTED_AT: "t1"})
    assert triggers.sync_needs_run(asked, sync())
    during_the_run = sync(annotations={ANNOTATION_REQUESTED_AT: "t1"})
    during_the_run["status"]["history"] = [{"revision": "x"}]
    assert not triggers.sync_needs_run(during_the_run, asked), "its own status write queued a second run"
    asked["status"]["lastHandledReconcileAt"] = "t1"
    assert not triggers.sync_needs_run(asked, asked)
    assert triggers.sync_needs_run(sync(annotations={ANNOTATION_REQUESTED_AT: "t0"}), None), "pending at start-up"


def test_missing_finalizer_and_deletion_run_now() -> None:
    bare = sync()
    bare["metadata"]["finalizers"] = []
    assert triggers.sync_needs_run(bare, None)
    assert triggers.sync_needs_run(sync(deletionTimestamp="2026-01-01T00:00:00Z"), sync())
    gone = sync(deletionTimestamp="2026-01-01T00:00:00Z")
    gone["metadata"]["finalizers"] = []
    assert not triggers.sync_needs_run(gone, None), "nothing left to do for us"


def test_first_sight_runs_now_only_when_the_status_is_behind() -> None:
    assert not triggers.sync_needs_run(sync(), None)
    assert triggers.sync_needs_run(sync(gen=3, observed=2), None)


def test_dependency_turning_ready() -> None:
    not_ready = sync()
    not_ready["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    assert triggers.became_ready(sync(), not_ready)
    assert not triggers.became_ready(sync(), sync())
    assert not triggers.became_ready(sync(gen=2, observed=1), not_ready), "Ready for an older spec"
    dependent = {"metadata": {"namespace": "n"},
                 "spec": {"dependsOn": [{"name": "s"}, {"name": "t", "namespace": "m"}]}}
    assert triggers.depends_on(dependent) == {"n/s", "m/t"}
