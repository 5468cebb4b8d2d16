"""Where the webhook learns about Syncs and parents: the only I/O behind the drift guard.

The core takes plain callables (`lookup(namespace, name) -> SyncInfo | None`, `fetch(req) ->
parent | None`); the Protocols below name those shapes so the Flask app and the tests agree on
them, and tests pass plain functions. The real implementations read the API server through one
small `JsonGet` (GET a path, None on 404) so the cache and the mapping from Sync/GitSource JSON
to `SyncInfo` are tested without a cluster.

Production lookups are served from memory (`WatchedSyncLookup`, `WatchedParentFetcher`): the
Syncs and GitSources of the whole cluster are listed once and kept current by watches
(kubectl_gitops.controller.informer: resourceVersion, bookmarks, re-list on 410 Gone), so a suspend,
resume or new Sync takes effect as soon as its watch event arrives (tens of milliseconds, measured
by tests/e2e/test_webhook_watch.py) and a review makes no API request in the steady state. Until
the first list has arrived a lookup raises NotSynced and the guard fails closed; it never answers
"no Sync" from an empty view. Parents of scale requests of the built-in scalable kinds
(Deployments, StatefulSets, ReplicaSets) come from a watch of that kind, started on its first scale
request; a parent is served from memory only at exactly the Scale's resourceVersion (a Scale
carries its parent's uid and version), otherwise (a watch a moment behind, another kind) it is read
once and cached at that version (`ApiParentFetcher`), never stale whatever the timing.

`CachedSyncLookup` (a TTL cache over GETs) is kept for callers without watches (tests, tools).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubectl_gitops.adapters.kube import object_path
from kubectl_gitops.constants import (
    API_VERSION,
    PLURAL_SOURCE,
    PLURAL_SYNC,
)
from kubectl_gitops.controller.informer import Informer
from kubectl_gitops.core.admission import AdmissionRequest

# The mapping from a Sync to what the guard needs is pure and lives in the core, where `audit`
# uses it too; re-exported here for the webhook's callers.
from kubectl_gitops.core.drift import SyncInfo, applier_username, sync_info

__all__ = ["ApiParentFetcher", "CachedSyncLookup", "JsonGet", "ParentFetcher", "SyncInfo", "SyncLookup",
           "applier_username", "from_cluster", "kube_getter", "parent_path", "sync_info"]

JSON = dict[str, Any]


class SyncLookup(Protocol):
    def __call__(self, namespace: str, name: str, /) -> SyncInfo | None: ...


class ParentFetcher(Protocol):
    def __call__(self, req: AdmissionRequest, /) -> JSON | None: ...


class JsonGet(Protocol):
    """GET an API path; the decoded object, None on 404; raise on any other failure."""

    def __call__(self, path: str, /) -> JSON | None: ...


TenantApplier = Callable[[str], "tuple[str, str] | None"]
"""`applier_of(namespace)`: (name, username) of the applier of the Tenant claiming it, or None."""



def _dict(value: object) -> JSON:
    return value if isinstance(value, dict) else {}


class CachedSyncLookup:
    """`lookup(namespace, name)` over the API with a TTL cache (thread-safe; one per process)."""

    def __init__(self, get: JsonGet, *, ttl: float = 5.0, max_entries: int = 4096,
                 clock: Callable[[], float] = time.monotonic, tenant_applier: TenantApplier | None = None) -> None:
        self._get = get
        self._tenant_applier = tenant_applier
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, SyncInfo | None]] = {}

    def __call__(self, namespace: str, name: str) -> SyncInfo | None:
        key = (namespace, name)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        info = self._read(namespace, name)  # outside the lock: one slow read must not stall others
        with self._lock:
            if len(self._cache) >= self._max:
                self._cache.clear()  # crude but bounded; a miss costs one GET
            self._cache[key] = (now, info)
        return info

    def _read(self, namespace: str, name: str) -> SyncInfo | None:
        sync = self._get(object_path(API_VERSION, PLURAL_SYNC, namespace, name))
        if sync is None:
            return None
        source_ref = _dict(_dict(sync.get("spec")).get("sourceRef"))
        ref = source_ref.get("name")
        # No cross-namespace references: the source lives next to the Sync (a chart's: a HelmRepository).
        plural = "helmrepositories" if source_ref.get("kind") == "HelmRepository" else PLURAL_SOURCE
        has_ref = isinstance(ref, str) and bool(ref)
        source = self._get(object_path(API_VERSION, plural, namespace, str(ref))) if has_ref else None
        return sync_info(sync, source, self._tenant_applier(namespace) if self._tenant_applier else None)


def parent_path(req: AdmissionRequest) -> str:
    """The REST path of the object a subresource request is about."""
    res = req.resource
    api_version = f"{res.group}/{res.version}" if res.group else res.version
    return object_path(api_version, res.resource, req.namespace or None, req.name)


class ApiParentFetcher:
    """Fetch the live parent of a scale request, cached by (path, uid, resourceVersion) (thread-safe)."""

    def __init__(self, get: JsonGet, *, max_entries: int = 1024) -> None:
        self._get = get
        self._max = max_entries
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], JSON] = {}

    def __call__(self, req: AdmissionRequest) -> JSON | None:
        if not req.name:
            return None
        path = parent_path(req)
        wanted = _version(req.old_object)
        if wanted is not None:
            with self._lock:
                hit = self._cache.get((path, *wanted))
            if hit is not None:
                return hit
        parent = self._get(path)
        got = _version(parent)
        if parent is not None and got is not None:
            with self._lock:
                if len(self._cache) >= self._max:
                    self._cache.clear()  # bounded; a miss costs one GET
                self._cache[(path, *got)] = parent
        return parent


def _version(obj: JSON | None) -> tuple[str, str] | None:
    """(uid, resourceVersion) of an object (a Scale carries its parent's), or None when either is unset."""
    meta = _dict((obj or {}).get("metadata"))
    uid, version = meta.get("uid"), meta.get("resourceVersion")
    if isinstance(uid, str) and uid and isinstance(version, str) and version:
        return uid, version
    return None


def kube_getter(timeout: float = 2.0, kubeconfig: str | None = None) -> JsonGet:
    """A JsonGet on the in-cluster ServiceAccount, or the kubeconfig when running outside a pod."""
    from kubectl_gitops.adapters.kube import ApiError, connect_auto

    kube = connect_auto(kubeconfig)
    kube.timeout = timeout

    def get(path: str) -> JSON | None:
        try:
            return kube.request("GET", path, timeout=timeout)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    return get


class WatchedSyncLookup:
    """`lookup(namespace, name)` from watched Syncs and GitSources: no API request per review."""

    def __init__(self, syncs: Informer, sources: Informer, *, tenant_applier: TenantApplier | None = None,
                 wait: float = 5.0) -> None:
        self._syncs = syncs
        self._sources = sources
        self._tenant_applier = tenant_applier
        self._wait = wait

    def synced(self) -> bool:
        return self._syncs.synced and self._sources.synced

    def __call__(self, namespace: str, name: str) -> SyncInfo | None:
        self._syncs.require(self._wait)  # NotSynced: the guard fails closed rather than guess
        self._sources.require(self._wait)
        sync = self._syncs.get(f"{namespace}/{name}")
        if sync is None:
            return None
        ref = _dict(_dict(sync.get("spec")).get("sourceRef")).get("name")
        source = self._sources.get(f"{namespace}/{ref}") if isinstance(ref, str) and ref else None
        return sync_info(sync, source, self._tenant_applier(namespace) if self._tenant_applier else None)

    def stop(self) -> None:
        self._syncs.stop()
        self._sources.stop()


WATCHED_PARENTS = frozenset({("apps", "deployments"), ("apps", "statefulsets"), ("apps", "replicasets")})


class WatchedParentFetcher:
    """Parents of scale requests from watches of the built-in scalable kinds (one per kind, started
    on its first scale request); anything else, or a watch a moment behind the Scale, via `fallback`."""

    def __init__(self, watch: Callable[[str], Informer], fallback: ParentFetcher,
                 kinds: frozenset[tuple[str, str]] = WATCHED_PARENTS) -> None:
        self._watch = watch
        self._fallback = fallback
        self._kinds = kinds
        self._lock = threading.Lock()
        self._informers: dict[str, Informer] = {}
        self.served_from_watch = 0

    def __call__(self, req: AdmissionRequest) -> JSON | None:
        res = req.resource
        if req.name and (res.group, res.resource) in self._kinds:
            informer = self._informer(f"{res.group}/{res.version}" if res.group else res.version, res.resource)
            wanted = _version(req.old_object)
            if informer.synced and wanted is not None:
                parent = informer.get(f"{req.namespace}/{req.name}")
                if parent is not None and _version(parent) == wanted:
                    self.served_from_watch += 1
                    return parent
        return self._fallback(req)

    def _informer(self, api_version: str, plural: str) -> Informer:
        path = object_path(api_version, plural, None)
        with self._lock:
            found = self._informers.get(path)
            if found is None:
                found = self._informers[path] = self._watch(path).start()
            return found


def from_cluster(ttl: float = 5.0, kubeconfig: str | None = None, *,
                 first_list: float = 10.0) -> tuple[SyncLookup, ParentFetcher]:
    """The production pair, watch-backed (`ttl` is no longer used: nothing is cached by time).
    Waits up to `first_list` s for the Syncs and GitSources to be listed, so /readyz (which builds
    the pair) reports ready only with a view to answer from."""
    from kubectl_gitops.adapters.kube import connect_auto
    from kubectl_gitops.controller.informer import from_kube

    del ttl
    kube = connect_auto(kubeconfig)
    kube.timeout = 10.0
    syncs = from_kube(kube, "Syncs", object_path(API_VERSION, PLURAL_SYNC, None)).start()
    sources = from_kube(kube, "GitSources", object_path(API_VERSION, PLURAL_SOURCE, None)).start()
    lookup = WatchedSyncLookup(syncs, sources, tenant_applier=_shared_tenant_applier(kubeconfig))
    syncs.wait_synced(first_list)
    sources.wait_synced(first_list)
    parents = WatchedParentFetcher(lambda path: from_kube(kube, f"parents {path}", path),
                                   ApiParentFetcher(kube_getter(kubeconfig=kubeconfig)))
    return lookup, parents


def _shared_tenant_applier(kubeconfig: str | None) -> TenantApplier:
    """The applier of the Tenant claiming a namespace, from the process's watched Tenants (None until listed)."""

    def applier_of(namespace: str) -> tuple[str, str] | None:
        from .tenants import NotSynced, shared

        try:
            return shared(kubeconfig).applier_of(namespace)
        except NotSynced:
            return None

    return applier_of
