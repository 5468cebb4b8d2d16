"""`drift`, `tree` and `trace`: where objects came from and what happened to them since, read only.

Everything is read with the user's own connection (never impersonating): these commands change
nothing, so they need no more than read access to the Syncs and the objects they list. The
objects of a Sync are found the way a sync finds them, by its inventory and one labelled LIST
per kind and namespace; a Sync applied by another Sync (its labels say so) is followed up
(`trace`) or down (`tree`), at most MAX_DEPTH levels, each Sync once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from kubectl_gitops.adapters.git import redact
from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.constants import (
    ANNOTATION_REVISION,
    FIELD_MANAGER,
    GROUP,
    KIND_SYNC,
    LABEL_SYNC,
    LABEL_SYNC_NAMESPACE,
)
from kubectl_gitops.core.discovery import DISCOVERY_ACCEPT, ResourceInfo, ResourceMap
from kubectl_gitops.core.drift import ownership
from kubectl_gitops.core.errors import GitOpsError, UsageError
from kubectl_gitops.core.inspection import DriftedField, KindName, drifted_fields, kind_names, resolve_kind
from kubectl_gitops.core.inventory import Inventory
from kubectl_gitops.core.managed_fields import manager_entries
from kubectl_gitops.core.objects import ObjectRef, ref_of
from kubectl_gitops.core.spec import InvalidSpec, parse_sync
from kubectl_gitops.engine import record
from kubectl_gitops.engine.apply import selector
from kubectl_gitops.engine.reconcile import Engine, read_inventory
from kubectl_gitops.engine.tenants import scope_for

JSON = dict[str, Any]
MAX_DEPTH: Final = 10


class NotManaged(GitOpsError):
    """The object exists but no Sync's labels are on it."""


@dataclass(frozen=True)
class ObjectDrift:
    ref: ObjectRef
    state: str
    """drifted | deleted | unlabelled"""
    fields: tuple[DriftedField, ...] = ()


@dataclass(frozen=True)
class SyncDrift:
    sync: str
    objects: tuple[ObjectDrift, ...]
    checked: int


@dataclass
class TraceLink:
    """One step of a trace: an object and the Sync that applied it."""

    object: str
    sync: str
    in_inventory: bool
    source: str = ""
    url: str = ""
    ref: str = ""
    path: str = ""
    revision: str = ""
    last_applied_revision: str = ""
    applied_at: str = ""
    applier: str = ""
    ready: str = ""
    drift: list[DriftedField] = field(default_factory=list)
    problem: str = ""


class Provenance:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self._resources: ResourceMap | None = None

    @property
    def resources(self) -> ResourceMap:
        if self._resources is None:
            self._resources = self.kube.discover()
        return self._resources

    def sync(self, namespace: str, name: str) -> JSON:
        return Engine(self.kube).get_sync(namespace, name)

    def syncs(self, namespace: str | None) -> list[JSON]:
        record.require_installed(self.kube)
        items = self.kube.list(record.SYNCS, namespace=namespace)
        return sorted(items, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"]))

    # ------------------------------------------------------------ live objects of a Sync

    def live_of(self, sync: JSON) -> tuple[Inventory, dict[tuple[str, str, str, str], JSON | None]]:
        """The inventory and each entry's live object (None when gone); a live object that lost
        the Sync's labels is fetched by name, so it shows as unlabelled rather than deleted."""
        meta = sync["metadata"]
        name, namespace = str(meta["name"]), str(meta["namespace"])
        inventory = read_inventory(namespace, name, (sync.get("status") or {}).get("inventory"))
        sel = selector(name, namespace)
        found: dict[tuple[str, str, str, str], JSON | None] = {}
        lists = {(r.api_version, r.kind, r.namespace) for r in inventory}
        for api_version, kind, ns in sorted(lists):
            info = self.resources.get(api_version, kind)
            if info is None:
                continue
            for obj in self.kube.list(info, label_selector=sel, namespace=ns or None):
                found[ref_of(obj).key] = obj
        for ref in inventory:
            if ref.key not in found:
                info = self.resources.get(ref.api_version, ref.kind)
                found[ref.key] = self.kube.get(info, ref.name, ref.namespace or None) if info else None
        return inventory, found

    # ------------------------------------------------------------ drift

    def drift(self, sync: JSON) -> SyncDrift:
        inventory, live = self.live_of(sync)
        meta = sync["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        out = []
        for ref in inventory:
            obj = live.get(ref.key)
            if obj is None:
                out.append(ObjectDrift(ref, "deleted"))
            elif ownership(obj) != (meta["namespace"], meta["name"]):
                out.append(ObjectDrift(ref, "unlabelled"))
            else:
                fields = drifted_fields(obj)
                if fields:
                    out.append(ObjectDrift(ref, "drifted", tuple(fields)))
        return SyncDrift(key, tuple(out), len(inventory))

    # ------------------------------------------------------------ tree

    def tree(self, sync: JSON, seen: frozenset[str] = frozenset(), depth: int = 0) -> JSON:
        """{"object", "revision", "ready", "inventory": [{"object", "namespace", "kind", "name", "sync"?}]}."""
        meta = sync["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        status = sync.get("status") or {}
        inventory = read_inventory(str(meta["namespace"]), str(meta["name"]), status.get("inventory"))
        node: JSON = {"object": f"Sync/{key}", "revision": str(status.get("lastAppliedRevision") or ""),
                      "ready": _ready(sync), "inventory": []}
        for ref in inventory:
            entry: JSON = {"object": ref.display, "apiVersion": ref.api_version, "kind": ref.kind,
                           "namespace": ref.namespace, "name": ref.name}
            if ref.group == GROUP and ref.kind == KIND_SYNC:
                entry["sync"] = self._child(ref, seen | {key}, depth)
            node["inventory"].append(entry)
        return node

    def _child(self, ref: ObjectRef, seen: frozenset[str], depth: int) -> JSON:
        key = f"{ref.namespace}/{ref.name}"
        if key in seen:
            return {"object": f"Sync/{key}", "problem": "cycle: already shown above"}
        if depth + 1 >= MAX_DEPTH:
            return {"object": f"Sync/{key}", "problem": f"deeper than {MAX_DEPTH} levels: not followed"}
        child = self.kube.get(record.SYNCS, ref.name, ref.namespace)
        if child is None:
            return {"object": f"Sync/{key}", "problem": "not found"}
        return self.tree(child, seen, depth + 1)

    # ------------------------------------------------------------ trace

    def kind(self, text: str) -> KindName:
        docs = [self.kube.request("GET", path, accept=DISCOVERY_ACCEPT) for path in ("/api", "/apis")]
        found = resolve_kind(text, kind_names(docs))
        if found is None:
            raise UsageError(f"the server doesn't have a resource type {text!r}")
        return found

    def trace(self, kind_text: str, name: str, namespace: str) -> list[TraceLink]:
        kind = self.kind(kind_text)
        info = ResourceInfo(kind.group, kind.version, kind.kind, kind.plural, kind.namespaced)
        obj = self.kube.get(info, name, namespace if kind.namespaced else None)
        where = f"{namespace}/{name}" if kind.namespaced else name
        if obj is None:
            raise GitOpsError(f"{kind.kind} {where} not found")
        if ownership(obj) is None:
            raise NotManaged(f"{kind.kind} {where} is not managed by any Sync "
                             f"(it has no {LABEL_SYNC} and {LABEL_SYNC_NAMESPACE} labels)")
        links: list[TraceLink] = []
        seen: set[str] = set()
        while obj is not None and len(links) < MAX_DEPTH:
            owner = ownership(obj)
            if owner is None:
                break
            link, sync = self._link(obj, owner)
            links.append(link)
            if sync is None or link.sync in seen:
                break
            seen.add(link.sync)
            obj = sync
        return links

    def _link(self, obj: JSON, owner: tuple[str, str]) -> tuple[TraceLink, JSON | None]:
        ref = ref_of(obj)
        sync_ns, sync_name = owner
        key = f"{sync_ns}/{sync_name}"
        applied = manager_entries(obj, FIELD_MANAGER)
        link = TraceLink(ref.display, key, False,
                         revision=str(((obj.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_REVISION)
                                      or ""),
                         applied_at=str(applied[-1].get("time") or "") if applied else "",
                         drift=drifted_fields(obj))
        sync = self.kube.get(record.SYNCS, sync_name, sync_ns)
        if sync is None:
            link.problem = f"Sync {key} does not exist (the object is orphaned)"
            return link, None
        status = sync.get("status") or {}
        try:
            link.in_inventory = ref.key in read_inventory(sync_ns, sync_name, status.get("inventory")).keys
        except GitOpsError:
            link.in_inventory = False
        if not link.in_inventory:
            link.problem = f"not in the inventory of Sync {key}: it carries the labels but the Sync never applied it"
        link.last_applied_revision = str(status.get("lastAppliedRevision") or "")
        link.ready = _ready(sync)
        self._source_of(sync, link)
        return link, sync

    def _source_of(self, sync: JSON, link: TraceLink) -> None:
        try:
            spec = parse_sync(sync)
        except InvalidSpec as err:
            link.problem = str(err)
            return
        link.path = spec.path
        link.source = f"GitSource {spec.namespace}/{spec.source_name}"
        try:
            scope = scope_for(self.kube, spec.namespace)
        except GitOpsError:
            scope = None  # can't read the Tenants: the Sync's own applier
        link.applier = Engine.identity(spec, scope)
        try:
            source = self.kube.get(record.SOURCES, spec.source_name, spec.namespace)
        except ApiError:
            source = None
        if source is not None:
            src = source.get("spec") or {}
            link.url = redact(str(src.get("url") or ""))
            ref = src.get("ref") or {}
            link.ref = ", ".join(f"{k} {v}" for k, v in ref.items() if v)


def _ready(sync: JSON) -> str:
    for cond in (sync.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return f"{cond.get('status', 'Unknown')} ({cond.get('reason', '')})"
    return "Unknown (never synced)"

