"""`build` and `diff`: what a sync would apply, and what that would change, writing nothing.

Both render through `Engine.render`, the very steps a sync takes (source, substitution, kinds,
namespaces, stamps, tenant checks), so what they show is what a sync applies. Reads only: the
source is fetched without recording anything on the GitSource, and a diff asks the API server
for a server-side *dry-run* apply, as the Sync's applier (impersonated, as a sync writes), of
only the objects a sync would write; objects whose live state already holds what Git says
cost no request, exactly as in a sync, so a diff costs about what a sync that changes nothing
costs. `--offline` builds with no cluster at all (core/builtin_kinds.py stands in for discovery).
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubectl_gitops.adapters.git import Revision
from kubectl_gitops.adapters.kube import ApiError, Kube, no_connection
from kubectl_gitops.adapters.localtree import LocalTree, open_tree
from kubectl_gitops.constants import FIELD_MANAGER
from kubectl_gitops.core import textdiff
from kubectl_gitops.core.builtin_kinds import BUILTIN
from kubectl_gitops.core.discovery import ResourceMap
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.inventory import Inventory, partition, stale
from kubectl_gitops.core.managed_fields import manager_entries
from kubectl_gitops.core.objects import IdentityKey, ObjectRef, ref_of
from kubectl_gitops.core.plan import PruneVerb, Verb, prune_decision
from kubectl_gitops.core.spec import SourceSpec, parse_sync
from kubectl_gitops.engine.apply import Applier
from kubectl_gitops.engine.reconcile import Engine, Rendered, read_inventory
from kubectl_gitops.engine.source import SourceFetcher, Tree

JSON = dict[str, Any]
DRY_RUN_CONCURRENCY = 16


class ReadOnlyFetcher(SourceFetcher):
    """Fetches and verifies like a sync, but records nothing on the GitSource or TrustPolicy."""

    def _record(self, source: JSON, spec: SourceSpec, revision: Revision | None, err: GitOpsError | None,
                verification: JSON | None = None, fetched: Revision | None = None) -> None:
        return None

    def _record_policy(self, raw: JSON, trust: Any, spec: SourceSpec, verified: Any) -> None:
        return None


class OfflineKube(Kube):
    """No cluster: discovery answers with the built-in kinds, lists are empty (no Tenants), and
    anything else (a ConfigMap to substitute from) fails, naming what an offline build can't read."""

    def __init__(self, namespace: str = "default") -> None:
        super().__init__(no_connection(), "offline", "(offline)", namespace)

    def request(self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None,
                content_type: str = "application/json", timeout: float | None = None,
                accept: str = "application/json") -> JSON:
        raise ApiError(503, f"--offline: there is no cluster to read {path} from")

    def list(self, info: Any, *, label_selector: str = "", namespace: str | None = None,
             page: int = 1000) -> list[JSON]:
        return []

    def discover(self) -> ResourceMap:
        return ResourceMap(BUILTIN)

    def impersonating(self, user: str | None) -> Kube:
        return self


def _tree(local: LocalTree) -> Tree:
    return Tree(local.root, local.revision, local.sha)


class Inspector:
    """Read-only views of Syncs for the CLI, through one connection (the user's)."""

    def __init__(self, kube: Kube, *, concurrency: int = DRY_RUN_CONCURRENCY) -> None:
        self.kube = kube
        self.engine = Engine(kube, ReadOnlyFetcher(kube), concurrency=concurrency)
        self.concurrency = concurrency

    def sync(self, namespace: str, name: str) -> JSON:
        return self.engine.get_sync(namespace, name)

    def render(self, sync: JSON, local: str | None = None, revision: str | None = None) -> Rendered:
        """The objects a sync of `sync` applies now: from its source, or from the directory `local`."""
        if local is None:
            return self.engine.render(sync)
        tree = open_tree(local, revision)
        return self.engine.render(sync, _tree(tree), tree.path)

    # ------------------------------------------------------------ diff

    def diff(self, sync: JSON, rendered: Rendered) -> DiffReport:
        spec = parse_sync(sync)
        applier = self.engine.applier_for(spec)
        old = read_inventory(spec.namespace, spec.name, (sync.get("status") or {}).get("inventory"))
        new = Inventory(ref_of(o) for o in rendered.objects)
        kinds = {(r.api_version, r.kind) for r in old} | {(o["apiVersion"], o["kind"]) for o in rendered.objects}
        live, _ = partition(applier.live_objects(kinds), old.keys | new.keys)
        changes = applier.plan(rendered.objects, live)
        writes = [a for a in changes.actions if a.verb is not Verb.UNCHANGED]
        label = f"{rendered.revision}"
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(writes)))) as pool:
            found = list(pool.map(lambda a: self._one(applier, a.ref, a.obj, live.get(a.ref.key), label,
                                                      rendered.secrets), writes))
        diffs = [d for d in found if d is not None]
        left = stale(old, new)
        if spec.prune:
            diffs += self._pruned(left, live, spec.name, spec.namespace, rendered.secrets)
        unchanged = len(changes.actions) - len([d for d in diffs if d.action != "prune"])
        return DiffReport(f"{spec.namespace}/{spec.name}", rendered.revision, tuple(diffs), unchanged,
                          kept=() if spec.prune else left, suspended=spec.suspend)

    def _one(self, applier: Applier, ref: ObjectRef, desired: JSON, current: JSON | None, label: str,
             secrets: tuple[str, ...]) -> ObjectDiff | None:
        info = applier.resources.get(ref.api_version, ref.kind)
        if current is None and info is not None:
            current = applier.kube.get(info, ref.name, ref.namespace or None)  # there, but not labelled (yet)
        if current is None or info is None:
            after = textdiff.shown(desired)
            _, after = textdiff.mask_secrets(None, after)
            return ObjectDiff(ref, "create", textdiff.unified(None, after, ref.display, "live", label, secrets))
        try:
            result = applier.kube.apply(info, desired, field_manager=FIELD_MANAGER, force=True, dry_run=True)
        except ApiError as err:
            raise GitOpsError(f"{ref.display}: the server-side dry run as the applier failed: {err}") from err
        before, after = owned_views(current, result)
        text = textdiff.unified(before, after, ref.display, "live", label, secrets)
        return ObjectDiff(ref, "configure", text) if text else None

    @staticmethod
    def _pruned(refs: tuple[ObjectRef, ...], live: Mapping[IdentityKey, JSON], name: str, namespace: str,
                secrets: tuple[str, ...]) -> list[ObjectDiff]:
        out = []
        for ref in refs:
            current = live.get(ref.key)
            verb, _ = prune_decision(ref, current, name, namespace)
            if verb is PruneVerb.DELETE and current is not None:
                before, _ = owned_views(current, None)
                out.append(ObjectDiff(ref, "prune", textdiff.unified(before, None, ref.display, "live", "", secrets)))
        return out


def owned_views(live: JSON, result: JSON | None) -> tuple[JSON | None, JSON | None]:
    """`live` and the dry-run `result` cut to the fields our field manager owns in either (masked)."""
    tries = [e["fieldsV1"] for obj in (live, result) for e in manager_entries(obj, FIELD_MANAGER)
             if isinstance(e.get("fieldsV1"), Mapping)]
    fields = textdiff.with_stored_secret_keys(live, textdiff.merge_tries(tries))
    before = textdiff.shown(_identified(live, textdiff.cut(live, fields)))
    after = textdiff.shown(_identified(result, textdiff.cut(result, fields))) if result is not None else None
    return textdiff.mask_secrets(before, after)


def _identified(obj: JSON, cut: Any) -> JSON:
    """The cut with the object's apiVersion and kind (never in managedFields), for Secret masking."""
    out = {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind")}
    if isinstance(cut, dict):
        out.update(cut)
    return out


@dataclass(frozen=True)
class ObjectDiff:
    ref: ObjectRef
    action: str
    """create | configure | prune"""
    text: str
    """The unified diff, Secret values masked."""


@dataclass(frozen=True)
class DiffReport:
    sync: str
    revision: str
    objects: tuple[ObjectDiff, ...]
    unchanged: int
    kept: tuple[ObjectRef, ...] = ()
    """Objects that left Git but stay in the cluster (the Sync does not prune): not differences."""
    suspended: bool = False

    @property
    def differs(self) -> bool:
        return bool(self.objects)

    def counts(self) -> dict[str, int]:
        return {action: sum(1 for d in self.objects if d.action == action) for action in ("create", "configure",
                                                                                            "prune")}


def offline_render(sync: JSON, local: str, revision: str | None = None) -> Rendered:
    """`build --offline`: the build of `local` for the Sync object `sync`, with no cluster at all."""
    namespace = str((sync.get("metadata") or {}).get("namespace") or "default")
    kube = OfflineKube(namespace)
    engine = Engine(kube, ReadOnlyFetcher(kube))
    tree = open_tree(local, revision)
    return engine.render(sync, _tree(tree), tree.path)
