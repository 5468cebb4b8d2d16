"""engine.queries: what get, delete and suspend read, against in-memory API servers.

The watch is tested against a scripted server (LIST answers, then watch streams that end, send
bookmarks, or fail with 410 Gone), so the resumption rules are checked exactly: start at the
LIST's resourceVersion, continue from the last event's, list again after 410 and report only
what changed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.constants import LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.selectors import parse_label_selector, parse_status_selector
from kubectl_gitops.core.status import ObjectAction
from kubectl_gitops.engine import queries
from kubectl_gitops.engine.reconcile import Engine
from tests.unit.fakecluster import SYNCS
from tests.unit.test_engine_run import NS, World, cm, files

JSON = dict[str, Any]


def sync(name: str, version: str, ready: str = "True", **labels: str) -> JSON:
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": version, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}


class ScriptedKube:
    """LIST answers and watch streams, in order; records where each watch started."""

    def __init__(self, lists: list[tuple[list[JSON], str]], watches: list[list[JSON] | ApiError], *,
                 idle: bool = False) -> None:
        self.idle = idle
        """When the script is done, watches end quietly (a server with nothing to say) instead of failing."""
        self.lists = list(lists)
        self.watches = list(watches)
        self.started: list[str] = []
        self.queries: list[dict[str, str]] = []

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None, **_: Any) -> JSON:
        self.queries.append(dict(query or {}))
        items, version = self.lists.pop(0)
        return {"items": items, "metadata": {"resourceVersion": version}}

    def watch(self, path: str, resource_version: str, *, timeout_seconds: int = 240) -> Iterator[JSON]:
        self.started.append(resource_version)
        if not self.watches:
            if self.idle:
                time.sleep(0.1)
                return
            raise AssertionError("no more watches scripted")
        stream = self.watches.pop(0)
        if isinstance(stream, ApiError):
            raise stream
        yield from stream


def query(**kw: Any) -> queries.Query:
    return queries.Query(SYNCS, "ns", **kw)


def take(kube: ScriptedKube, q: queries.Query, count: int) -> list[tuple[str, str, str]]:
    listing = queries.list_objects(cast(Kube, kube), q)
    out = []
    for change in queries.watch(cast(Kube, kube), q, listing):
        out.append((change.type, change.obj["metadata"]["name"], change.obj["metadata"]["resourceVersion"]))
        if len(out) == count:
            break
    return out


def test_the_watch_starts_at_the_list_and_resumes_after_the_last_event_skipping_bookmarks() -> None:
    kube = ScriptedKube([([sync("a", "5")], "10")], [
        [{"type": "MODIFIED", "object": sync("a", "11")},
         {"type": "BOOKMARK", "object": {"kind": "Sync", "metadata": {"resourceVersion": "15"}}}],
        [{"type": "ADDED", "object": sync("b", "16")}],
    ])
    assert take(kube, query(), 2) == [("MODIFIED", "a", "11"), ("ADDED", "b", "16")]
    assert kube.started == ["10", "15"]  # the bookmark moved the resumption point


def test_410_gone_lists_again_and_reports_only_what_changed() -> None:
    kube = ScriptedKube([([sync("a", "5"), sync("b", "6")], "10"),
                         ([sync("a", "5"), sync("c", "30")], "31")], [
        ApiError(410, "too old resource version", "Expired"),
        [{"type": "MODIFIED", "object": sync("c", "32")}],
    ])
    assert take(kube, query(), 3) == [("DELETED", "b", "6"), ("ADDED", "c", "30"), ("MODIFIED", "c", "32")]
    assert kube.started == ["10", "31"]


def test_other_watch_errors_are_raised() -> None:
    kube = ScriptedKube([([], "1")], [ApiError(403, "forbidden")])
    with pytest.raises(ApiError, match="forbidden"):
        take(kube, query(), 1)


def test_selectors_go_to_the_server_and_filter_the_watch() -> None:
    q = query(label_selector="team=a", labels=parse_label_selector("team=a"),
              status=parse_status_selector("ready=false"))
    kube = ScriptedKube([([sync("a", "5", "False", team="a"), sync("b", "6", "True", team="a")], "10")], [
        [{"type": "MODIFIED", "object": sync("b", "11", "True", team="b")},  # never shown: nothing
         {"type": "MODIFIED", "object": sync("a", "12", "True", team="a")},  # Ready now: leaves the view
         {"type": "MODIFIED", "object": sync("b", "13", "False", team="a")}],
    ])
    listing = queries.list_objects(cast(Kube, kube), q)
    assert [o["metadata"]["name"] for o in listing.items] == ["a"]
    assert kube.queries[0]["labelSelector"] == "team=a"
    changes = []
    for change in queries.watch(cast(Kube, kube), q, listing):
        changes.append((change.type, change.obj["metadata"]["name"]))
        if len(changes) == 2:
            break
    assert changes == [("DELETED", "a"), ("MODIFIED", "b")]


def test_a_named_object_that_does_not_exist_is_one_clear_error() -> None:
    kube = ScriptedKube([([], "1")], [])
    with pytest.raises(GitOpsError, match="Sync ns/nope not found"):
        queries.list_objects(cast(Kube, kube), query(name="nope"))
    assert kube.queries[0]["fieldSelector"] == "metadata.name=nope"


# ---------------------------------------------------------------- delete and suspend (fake cluster)


def synced(*objs: JSON) -> World:
    w = World(*objs)
    assert w.run().ready
    return w


def test_a_delete_dry_run_lists_what_the_prune_would_delete_and_changes_nothing() -> None:
    w = synced(cm("a"), cm("b"))
    b = w.cluster.state.objects[("", "ConfigMap", NS, "b")]
    b["metadata"]["labels"] = {LABEL_SYNC: "other", LABEL_SYNC_NAMESPACE: NS}  # adopted elsewhere since
    before = len([c for c in w.cluster.calls if c.verb in ("delete", "patch", "apply")])
    plan = queries.plan_delete_sync(w.cluster.kube, NS, "app", keep=False)
    assert {r.ref.name: r.action for r in plan.results} == {"a": ObjectAction.WOULD_DELETE,
                                                            "b": ObjectAction.WOULD_SKIP}
    assert "no longer carries this Sync's labels" in next(r.message for r in plan.results if r.ref.name == "b")
    assert len([c for c in w.cluster.calls if c.verb in ("delete", "patch", "apply")]) == before
    assert queries.plan_delete_sync(w.cluster.kube, NS, "app", keep=True).results == ()


def test_delete_prunes_then_deletes_the_sync() -> None:
    w = synced(cm("a"))
    report = queries.delete_sync(w.cluster.kube, NS, "app", keep=False)
    assert [(r.ref.name, r.action) for r in report.results] == [("a", ObjectAction.PRUNED)]
    assert report.deleted and w.configmaps() == set() and w.cluster.stored(SYNCS, "app", NS) is None


def test_a_failed_prune_keeps_the_sync_and_carries_the_results() -> None:
    w = synced(cm("a"))
    w.cluster.fail("delete", "ConfigMap", "a", message="forbidden")
    with pytest.raises(queries.DeleteFailed) as caught:
        queries.delete_sync(w.cluster.kube, NS, "app", keep=False)
    assert caught.value.reason == "PruneFailed" and caught.value.results[0].failed
    assert w.cluster.stored(SYNCS, "app", NS) is not None


def test_suspend_writes_the_spec_and_the_next_run_does_nothing() -> None:
    w = synced(cm("a"))
    out = queries.set_suspend(w.cluster.kube, SYNCS, NS, "app", True)
    assert out["spec"]["suspend"] is True
    w.git.commit(files(cm("a", "2")), "f" * 40)
    assert Engine(w.cluster.kube, w.git.fetcher).reconcile(NS, "app").reason == "Suspended"
    with pytest.raises(GitOpsError, match="Sync team/nope not found"):
        queries.set_suspend(w.cluster.kube, SYNCS, NS, "nope", True)


def test_listing_on_a_cluster_without_the_crds_says_to_install() -> None:
    from kubectl_gitops.engine.record import NotInstalled

    class Bare:
        server = "https://bare.invalid"

        def request(self, method: str, path: str, **_: Any) -> JSON:
            raise ApiError(404, "the server could not find the requested resource")

    with pytest.raises(NotInstalled, match="kubectl gitops install"):
        queries.list_objects(cast(Kube, Bare()), query())
