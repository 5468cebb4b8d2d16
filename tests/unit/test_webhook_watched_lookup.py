"""The webhook's watch-backed lookups: answers from memory, no API request per review, fail closed
until listed, and a suspend seen the moment its watch event arrives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kubectl_gitops.controller.informer import Informer, NotSynced
from kubectl_gitops.core.admission import AdmissionRequest, GroupVersionKind, GroupVersionResource, UserInfo
from kubectl_gitops_webhook.lookup import WatchedParentFetcher, WatchedSyncLookup

JSON = dict[str, Any]


def informer(items: list[JSON]) -> Informer:
    def no_watch(_rv: str) -> Iterator[JSON]:
        yield from ()

    return Informer("x", lambda: (items, "1"), no_watch)


def sync(suspend: bool = False, rv: str = "1") -> JSON:
    return {"metadata": {"name": "app", "namespace": "n", "resourceVersion": rv},
            "spec": {"sourceRef": {"name": "src"}, "path": "apps", "suspend": suspend},
            "status": {"lastAppliedRevision": "main@sha1:abc"}}


SOURCE = {"metadata": {"name": "src", "namespace": "n", "resourceVersion": "1"}, "spec": {"url": "https://git/x"}}


def test_answers_from_the_watched_view() -> None:
    syncs, sources = informer([sync()]), informer([SOURCE])
    syncs.relist()
    sources.relist()
    info = WatchedSyncLookup(syncs, sources)("n", "app")
    assert info is not None and info.source_url == "https://git/x" and info.revision == "main@sha1:abc"
    assert WatchedSyncLookup(syncs, sources)("n", "other") is None


def test_a_suspend_is_seen_at_the_next_event() -> None:
    syncs, sources = informer([sync()]), informer([SOURCE])
    syncs.relist()
    sources.relist()
    lookup = WatchedSyncLookup(syncs, sources)
    assert lookup("n", "app").suspended is False  # type: ignore[union-attr]
    syncs.apply({"type": "MODIFIED", "object": sync(suspend=True, rv="2")})
    assert lookup("n", "app").suspended is True  # type: ignore[union-attr]


def test_fails_closed_until_listed() -> None:
    lookup = WatchedSyncLookup(informer([sync()]), informer([SOURCE]), wait=0.01)
    with pytest.raises(NotSynced):
        lookup("n", "app")


def scale_request(rv: str) -> AdmissionRequest:
    return AdmissionRequest(uid="u", kind=GroupVersionKind("autoscaling", "v1", "Scale"),
                            resource=GroupVersionResource("apps", "v1", "deployments"), operation="UPDATE",
                            user_info=UserInfo("bob"), sub_resource="scale", name="web", namespace="n",
                            old_object={"metadata": {"name": "web", "uid": "id", "resourceVersion": rv}})


def test_scale_parents_come_from_the_watch_at_the_scales_version_only() -> None:
    parent = {"metadata": {"name": "web", "namespace": "n", "uid": "id", "resourceVersion": "7"}}
    watched = informer([parent])
    watched.relist()
    fallback_calls: list[str] = []

    def fallback(req: AdmissionRequest) -> JSON | None:
        fallback_calls.append(req.name)
        return {"from": "api"}

    fetch = WatchedParentFetcher(lambda _path: watched, fallback)
    assert fetch(scale_request("7")) is parent
    assert fetch(scale_request("7")) is parent
    assert fallback_calls == [], "a steady-state scale review asked the API server"
    assert fetch(scale_request("8")) == {"from": "api"}, "a watch behind the Scale must not answer"
    other = scale_request("7")
    object.__setattr__(other, "resource", GroupVersionResource("example.com", "v1", "widgets"))
    assert fetch(other) == {"from": "api"}
