"""A GitSource shared by several Syncs is fetched once per revision, not once per Sync.

`FetchCache` remembers, per GitSource (uid, generation and fetch policy), the revision its last
fetch resolved and when. A Sync's run within the GitSource's `interval` of that fetch reuses the
revision (no Git traffic, no status write); the GitSource's own schedule in the controller fetches
again every interval and queues its Syncs when the revision moved. Exported trees are shared the
same way, keyed by (url, commit, ignore rules): the first run exports, the others read the same
directory (the build only reads it), and unused trees beyond `max_trees` are removed.

Each worker thread has its own `SharedFetcher` (the base class keeps per-fetch state, the
credential values to mask) in front of the one `FetchCache` of the process.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubectl_gitops.adapters.git import Revision, SourcePolicy
from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.core.errors import SourceFailed
from kubectl_gitops.core.spec import SourceSpec, parse_source
from kubectl_gitops.engine.source import SourceFetcher, Tree

JSON = dict[str, Any]
FetchKey = tuple[str, str, str, int, Any]


@dataclass
class _Fetched:
    at: float
    spec: SourceSpec
    revision: Revision
    secrets: tuple[str, ...]


@dataclass
class _Export:
    path: Path
    users: int = 0
    last_used: float = 0.0


def fetch_key(source: JSON, policy: SourcePolicy | None) -> FetchKey:
    meta = source.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""), str(meta.get("uid") or ""),
            int(meta.get("generation") or 0), policy)


class FetchCache:
    """Process-wide: the last fetch of each GitSource and the exported trees (thread-safe)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, max_trees: int = 32,
                 on_fetch: Callable[[str, float, bool], None] = lambda _key, _seconds, _ok: None) -> None:
        self.clock = clock
        self.max_trees = max_trees
        self.on_fetch = on_fetch
        self._lock = threading.Lock()
        self._fetched: dict[FetchKey, _Fetched] = {}
        self._fetch_locks: dict[FetchKey, threading.Lock] = {}
        self._exports: dict[tuple[str, str, str], _Export] = {}
        self._export_lock = threading.Lock()
        self._root = Path(tempfile.mkdtemp(prefix="kubectl-gitops-trees-"))
        self.fetches = 0

    def fresh(self, key: FetchKey) -> _Fetched | None:
        """The last fetch of `key` if it is younger than the GitSource's interval."""
        with self._lock:
            hit = self._fetched.get(key)
        if hit is not None and self.clock() - hit.at < hit.spec.interval:
            return hit
        return None

    def last_revision(self, namespace: str, name: str) -> str:
        """The revision most recently fetched for a GitSource ("" if never)."""
        with self._lock:
            found = [f for k, f in self._fetched.items() if k[0] == namespace and k[1] == name]
        return max(found, key=lambda f: f.at).revision.ref if found else ""

    def lock_for(self, key: FetchKey) -> threading.Lock:
        with self._lock:
            return self._fetch_locks.setdefault(key, threading.Lock())

    def store(self, key: FetchKey, fetched: _Fetched) -> None:
        with self._lock:
            stale = [k for k in self._fetched if k[:2] == key[:2] and k != key]
            for k in stale:  # an older generation of the same GitSource
                del self._fetched[k]
            self._fetched[key] = fetched

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            for k in [k for k in self._fetched if k[:2] == (namespace, name)]:
                del self._fetched[k]

    # ------------------------------------------------------------ exported trees

    @contextmanager
    def tree(self, spec: SourceSpec, revision: Revision, export: Callable[[Path], None]) -> Iterator[Path]:
        key = (spec.url, revision.sha, spec.ignore)
        with self._export_lock:  # exports are fast (a local git archive); one at a time keeps it simple
            entry = self._exports.get(key)
            if entry is None or not entry.path.is_dir():
                path = Path(tempfile.mkdtemp(prefix="tree-", dir=self._root)) / "tree"
                try:
                    export(path)
                except BaseException:
                    shutil.rmtree(path.parent, ignore_errors=True)
                    raise
                entry = self._exports[key] = _Export(path)
            entry.users += 1
            entry.last_used = self.clock()
        try:
            yield entry.path
        finally:
            with self._export_lock:
                entry.users -= 1
                self._evict()

    def _evict(self) -> None:
        idle = sorted((e.last_used, k) for k, e in self._exports.items() if e.users == 0)
        for _, key in idle[: max(0, len(self._exports) - self.max_trees)]:
            shutil.rmtree(self._exports.pop(key).path.parent, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


class SharedFetcher(SourceFetcher):
    """A SourceFetcher (one per worker) that consults the process's FetchCache first."""

    def __init__(self, kube: Kube, shared: FetchCache, policy: SourcePolicy | None = None) -> None:
        super().__init__(kube, policy=policy)
        self.shared = shared

    def fetch(self, source: JSON, policy: SourcePolicy | None = None, *,
              force: bool = False) -> tuple[SourceSpec, Revision]:
        key = fetch_key(source, policy)
        if not force:
            hit = self.shared.fresh(key)
            if hit is not None and not parse_source(source).suspend:
                self.secrets = hit.secrets
                return hit.spec, hit.revision
        with self.shared.lock_for(key):
            hit = None if force else self.shared.fresh(key)  # another worker fetched while we waited
            if hit is not None:
                self.secrets = hit.secrets
                return hit.spec, hit.revision
            started = self.shared.clock()
            ok = False
            try:
                spec, revision = super().fetch(source, policy)
                ok = True
            finally:
                self.shared.on_fetch(f"{key[0]}/{key[1]}", self.shared.clock() - started, ok)
            self.shared.fetches += 1
            self.shared.store(key, _Fetched(self.shared.clock(), spec, revision, self.secrets))
            return spec, revision

    @contextmanager
    def checkout(self, source: JSON, policy: SourcePolicy | None = None, pin: str = "") -> Iterator[Tree]:
        spec, revision = self.fetch(source, policy)
        if pin:  # a rollback: the pinned commit (in the ref's history, verified) instead of the tip
            revision = self._pinned(source, spec, revision, pin, policy)
        ignore = [line for line in spec.ignore.splitlines() if line.strip()] or None

        def export(dest: Path) -> None:
            try:
                self.cache.export(spec.url, revision.sha, dest, ignore, timeout=spec.timeout)
            except SourceFailed as err:
                raise SourceFailed(f"GitSource {spec.namespace}/{spec.name}: {err}") from None

        with self.shared.tree(spec, revision, export) as path:
            yield Tree(path, revision.ref, revision.sha)
