"""The controller's one narrow adapter onto the engine: run a Sync, prune a deleted one, fetch a source.

Everything the controller asks of the engine goes through `EngineRunner`, so the engine can change
shape underneath (it is a library both the CLI and the controller drive) with one file to follow.
Engines are per worker thread (an Engine caches discovery and identity as it runs); the Git fetch
cache is shared by all of them.
"""

from __future__ import annotations

import threading
from typing import Any

from kubectl_gitops.adapters.git import SourcePolicy
from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.controller.fetchcache import FetchCache, SharedFetcher
from kubectl_gitops.engine.apply import ObjectResult
from kubectl_gitops.engine.prune_all import prune_everything
from kubectl_gitops.engine.reconcile import Engine, SyncReport

JSON = dict[str, Any]


class EngineRunner:
    def __init__(self, kube: Kube, shared: FetchCache, policy: SourcePolicy, *, concurrency: int = 8) -> None:
        self.kube = kube
        self.shared = shared
        self.policy = policy
        self.concurrency = concurrency
        self._local = threading.local()

    def _engine(self) -> Engine:
        engine: Engine | None = getattr(self._local, "engine", None)
        if engine is None:
            fetcher = SharedFetcher(self.kube, self.shared, self.policy)
            engine = self._local.engine = Engine(self.kube, fetcher, concurrency=self.concurrency)
        return engine

    def reconcile(self, namespace: str, name: str) -> SyncReport:
        """One run of the engine, recorded on the Sync (the engine's own contract)."""
        return self._engine().reconcile(namespace, name)

    def prune_all(self, sync: JSON) -> list[ObjectResult]:
        """Delete everything the Sync's inventory lists: needs the inventory only, never the source."""
        return prune_everything(self.kube, sync)

    def fetch(self, source: JSON) -> str:
        """Fetch a GitSource now (recording its status); the revision."""
        fetcher = self._engine().fetcher
        assert isinstance(fetcher, SharedFetcher)
        _spec, revision = fetcher.fetch(source, None, force=True)
        return revision.ref
