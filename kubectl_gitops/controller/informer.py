"""A namespaced collection kept in memory by list + watch: the controller's (and webhook's) view.

One thread lists the collection (optionally by label selector), then watches it from the list's
resourceVersion with bookmarks, applying each ADDED/MODIFIED/DELETED event and following
BOOKMARKs so a restarted watch resumes where the last one ended. When the server answers 410
Gone (the version was compacted away) or the connection breaks, it lists again after a short
backoff: the view is never older than one round of that loop, and no poll ever runs in the
steady state. Handlers are called with (event type, new object, old object or None) on the
watch thread, after the store is updated; a re-list reports what changed as ADDED/MODIFIED/DELETED
events too, so a handler never misses a change made while the watch was down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kubectl_gitops.core.errors import GitOpsError

JSON = dict[str, Any]
ListFn = Callable[[], tuple[list[JSON], str]]
WatchFn = Callable[[str], Iterable[JSON]]
Handler = Callable[[str, JSON, "JSON | None"], None]
log = logging.getLogger("kubectl_gitops.controller")


class NotSynced(GitOpsError):
    """The view has not been listed yet: nothing can be decided from it."""

    reason = "NotSynced"


def key_of(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


class Informer:
    """`namespace/name -> object` for one collection, current within one watch round trip."""

    def __init__(self, what: str, list_fn: ListFn, watch_fn: WatchFn, *, backoff: float = 1.0) -> None:
        self.what = what
        self._list = list_fn
        self._watch = watch_fn
        self._backoff = backoff
        self._handlers: list[Handler] = []
        self._lock = threading.Lock()
        self._items: dict[str, JSON] = {}
        self._synced = threading.Event()
        self._stop = threading.Event()
        self.version = ""
        self.lists = 0
        self.watches = 0

    def on_event(self, handler: Handler) -> Informer:
        self._handlers.append(handler)
        return self

    def start(self) -> Informer:
        threading.Thread(target=self._run, name=f"watch-{self.what}", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def get(self, key: str) -> JSON | None:
        with self._lock:
            return self._items.get(key)

    def items(self) -> list[JSON]:
        with self._lock:
            return list(self._items.values())

    def require(self, wait: float = 5.0) -> None:
        if not self._synced.wait(wait):
            raise NotSynced(f"the {self.what} have not been listed yet (is the API server reachable?)")

    # ------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.relist()
                while not self._stop.is_set():
                    began = time.monotonic()
                    self.watch_once()
                    if time.monotonic() - began < 1.0:  # a server ending watches at once: don't spin
                        self._stop.wait(self._backoff)
            except Exception as err:  # 410 Gone, a dropped connection, an outage: list again
                log.info("watch of %s ended (%s); listing again", self.what, str(err)[:200],
                         extra={"reason": "WatchRestarted"})
                self._stop.wait(self._backoff)

    def relist(self) -> None:
        items, version = self._list()
        fresh = {key_of(obj): obj for obj in items}
        with self._lock:
            old = self._items
            self._items = fresh
            self.version = version
            self.lists += 1
        self._synced.set()
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._emit("ADDED", obj, None)
            elif _version(before) != _version(obj):
                self._emit("MODIFIED", obj, before)
        for key, obj in old.items():
            if key not in fresh:
                self._emit("DELETED", obj, obj)

    def watch_once(self) -> None:
        """Follow one watch from the current version until the server ends it (raises on 410/errors)."""
        self.watches += 1
        for event in self._watch(self.version):
            if self._stop.is_set():
                return
            self.apply(event)

    def apply(self, event: Mapping[str, Any]) -> None:
        obj = event.get("object")
        if not isinstance(obj, dict):
            return
        kind = str(event.get("type") or "")
        version = _version(obj)
        key = key_of(obj)
        with self._lock:
            before = self._items.get(key)
            if kind in ("ADDED", "MODIFIED"):
                self._items[key] = obj
            elif kind == "DELETED":
                self._items.pop(key, None)
            if version:
                self.version = version
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._emit(kind, obj, before)

    def _emit(self, kind: str, obj: JSON, before: JSON | None) -> None:
        for handler in self._handlers:
            try:
                handler(kind, obj, before)
            except Exception:  # a handler's bug must not end the watch
                log.exception("handler for %s failed on %s %s", self.what, kind, key_of(obj),
                              extra={"reason": "HandlerFailed"})


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def from_kube(kube: Any, what: str, path: str, label_selector: str = "") -> Informer:
    """An Informer over `kube` (an adapters.kube.Kube) for the collection at `path`."""
    return Informer(what, lambda: kube.list_page(path, label_selector=label_selector),
                    lambda rv: kube.watch(path, rv, label_selector=label_selector))
