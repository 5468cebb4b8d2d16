"""The facts tenancy decisions need, served from memory: Tenants and Namespaces kept current by watches.

A review must answer in milliseconds, so Tenants are never fetched per request: `Watched` lists a
cluster-scoped collection once, then watches it from the list's resourceVersion, applying every
ADDED/MODIFIED/DELETED event and following BOOKMARKs; when the server says the version is gone
(410) or the connection breaks it lists again (after a short backoff), so the view is never
older than one round of that loop. Namespaces are watched the same way for their labels (Tenants
may claim namespaces by label, ServiceAccount subjects live in namespaces). Only the rare RBAC
questions (the rules of the Role a RoleBinding references, whether a ClusterRole named in a
Tenant exists) are asked of the API server per request, and never cached: a RoleBinding is
judged against the Role as it is now.

Until the first list has arrived, `ClusterFacts` raises `NotSynced` (the /tenancy endpoint then
refuses, failing closed, and /readyz reports not ready), never answers from an empty view: an
empty view would mean "no Tenants", i.e. everything allowed.

Each gunicorn worker builds its own (the threads start lazily, after the fork).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from kubectl_gitops.adapters.kube import object_path
from kubectl_gitops.constants import API_VERSION
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.tenancy import Facts
from kubectl_gitops.core.tenant import Tenant, parse_tenants, tenant_for

from .lookup import JsonGet

log = logging.getLogger("kubectl_gitops_webhook")

JSON = dict[str, Any]
ListFn = Callable[[], tuple[list[JSON], str]]
WatchFn = Callable[[str], Iterable[JSON]]
TENANTS_PATH = object_path(API_VERSION, "tenants", None)
NAMESPACES_PATH = object_path("v1", "namespaces", None)
RBAC = "rbac.authorization.k8s.io/v1"


class TenantFacts(Facts, Protocol):
    """The facts plus the one question the mutating webhook asks (the tenant label's value)."""

    def tenant_of(self, namespace: str, labels: Mapping[str, str] | None = None) -> str: ...

    def synced(self) -> bool:
        """Whether the Tenants (and Namespaces) have been listed; never blocks (for /readyz)."""
        ...


class NotSynced(GitOpsError):
    """The watch-backed view has not been listed yet: nothing can be decided from it."""

    reason = "NotSynced"


class Watched:
    """A cluster-scoped collection by name, kept current by list + watch in a daemon thread."""

    def __init__(self, what: str, list_fn: ListFn, watch_fn: WatchFn, *, on_change: Callable[[], None] = lambda: None,
                 backoff: float = 1.0) -> None:
        self.what = what
        self._list = list_fn
        self._watch = watch_fn
        self._on_change = on_change
        self._backoff = backoff
        self._lock = threading.Lock()
        self._items: dict[str, JSON] = {}
        self._synced = threading.Event()
        self._stop = threading.Event()
        self.version = ""
        self.lists = 0
        self._thread: threading.Thread | None = None

    def start(self) -> Watched:
        self._thread = threading.Thread(target=self._run, name=f"watch-{self.what}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def items(self, wait: float = 5.0) -> dict[str, JSON]:
        """A snapshot (name -> object); NotSynced if the first list has not arrived within `wait` s."""
        if not self._synced.wait(wait):
            raise NotSynced(f"the webhook has not listed the {self.what} yet (is the API server reachable?)")
        with self._lock:
            return dict(self._items)

    def get(self, name: str, wait: float = 5.0) -> JSON | None:
        if not self._synced.wait(wait):
            raise NotSynced(f"the webhook has not listed the {self.what} yet (is the API server reachable?)")
        with self._lock:
            return self._items.get(name)

    # ------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.relist()
                while not self._stop.is_set():
                    self.watch_once()
            except Exception as err:  # 410, a dropped connection, an API outage: list again
                log.info("watch of %s ended (%s); listing again", self.what, str(err)[:200])
                self._stop.wait(self._backoff)

    def relist(self) -> None:
        items, version = self._list()
        with self._lock:
            self._items = {_name(obj): obj for obj in items}
            self.version = version
            self.lists += 1
        self._synced.set()
        self._on_change()

    def watch_once(self) -> None:
        """Follow one watch from the current version until the server ends it (raises on 410/errors)."""
        for event in self._watch(self.version):
            self.apply(event)

    def apply(self, event: Mapping[str, Any]) -> None:
        obj = event.get("object")
        if not isinstance(obj, dict):
            return
        version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        kind = event.get("type")
        with self._lock:
            if kind in ("ADDED", "MODIFIED"):
                self._items[_name(obj)] = obj
            elif kind == "DELETED":
                self._items.pop(_name(obj), None)
            if version:
                self.version = version
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._on_change()


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


class ClusterFacts:
    """`core.tenancy.Facts` over the watched Tenants and Namespaces and per-request RBAC reads."""

    def __init__(self, tenants: Watched, namespaces: Watched, get: JsonGet) -> None:
        self._tenants = tenants
        self._namespaces = namespaces
        self._get = get
        self._parsed: tuple[Tenant, ...] | None = None
        self._lock = threading.Lock()
        tenants._on_change = self.invalidate

    def invalidate(self) -> None:
        with self._lock:
            self._parsed = None

    def tenants(self) -> Sequence[Tenant]:
        with self._lock:
            parsed = self._parsed
        if parsed is None:
            parsed = tuple(_parse_all(self._tenants.items().values()))
            with self._lock:
                self._parsed = parsed
        return parsed

    def namespace_labels(self, namespace: str) -> Mapping[str, str] | None:
        obj = self._namespaces.get(namespace)
        if obj is None:
            return None
        labels = (obj.get("metadata") or {}).get("labels")
        return labels if isinstance(labels, dict) else {}

    def role_rules(self, namespace: str, name: str) -> Sequence[Mapping[str, Any]] | None:
        role = self._get(object_path(RBAC, "roles", namespace, name))
        if role is None:
            return None
        rules = role.get("rules")
        return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []

    def cluster_role_exists(self, name: str) -> bool:
        return self._get(object_path(RBAC, "clusterroles", None, name)) is not None

    def tenant_of(self, namespace: str, labels: Mapping[str, str] | None = None) -> str:
        """The name of the Tenant claiming `namespace` ("" if none); `labels` when already known."""
        tenants = self.tenants()
        if labels is None and any(t.namespace_labels for t in tenants):
            labels = self.namespace_labels(namespace)
        found = tenant_for(tenants, namespace, labels)
        return found.name if found is not None else ""

    def applier_of(self, namespace: str) -> tuple[str, str] | None:
        """(applier name, applier username) of the Tenant claiming `namespace`, for the drift guard."""
        tenants = self.tenants()
        labels = self.namespace_labels(namespace) if any(t.namespace_labels for t in tenants) else None
        found = tenant_for(tenants, namespace, labels)
        return (found.applier_name, found.applier) if found is not None else None

    def synced(self) -> bool:
        return self._tenants.synced and self._namespaces.synced

    def stop(self) -> None:
        self._tenants.stop()
        self._namespaces.stop()


def _parse_all(objs: Iterable[JSON]) -> Iterable[Tenant]:
    tenants, invalid = parse_tenants(objs)
    for name, why in invalid.items():
        # Admission refuses such a spec; one stored before the webhook ran is reported, not enforced.
        log.warning("Tenant %s is not enforced at admission: %s", name, why)
    return tenants


def from_cluster(kubeconfig: str | None = None, *, timeout: float = 2.0) -> ClusterFacts:
    """The production facts: two watches and a getter on the in-cluster account (or a kubeconfig)."""
    from kubectl_gitops.adapters.kube import connect_auto

    from .lookup import kube_getter

    kube = connect_auto(kubeconfig)
    kube.timeout = 10.0

    def watched(what: str, path: str) -> Watched:
        return Watched(what, lambda: kube.list_page(path), lambda rv: kube.watch(path, rv))

    facts = ClusterFacts(watched("Tenants", TENANTS_PATH), watched("Namespaces", NAMESPACES_PATH),
                         kube_getter(timeout, kubeconfig))
    facts._tenants.start()
    facts._namespaces.start()
    return facts


_SHARED: list[ClusterFacts] = []
_SHARED_LOCK = threading.Lock()


def shared(kubeconfig: str | None = None) -> ClusterFacts:
    """This process's one ClusterFacts (tenancy, the tenant label and the drift guard share it)."""
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(from_cluster(kubeconfig))
        return _SHARED[0]


def wait_synced(facts: ClusterFacts, timeout: float = 10.0) -> None:
    """Block until both views are listed (NotSynced after `timeout`)."""
    deadline = time.monotonic() + timeout
    facts._tenants.items(max(0.0, deadline - time.monotonic()))
    facts._namespaces.items(max(0.0, deadline - time.monotonic()))
