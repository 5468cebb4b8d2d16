"""Where the webhook learns about Syncs and parents: the only I/O behind the drift guard.

The core takes plain callables (`lookup(namespace, name) -> SyncInfo | None`, `fetch(req) ->
parent | None`); the Protocols below name those shapes so the Flask app and the tests agree on
them, and tests pass plain functions. The real implementations read the API server through one
small `JsonGet` (GET a path, None on 404) so the cache and the mapping from Sync/GitSource JSON
to `SyncInfo` are tested without a cluster.

Caching: a Sync is read at most once per `ttl` seconds (default 5 s), including "not found".
A webhook answers in milliseconds or the API server times out; a suspend/resume or a new Sync
takes effect within one TTL. Parents of scale requests are cached *exactly*: a Scale carries its
parent's uid and resourceVersion, so a parent read at that very version is reused and any other
version is read again (never stale, whatever the timing). Refused scales of the same object
(retries, a misconfigured autoscaler) then cost no API call; a scale that goes through changes
the version, so the next one reads the parent again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from kubectl_gitops.adapters.kube import object_path
from kubectl_gitops.constants import (
    API_VERSION,
    DEFAULT_APPLIER_SA,
    PLURAL_SOURCE,
    PLURAL_SYNC,
    SYSTEM_NAMESPACE,
)
from kubectl_gitops.core.admission import AdmissionRequest
from kubectl_gitops.core.drift import MODES, SyncInfo

JSON = dict[str, Any]


class SyncLookup(Protocol):
    def __call__(self, namespace: str, name: str, /) -> SyncInfo | None: ...


class ParentFetcher(Protocol):
    def __call__(self, req: AdmissionRequest, /) -> JSON | None: ...


class JsonGet(Protocol):
    """GET an API path; the decoded object, None on 404; raise on any other failure."""

    def __call__(self, path: str, /) -> JSON | None: ...


def applier_username(sync_namespace: str, service_account: str | None) -> str:
    """The identity a Sync applies as: its own ServiceAccount, or the default applier."""
    if service_account:
        return f"system:serviceaccount:{sync_namespace}:{service_account}"
    return f"system:serviceaccount:{SYSTEM_NAMESPACE}:{DEFAULT_APPLIER_SA}"


TenantApplier = Callable[[str], "tuple[str, str] | None"]
"""`applier_of(namespace)`: (name, username) of the applier of the Tenant claiming it, or None."""


def sync_info(sync: JSON, source: JSON | None, tenant_applier: tuple[str, str] | None = None) -> SyncInfo:
    """A SyncInfo from a Sync object and its GitSource (None when the source is missing).

    `tenant_applier`: (name, username) of the applier of the Tenant claiming the Sync's namespace.
    A tenant's Sync names its applier by name only (`serviceAccountName: tenant-NAME-applier`) and
    the engine applies as the Tenant's applier, which lives outside the tenant's namespaces; the
    guard must expect that identity, not an account of that name in the Sync's namespace.
    """
    meta, spec, status = (_dict(sync.get(k)) for k in ("metadata", "spec", "status"))
    namespace = str(meta.get("namespace", ""))
    mode = spec.get("driftGuard", "enforce")
    account = spec.get("serviceAccountName")
    applier = applier_username(namespace, account if isinstance(account, str) else None)
    if tenant_applier is not None and account == tenant_applier[0]:
        applier = tenant_applier[1]
    return SyncInfo(
        name=str(meta.get("name", "")),
        namespace=namespace,
        source_url=str(_dict(_dict(source).get("spec")).get("url", "")),
        path=str(spec.get("path") or ""),
        revision=str(status.get("lastAppliedRevision") or ""),
        mode=mode if mode in MODES else "enforce",  # a typo must not switch the guard off
        appliers=frozenset({applier}),
        suspended=spec.get("suspend") is True,
    )


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


def from_cluster(ttl: float = 5.0, kubeconfig: str | None = None) -> tuple[SyncLookup, ParentFetcher]:
    """The production pair: a cached Sync lookup and a parent fetcher sharing one API client."""
    get = kube_getter(kubeconfig=kubeconfig)
    return CachedSyncLookup(get, ttl=ttl, tenant_applier=_shared_tenant_applier(kubeconfig)), ApiParentFetcher(get)


def _shared_tenant_applier(kubeconfig: str | None) -> TenantApplier:
    """The applier of the Tenant claiming a namespace, from the process's watched Tenants (None until listed)."""

    def applier_of(namespace: str) -> tuple[str, str] | None:
        from .tenants import NotSynced, shared

        try:
            return shared(kubeconfig).applier_of(namespace)
        except NotSynced:
            return None

    return applier_of
