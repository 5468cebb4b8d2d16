"""What `get`, `suspend`/`resume`, `delete` and `uninstall` read and change, for the CLI to render.

The CLI commands only parse flags and print; the data comes from here, like `sync` takes a
SyncReport from the Engine. That keeps every API request (and the meaning of a selector, a
dry-run, a watch) in one layer the controller can use too.

`watch` is a real watch: it starts at the resourceVersion of the LIST it follows, skips
bookmarks, reconnects when the server ends a watch, and lists again when the version is too old
(410 Gone), reporting what changed meanwhile, so nothing is missed and nothing is printed twice
without a change.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kubectl_gitops.adapters.kube import ApiError, Kube, object_path
from kubectl_gitops.core.discovery import ResourceInfo
from kubectl_gitops.core.errors import GitOpsError, PruneFailed
from kubectl_gitops.core.objects import ref_of
from kubectl_gitops.core.plan import PruneVerb, prune_decision
from kubectl_gitops.core.selectors import Requirement, labels_match, status_matches
from kubectl_gitops.core.spec import parse_sync
from kubectl_gitops.core.status import ObjectAction
from kubectl_gitops.engine import install, record
from kubectl_gitops.engine.apply import ObjectResult
from kubectl_gitops.engine.prune_all import prune_everything
from kubectl_gitops.engine.reconcile import Engine, read_inventory

JSON = dict[str, Any]
KINDS = {"syncs": record.SYNCS, "sources": record.SOURCES}
LIST_PAGE = 500


@dataclass(frozen=True)
class Query:
    """Which Syncs or GitSources: a namespace (None = all), a name, label and status selectors."""

    info: ResourceInfo
    namespace: str | None
    name: str | None = None
    label_selector: str = ""
    labels: tuple[Requirement, ...] = ()
    status: tuple[tuple[str, str], ...] = ()

    def wants(self, obj: JSON) -> bool:
        meta = obj.get("metadata") or {}
        if self.name and meta.get("name") != self.name:
            return False
        return labels_match(obj, self.labels) and status_matches(obj, self.status)


@dataclass(frozen=True)
class Listing:
    items: list[JSON]
    resource_version: str
    """Where a watch of the same query starts."""


@dataclass(frozen=True)
class Change:
    """One watch event the query selects: ADDED, MODIFIED or DELETED and the object."""

    type: str
    obj: JSON


def list_objects(kube: Kube, query: Query) -> Listing:
    """The objects the query selects, sorted by namespace and name (NotInstalled or not found named)."""
    path = object_path(query.info.api_version, query.info.plural, query.namespace)
    params = {"limit": str(LIST_PAGE)}
    if query.label_selector:
        params["labelSelector"] = query.label_selector
    if query.name:
        params["fieldSelector"] = f"metadata.name={query.name}"
    items: list[JSON] = []
    try:
        while True:
            out = kube.request("GET", path, query=params)
            items += [_typed(query.info, o) for o in out.get("items") or []]
            meta = out.get("metadata") or {}
            if not meta.get("continue"):
                break
            params["continue"] = str(meta["continue"])
    except ApiError as err:
        if err.status == 404:
            record.require_installed(kube)
        raise
    chosen = sorted((o for o in items if query.wants(o)), key=_sort_key)
    if query.name and not chosen and not (query.labels or query.status):
        where = f"{query.namespace}/" if query.namespace else ""
        raise GitOpsError(f"{query.info.kind} {where}{query.name} not found")
    return Listing(chosen, str(meta.get("resourceVersion") or ""))


def watch(kube: Kube, query: Query, listing: Listing, *, until: float | None = None) -> Iterator[Change]:
    """Changes after `listing`, until the monotonic deadline `until` (None: for ever)."""
    path = object_path(query.info.api_version, query.info.plural, query.namespace)
    version = listing.resource_version
    shown = {_identity(o): o for o in listing.items}
    while until is None or time.monotonic() < until:
        seconds = 240 if until is None else max(1, int(until - time.monotonic()))
        try:
            for event in kube.watch(path, version, timeout_seconds=seconds):
                obj = _typed(query.info, event.get("object") or {})
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if event.get("type") == "BOOKMARK":
                    continue
                change = _change(query, str(event.get("type")), obj, shown)
                if change is not None:
                    yield change
                if until is not None and time.monotonic() >= until:
                    return
        except ApiError as err:
            if err.status != 410:
                raise
            fresh = list_objects(kube, query)
            yield from _relisted(shown, fresh)
            version = fresh.resource_version


def _change(query: Query, kind: str, obj: JSON, shown: dict[tuple[str, str], JSON]) -> Change | None:
    """The event as the query sees it: an object that stops matching leaves (DELETED)."""
    key = _identity(obj)
    if kind != "DELETED" and query.wants(obj):
        shown[key] = obj
        return Change(kind, obj)
    if key in shown:
        del shown[key]
        return Change("DELETED", obj)
    return None


def _relisted(shown: dict[tuple[str, str], JSON], fresh: Listing) -> Iterator[Change]:
    """After a 410: what changed between what was shown and a new LIST."""
    now = {_identity(o): o for o in fresh.items}
    for key in sorted(set(shown) - set(now)):
        yield Change("DELETED", shown.pop(key))
    for key, obj in now.items():
        old = shown.get(key)
        if old is None or _version(old) != _version(obj):
            shown[key] = obj
            yield Change("ADDED" if old is None else "MODIFIED", obj)


def _typed(info: ResourceInfo, obj: JSON) -> JSON:
    obj.setdefault("apiVersion", info.api_version)
    obj.setdefault("kind", info.kind)
    return obj


def _identity(obj: JSON) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _version(obj: JSON) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _sort_key(obj: JSON) -> tuple[str, str]:
    return _identity(obj)


# ---------------------------------------------------------------- suspend / resume


def get_one(kube: Kube, info: ResourceInfo, namespace: str, name: str) -> JSON:
    found = kube.get(info, name, namespace)
    if found is None:
        record.require_installed(kube)
        raise GitOpsError(f"{info.kind} {namespace}/{name} not found")
    return found


def set_suspend(kube: Kube, info: ResourceInfo, namespace: str, name: str, value: bool) -> JSON:
    """Suspend (True) or resume a Sync or GitSource; the object as written. Resuming a Sync also
    ends a rollback pin (spec.revision, cli/rollback_cmd.py)."""
    get_one(kube, info, namespace, name)
    spec: dict[str, object] = {"suspend": value}
    if info is record.SYNCS and not value:
        spec["revision"] = None
    return kube.merge_patch(info, name, namespace, {"spec": spec})


# ---------------------------------------------------------------- delete


@dataclass(frozen=True)
class DeletePlan:
    """What `delete sync` would do: the object, and each inventory entry's fate (with why)."""

    obj: JSON
    results: tuple[ObjectResult, ...] = ()
    keep: bool = False

    @property
    def deletes(self) -> list[ObjectResult]:
        return [r for r in self.results if r.action is ObjectAction.WOULD_DELETE]


def plan_delete_sync(kube: Kube, namespace: str, name: str, *, keep: bool) -> DeletePlan:
    """The prune a `delete sync` would do, decided exactly as the prune itself decides (nothing
    is changed): objects that are still this Sync's would be deleted, the rest left with why."""
    obj = get_one(kube, record.SYNCS, namespace, name)
    if keep:
        return DeletePlan(obj, keep=True)
    spec = parse_sync(obj)
    inventory = read_inventory(spec.namespace, spec.name, (obj.get("status") or {}).get("inventory"))
    applier = Engine(kube).applier_for(spec)
    live = applier.live_objects({(r.api_version, r.kind) for r in inventory})
    results = []
    for ref in inventory:
        verb, why = prune_decision(ref, live.get(ref.key), spec.name, spec.namespace)
        if verb is PruneVerb.DELETE:
            results.append(ObjectResult(ref, ObjectAction.WOULD_DELETE))
        else:
            results.append(ObjectResult(ref, ObjectAction.WOULD_SKIP, why))
    return DeletePlan(obj, tuple(results))


@dataclass(frozen=True)
class DeleteReport:
    results: tuple[ObjectResult, ...] = ()
    deleted: bool = True
    """False: the object was gone already."""


def delete_sync(kube: Kube, namespace: str, name: str, *, keep: bool) -> DeleteReport:
    """Prune what the Sync applied (unless `keep`), then delete the Sync. A failed prune keeps the
    Sync (its inventory still lists what is left) and raises PruneFailed with the results."""
    obj = get_one(kube, record.SYNCS, namespace, name)
    results: list[ObjectResult] = [] if keep else prune_everything(kube, obj)
    failed = [r for r in results if r.failed]
    if failed:
        raise DeleteFailed(results, f"{len(failed)} object(s) could not be deleted; the Sync is kept so its "
                                    "inventory still lists them: fix and run the delete again")
    return DeleteReport(tuple(results), kube.delete(record.SYNCS, name, namespace))


def delete_source(kube: Kube, namespace: str, name: str) -> DeleteReport:
    get_one(kube, record.SOURCES, namespace, name)
    return DeleteReport((), kube.delete(record.SOURCES, name, namespace))


class DeleteFailed(PruneFailed):
    """A prune before a delete failed; carries every object's result for the CLI to print."""

    def __init__(self, results: list[ObjectResult], message: str) -> None:
        super().__init__(message)
        self.results = results


# ---------------------------------------------------------------- uninstall


@dataclass(frozen=True)
class UninstallPlan:
    """What `uninstall` would delete: the project's objects that exist (in deletion order), and the
    custom objects that go with their CRDs."""

    results: tuple[ObjectResult, ...]
    custom: dict[str, list[str]] = field(default_factory=dict)
    """Kind -> `namespace/name` of the objects deleted with the CRDs (Syncs, GitSources, ...)."""

    @property
    def deletes(self) -> list[ObjectResult]:
        """The objects that exist, so would be deleted (in order)."""
        return [r for r in self.results if r.action is ObjectAction.WOULD_DELETE]


def plan_uninstall(kube: Kube) -> UninstallPlan:
    resources = kube.discover()
    results: list[ObjectResult] = []
    custom: dict[str, list[str]] = {}
    for obj in install.uninstall_objects():
        ref = ref_of(obj)
        info = resources.get(ref.api_version, ref.kind)
        live = kube.get(info, ref.name, ref.namespace or None) if info is not None else None
        results.append(ObjectResult(ref, ObjectAction.WOULD_DELETE if live is not None else ObjectAction.ABSENT))
        if live is not None and ref.kind == "CustomResourceDefinition":
            kind, names = _instances(kube, live)
            if names:
                custom[kind] = names
    return UninstallPlan(tuple(results), custom)


def _instances(kube: Kube, crd: JSON) -> tuple[str, list[str]]:
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    version = next((v.get("name") for v in spec.get("versions") or [] if v.get("served")), None)
    if not version:
        return str(names.get("kind")), []
    info = ResourceInfo(str(spec.get("group")), str(version), str(names.get("kind")), str(names.get("plural")),
                        spec.get("scope") == "Namespaced")
    items = kube.list(info)
    return info.kind, sorted(_name(o) for o in items)


def _name(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta['namespace']}/{meta.get('name')}" if meta.get("namespace") else str(meta.get("name"))
