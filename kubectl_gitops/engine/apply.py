"""Staged, concurrent server-side apply and inventory-driven prune.

The change set comes from the pure planner: objects whose live state already contains what Git
says cost no request at all. What must be written is applied in stages (cluster definitions
first, waiting for CRDs to be Established; webhook configurations last), each stage
concurrently, as field manager `kubectl-gitops`. Every object gets its own result; a stage with
a failure stops the ones after it, and the caller never prunes after a failed apply.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.constants import FIELD_MANAGER, LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core.discovery import ResourceInfo, ResourceMap, from_crd
from kubectl_gitops.core.errors import ApplyFailed, ClusterUnreachable, GitOpsError
from kubectl_gitops.core.objects import IdentityKey, ObjectRef, ref_of
from kubectl_gitops.core.plan import (
    Action,
    ChangeSet,
    PruneVerb,
    Verb,
    held_by_finalizers,
    plan,
    prune_decision,
    waiting_on,
)
from kubectl_gitops.core.stages import stage_of
from kubectl_gitops.core.status import ObjectAction

JSON = dict[str, Any]
Tick = Callable[[ObjectAction, ObjectRef], None]
# Objects per LIST page when reading live state. Large enough that a Sync of ten thousand objects
# reads each kind in one request (the request count grows with kinds, not objects), small enough
# that one page of big objects stays a few tens of MB.
LIST_PAGE = 5000
_BINDINGS = frozenset({"RoleBinding", "ClusterRoleBinding"})
_BINDING_WAIT = 5.0
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@dataclass(frozen=True)
class ObjectResult:
    """What happened to one object, and why (the message) when that is not obvious."""

    ref: ObjectRef
    action: ObjectAction
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.action is ObjectAction.FAILED


def selector(sync_name: str, sync_namespace: str) -> str:
    return f"{LABEL_SYNC}={sync_name},{LABEL_SYNC_NAMESPACE}={sync_namespace}"


class Applier:
    """Applies and prunes for one Sync, as that Sync's applier identity."""

    def __init__(self, kube: Kube, resources: ResourceMap, sync_name: str, sync_namespace: str, *,
                 concurrency: int = 16, force: bool = False, tick: Tick | None = None,
                 namespaces: tuple[str, ...] | None = None,
                 cluster_ok: Callable[[ResourceInfo], bool] | None = None) -> None:
        self.kube = kube
        self.namespaces = namespaces
        """A namespaced applier (a tenant's): reads only in these namespaces; None reads cluster-wide."""
        self.cluster_ok = cluster_ok or (lambda _info: True)
        self.resources = resources
        self.sync_name = sync_name
        self.sync_namespace = sync_namespace
        self.concurrency = concurrency
        self.force = force
        self.tick = tick or (lambda _a, _r: None)
        self._unreachable = threading.Event()

    # ------------------------------------------------------------ reading live state

    def info(self, api_version: str, kind: str) -> ResourceInfo:
        found = self.resources.get(api_version, kind)
        if found is None:
            raise ApplyFailed(f"{kind} in {api_version} is not served by the API server")
        return found

    def live_objects(self, kinds: Iterable[tuple[str, str]]) -> dict[IdentityKey, JSON]:
        """Our live objects of these kinds: one labelled LIST per kind (per namespace for a namespaced
        applier, which may not list cluster-wide), not a request per object."""
        live: dict[IdentityKey, JSON] = {}
        sel = selector(self.sync_name, self.sync_namespace)
        infos = {k: self.resources.get(*k) for k in set(kinds)}
        lists = self._lists([i for i in infos.values() if i is not None])
        with ThreadPoolExecutor(max_workers=min(8, max(1, len(lists)))) as pool:
            for items in pool.map(lambda t: self.kube.list(t[0], label_selector=sel, namespace=t[1],
                                                           page=LIST_PAGE), lists):
                for obj in items:
                    live[ref_of(obj).key] = obj
        return live

    def _lists(self, served: list[ResourceInfo]) -> list[tuple[ResourceInfo, str | None]]:
        """The LISTs to send: (kind, namespace or None for cluster-wide)."""
        if self.namespaces is None:
            return [(info, None) for info in served]
        out: list[tuple[ResourceInfo, str | None]] = []
        for info in served:
            if info.namespaced:
                out += [(info, ns) for ns in self.namespaces]
            elif self.cluster_ok(info):
                out.append((info, None))
        return out

    # ------------------------------------------------------------ apply

    def plan(self, desired: list[JSON], live: Mapping[IdentityKey, JSON]) -> ChangeSet:
        by_ref = {ref_of(obj): obj for obj in live.values()}
        return plan(desired, by_ref)

    def apply(self, changes: ChangeSet, started: float) -> list[ObjectResult]:
        """Apply the change set stage by stage; raise ApplyFailed (with results) on any failure."""
        unchanged = changes.with_verb(Verb.UNCHANGED)
        results: list[ObjectResult] = [ObjectResult(a.ref, ObjectAction.UNCHANGED) for a in unchanged]
        for ref in (a.ref for a in changes.with_verb(Verb.UNCHANGED)):
            self.tick(ObjectAction.UNCHANGED, ref)
        stages: dict[int, list[Action]] = {}
        for action in changes.writes:
            stages.setdefault(stage_of(action.obj), []).append(action)
        crds = [a.obj for a in changes.actions if a.obj.get("kind") == "CustomResourceDefinition"]
        for stage in sorted(stages):
            outcome = self._apply_all(stages[stage], started)
            results += outcome
            failed = [r for r in outcome if r.failed]
            if failed:
                raise ApplyFailedWith(results, failed)
            if stage == 0 and crds:
                self._wait_established(crds)
        if 0 not in stages and crds:
            self._wait_established(crds)
        return results

    def _apply_all(self, actions: list[Action], started: float) -> list[ObjectResult]:
        if len(actions) == 1:
            return [self._apply_one(actions[0], started)]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda a: self._apply_one(a, started), actions))

    def _apply_one(self, action: Action, started: float) -> ObjectResult:
        ref = action.ref
        if self._unreachable.is_set():
            # The server stopped answering: the rest of the stage is not sent (it would only time
            # out one request after another), and the stage fails as a whole.
            result = ObjectResult(ref, ObjectAction.FAILED, f"{ref.display}: not sent, the API server is unreachable")
            self.tick(result.action, ref)
            return result
        try:
            info = self.info(ref.api_version, ref.kind)
            out = self._ssa(info, action.obj)
        except ApiError as err:
            result = self._on_apply_error(action, err, started)
        except ClusterUnreachable as err:
            self._unreachable.set()
            result = ObjectResult(ref, ObjectAction.FAILED, f"{ref.display}: {err}")
        except GitOpsError as err:  # TooLarge among others: this object's failure, not the server's
            result = ObjectResult(ref, ObjectAction.FAILED, f"{ref.display}: {err}")
        else:
            result = ObjectResult(ref, _created_or_configured(action, out, started))
        self.tick(result.action, ref)
        return result

    def _ssa(self, info: ResourceInfo, obj: JSON) -> JSON:
        return self.kube.apply(info, obj, field_manager=FIELD_MANAGER, force=True)

    def _on_apply_error(self, action: Action, err: ApiError, started: float) -> ObjectResult:
        if err.status == 404 and action.ref.kind in _BINDINGS:
            return self._retry_binding(action, err, started)
        if self.force and err.status == 422 and "immutable" in str(err):
            return self._recreate(action, started)
        if too_large(err):
            return ObjectResult(action.ref, ObjectAction.FAILED,
                                f"{action.ref.display}: refused by the API server as too large "
                                f"({_size(action.obj)} bytes as JSON): {err}")
        return ObjectResult(action.ref, ObjectAction.FAILED, f"{action.ref.display}: {err}")

    def _retry_binding(self, action: Action, err: ApiError, started: float) -> ObjectResult:
        """An applier that may not escalate has a binding checked against the Role it references, read
        from the API server's cache: a Role created a moment ago (same run) may not be there yet and
        the binding fails as "not found". Wait for the cache, a few seconds at most."""
        deadline = time.monotonic() + _BINDING_WAIT
        while time.monotonic() < deadline:
            time.sleep(0.25)
            try:
                out = self._ssa(self.info(action.ref.api_version, action.ref.kind), action.obj)
            except ApiError as again:
                if again.status != 404:
                    return ObjectResult(action.ref, ObjectAction.FAILED, f"{action.ref.display}: {again}")
                err = again
                continue
            return ObjectResult(action.ref, _created_or_configured(action, out, started))
        return ObjectResult(action.ref, ObjectAction.FAILED, f"{action.ref.display}: {err}")

    def _recreate(self, action: Action, started: float) -> ObjectResult:
        """`force`: an immutable field changed, so delete the object and create it again."""
        ref = action.ref
        info = self.info(ref.api_version, ref.kind)
        try:
            self.kube.delete(info, ref.name, ref.namespace or None, propagation="Foreground")
            deadline = time.monotonic() + 60
            while self.kube.get(info, ref.name, ref.namespace or None) is not None:
                if time.monotonic() > deadline:
                    return ObjectResult(ref, ObjectAction.FAILED, f"{ref.display}: still deleting after 60s (force)")
                time.sleep(0.2)
            self._ssa(info, action.obj)
        except GitOpsError as err:
            return ObjectResult(ref, ObjectAction.FAILED, f"{ref.display}: recreate failed: {err}")
        return ObjectResult(ref, ObjectAction.CONFIGURED, "recreated (immutable field changed, force)")

    def _wait_established(self, crds: list[JSON], timeout: float = 60) -> None:
        info = self.info("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        deadline = time.monotonic() + timeout
        for crd in crds:
            name = crd["metadata"]["name"]
            while True:
                live = self.kube.get(info, name)
                conds = {c.get("type"): c.get("status") for c in ((live or {}).get("status") or {})
                         .get("conditions") or []}
                if conds.get("Established") == "True":
                    break
                if time.monotonic() > deadline:
                    raise ApplyFailed(f"CustomResourceDefinition/{name} not Established after {timeout:.0f}s")
                time.sleep(0.2)
            self.resources = self.resources.with_extra(from_crd(crd))

    # ------------------------------------------------------------ prune

    def prune(self, stale: Iterable[ObjectRef], live: Mapping[IdentityKey, JSON]) -> tuple[
            list[ObjectResult], list[ObjectRef]]:
        """Delete stale objects that are still ours. Returns results and the refs that stay in the
        inventory: failed deletes (retried next run) and objects held by finalizers (still there:
        dropped once they are gone, never reported as pruned before)."""
        todo: list[ObjectRef] = []
        results: list[ObjectResult] = []
        for ref in stale:
            verb, why = prune_decision(ref, live.get(ref.key), self.sync_name, self.sync_namespace)
            if verb is PruneVerb.DELETE:
                todo.append(ref)
            elif verb is PruneVerb.WAIT:
                results.append(ObjectResult(ref, ObjectAction.WAITING, why))
            else:  # SKIP or GONE: leaves the inventory
                results.append(ObjectResult(ref, ObjectAction.SKIPPED, why))
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            results += list(pool.map(self._delete_one, todo))
        keep = [r.ref for r in results if r.action.keeps_in_inventory]
        return results, keep

    def _delete_one(self, ref: ObjectRef) -> ObjectResult:
        try:
            info = self.resources.get(ref.api_version, ref.kind)
            if info is None:
                return ObjectResult(ref, ObjectAction.SKIPPED, f"{ref.kind} is no longer served")
            answer = self.kube.delete_object(info, ref.name, ref.namespace or None)
        except GitOpsError as err:
            result = ObjectResult(ref, ObjectAction.FAILED, f"{ref.display}: delete failed: {err}")
        else:
            if held_by_finalizers(answer):
                why = f"{ref.display} is being deleted; {waiting_on(answer or {})}"
                result = ObjectResult(ref, ObjectAction.WAITING, why)
            else:
                result = ObjectResult(ref, ObjectAction.PRUNED)
        self.tick(result.action, ref)
        return result


class ApplyFailedWith(ApplyFailed):
    """ApplyFailed carrying every per-object result so far (for the summary and the record)."""

    def __init__(self, results: list[ObjectResult], failed: list[ObjectResult]) -> None:
        first = "; ".join(r.message for r in failed[:3])
        more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
        super().__init__(f"{len(failed)} object(s) failed to apply: {first}{more}")
        self.results = results


def too_large(err: ApiError) -> bool:
    """HTTP 413 (the API server's body limit) or etcd's own limit (a 500 with its message)."""
    text = str(err).lower()
    return err.status == 413 or "too large" in text or "entity too large" in text


def _size(obj: JSON) -> int:
    return len(json.dumps(obj, separators=(",", ":")))


def _created_or_configured(action: Action, out: JSON, started: float) -> ObjectAction:
    if action.verb is Verb.CONFIGURE:
        return ObjectAction.CONFIGURED
    created = str((out.get("metadata") or {}).get("creationTimestamp") or "")
    return ObjectAction.CREATED if _is_recent(created, started) else ObjectAction.CONFIGURED


def _is_recent(timestamp: str, started: float) -> bool:
    """Created by this run? (An unlabelled object that already existed is "configured".)

    RFC 3339 UTC timestamps in this fixed form order like their text, so a string comparison does
    what parsing would, without a locale-locked strptime per object from every apply thread."""
    if not _TIMESTAMP.match(timestamp):
        return True
    return timestamp >= time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(started) - 1))
