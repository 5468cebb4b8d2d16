"""A GitSource shared by several Syncs is fetched once per interval, and each revision exported once."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.adapters.git import Revision
from kubectl_gitops.controller.fetchcache import FetchCache, SharedFetcher
from kubectl_gitops.core.spec import SourceSpec, parse_source
from kubectl_gitops.engine.source import SourceFetcher

JSON = dict[str, Any]
SOURCE: JSON = {"metadata": {"name": "src", "namespace": "n", "uid": "u1", "generation": 1},
                "spec": {"url": "https://git.example/repo", "interval": "60s"}}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """SourceFetcher.fetch replaced by a counter (no Git, no API): revision r<N> on the N-th fetch."""
    calls: list[str] = []
    lock = threading.Lock()

    def fake_fetch(self: SourceFetcher, source: JSON, policy: Any = None) -> tuple[SourceSpec, Revision]:
        with lock:
            calls.append(source["metadata"]["name"])
            n = len(calls)
        sha = f"{n:040d}"
        return parse_source(source), Revision(sha, f"main@sha1:{sha}", "", "", dt.datetime.now(dt.UTC))

    monkeypatch.setattr(SourceFetcher, "fetch", fake_fetch)
    return calls


def fetcher(cache: FetchCache) -> SharedFetcher:
    return SharedFetcher(None, cache)  # type: ignore[arg-type]  # no API calls with the fake fetch


def test_many_syncs_one_fetch_per_interval(fetches: list[str]) -> None:
    clock = Clock()
    cache = FetchCache(clock=clock)
    revisions = {fetcher(cache).fetch(SOURCE)[1].ref for _ in range(100)}
    assert fetches == ["src"] and len(revisions) == 1
    clock.now += 59
    fetcher(cache).fetch(SOURCE)
    assert len(fetches) == 1
    clock.now += 1
    fetcher(cache).fetch(SOURCE)
    assert len(fetches) == 2, "a fetch older than the GitSource's interval was reused"


def test_concurrent_workers_wait_for_one_fetch(fetches: list[str]) -> None:
    cache = FetchCache()
    threads = [threading.Thread(target=lambda: fetcher(cache).fetch(SOURCE)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert fetches == ["src"]


def test_force_and_spec_change_fetch_again(fetches: list[str]) -> None:
    cache = FetchCache()
    fetcher(cache).fetch(SOURCE)
    fetcher(cache).fetch(SOURCE, force=True)
    assert len(fetches) == 2
    changed = {**SOURCE, "metadata": {**SOURCE["metadata"], "generation": 2}}
    fetcher(cache).fetch(changed)
    assert len(fetches) == 3
    cache.forget("n", "src")
    fetcher(cache).fetch(changed)
    assert len(fetches) == 4


def test_a_revision_is_exported_once_and_shared(tmp_path: Path) -> None:
    cache = FetchCache(max_trees=1)
    spec = parse_source(SOURCE)
    rev = Revision("a" * 40, "main@sha1:" + "a" * 40, "", "", dt.datetime.now(dt.UTC))
    exports: list[Path] = []

    def export(dest: Path) -> None:
        exports.append(dest)
        dest.mkdir(parents=True)
        (dest / "x.yaml").write_text("x")

    with cache.tree(spec, rev, export) as one, cache.tree(spec, rev, export) as two:
        assert one == two and (one / "x.yaml").is_file()
    assert len(exports) == 1
    other = Revision("b" * 40, "main@sha1:" + "b" * 40, "", "", dt.datetime.now(dt.UTC))
    with cache.tree(spec, other, export):
        pass
    assert not exports[0].exists(), "an unused old tree beyond max_trees was kept"
    cache.close()
