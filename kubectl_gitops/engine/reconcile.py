"""Reconcile one Sync, top to bottom: tenancy, dependencies, source, build, plan, apply, prune,
health, record.

Each step (engine/steps.py) has a named failure reason, given at the step itself: an API error
while listing live objects is `PlanFailed`, while deleting stale ones `PruneFailed`. A failing
step stops the steps after it: nothing is applied from a build that failed, nothing is pruned
after a failed apply, and the last applied revision stays recorded as the last good one.

What a run writes is decided by the core (`core.status.build_status` over an `Outcome`) and
written by one method here (`_write_status`), with the resourceVersion read as a precondition.
The CLI's `sync` and the controller both drive this class; neither prints nor logs from here.
Reads a little like Flux's kustomize-controller on purpose: users who know one can follow the other.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kubectl_gitops.adapters.git import SourcePolicy
from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.adapters.render import render
from kubectl_gitops.constants import FIELD_MANAGER
from kubectl_gitops.core import lockdown
from kubectl_gitops.core import manifests as mf
from kubectl_gitops.core.discovery import CONFIGMAPS, SECRETS, ResourceInfo, ResourceMap
from kubectl_gitops.core.errors import (
    BuildFailed,
    DependencyNotReady,
    GitOpsError,
    InventoryCorrupt,
    PruneFailed,
    ReconcileError,
)
from kubectl_gitops.core.graph import find_cycle
from kubectl_gitops.core.inventory import Inventory, partition, salvage, stale, union
from kubectl_gitops.core.managed_fields import manager_entries
from kubectl_gitops.core.objects import IdentityKey, ObjectRef, ref_of
from kubectl_gitops.core.plan import ChangeSet, stamp
from kubectl_gitops.core.spec import InvalidSpec, SyncSpec, applier_of, parse_source, parse_sync
from kubectl_gitops.core.status import (
    ObjectAction,
    Outcome,
    RunRecord,
    build_status,
    count_results,
    generation_of,
    inventory_status,
    is_true,
    readable_conditions,
)
from kubectl_gitops.core.substitute import mask
from kubectl_gitops.engine import record
from kubectl_gitops.engine.apply import Applier, ApplyFailedWith, ObjectResult, Tick
from kubectl_gitops.engine.health import wait_healthy
from kubectl_gitops.engine.helm_hooks import HookRunner
from kubectl_gitops.engine.signatures import attach, carry_signatures, read_entries
from kubectl_gitops.engine.source import SourceFetcher, Tree
from kubectl_gitops.engine.steps import Step, failing_as
from kubectl_gitops.engine.tenants import TenantScope, record_tenant, scope_for

JSON = dict[str, Any]


class DependencyCycle(InvalidSpec):
    reason = "DependencyCycle"


@dataclass(frozen=True)
class SyncReport:
    """What one reconcile did; the CLI renders it, the status records it."""

    namespace: str
    name: str
    revision: str
    ready: bool
    reason: str
    message: str
    duration: float
    results: tuple[ObjectResult, ...] = ()
    counts: dict[str, int] = field(default_factory=dict)
    error: BaseException | None = field(default=None, compare=False, repr=False)
    """The unexpected exception behind a ReconcileError (for `--debug`); None otherwise."""
    steps: tuple[Step, ...] = ()
    """The steps the run went through, in order (the last one is where a failure happened)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Rendered:
    """What a sync would apply (`Engine.render`): the revision, the objects, and the values from
    Secrets that went into them (to mask in anything shown)."""

    revision: str
    objects: list[JSON]
    secrets: tuple[str, ...] = ()


@dataclass
class _Run:
    """Mutable facts gathered along one run."""

    spec: SyncSpec
    obj: JSON
    started: float
    started_at: datetime
    revision: str = ""
    results: list[ObjectResult] = field(default_factory=list)
    inventory: Inventory | None = None
    healthy: bool | None = None
    ignored: list[ObjectResult] = field(default_factory=list)
    """Labelled strangers (not in the inventory nor in Git): reported, never acted on."""
    scope: TenantScope | None = None
    """The Tenant claiming the Sync's namespace (locked down), or None (the platform's Sync)."""
    secrets: tuple[str, ...] = ()  # values from Secrets: masked in every message of this run
    step: Step | None = None
    steps: list[Step] = field(default_factory=list)


class Engine:
    """Reconciles Syncs against one cluster. `kube` is the operator's connection.

    `tick` is called per object written or pruned (a progress bar), `on_total` once with the number
    of objects the run will act on, `on_step` as each step starts (logs, metrics)."""

    def __init__(self, kube: Kube, fetcher: SourceFetcher | None = None, *, tick: Tick | None = None,
                 on_total: Callable[[int], None] | None = None, concurrency: int = 16,
                 clock: Callable[[], float] = time.time, on_step: Callable[[Step], None] | None = None) -> None:
        self.kube = kube
        self.fetcher = fetcher or SourceFetcher(kube)
        self.tick = tick
        self.on_total = on_total or (lambda _n: None)
        self.on_step = on_step
        self.concurrency = concurrency
        self.clock = clock
        self._resources: ResourceMap | None = None
        self._whoami: str | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # ------------------------------------------------------------ entry

    def reconcile(self, namespace: str, name: str, *, reset_inventory: bool = False) -> SyncReport:
        """Run once and record the outcome on the Sync, whatever happens: a failure keeps the reason
        of the step it happened in; anything unforeseen is recorded as ReconcileError (never a
        traceback that leaves an old Ready=True standing)."""
        obj = self.get_sync(namespace, name)
        try:
            spec = parse_sync(obj)
        except InvalidSpec as err:
            return self._record_failure(obj, None, err, stalled=True)
        except Exception as err:
            return self._record_failure(obj, None, unexpected(err), stalled=False, error=err)
        if spec.suspend:
            return SyncReport(namespace, name, _last_applied(obj), is_true(_conds(obj), "Ready"), "Suspended",
                              "the Sync is suspended; nothing was done", 0.0)
        return self._run(_Run(spec, obj, self.clock(), self.now()), reset_inventory)

    def _run(self, run: _Run, reset_inventory: bool) -> SyncReport:
        try:
            self._reconcile(run, reset_inventory)
            with self._step(run, Step.RECORD):
                report = self._record_success(run)
        except GitOpsError as err:
            return self._fail(run, err)
        except Exception as err:
            return self._fail(run, unexpected(err, run.step), error=err)
        self._record_tenant(run, None)
        return report

    def _fail(self, run: _Run, err: GitOpsError, error: BaseException | None = None) -> SyncReport:
        if isinstance(err, StatusNotRecorded):
            raise err
        report = self._record_failure(run.obj, run, err, stalled=isinstance(err, InvalidSpec), error=error)
        self._record_tenant(run, err)
        return report

    def _step(self, run: _Run, step: Step) -> AbstractContextManager[None]:
        """Enter a step: its failures get its reason (engine/steps.py)."""
        return failing_as(run, step, self.on_step)

    def _record_tenant(self, run: _Run, err: GitOpsError | None) -> None:
        """A tenant's Sync also updates its Tenant's status: namespaces found, Syncs, last violation."""
        if run.scope is None:
            return
        violation = None
        if isinstance(err, lockdown.TenantViolation):
            violation = (err.rule, mask(str(err), run.secrets))
        record_tenant(self.kube, run.scope, violation=violation)  # best effort: the Sync's record is the truth

    def get_sync(self, namespace: str, name: str) -> JSON:
        try:
            found = self.kube.get(record.SYNCS, name, namespace)
        except ApiError as err:
            record.require_installed(self.kube)
            raise GitOpsError(f"cannot read Sync {namespace}/{name}: {err}") from err
        if found is None:
            record.require_installed(self.kube)
            raise GitOpsError(f"Sync {namespace}/{name} not found")
        return found

    def render(self, sync: JSON, tree: Tree | None = None, path: str | None = None) -> Rendered:
        """What a sync of `sync` (a Sync object) would apply now, stamped and namespaced, writing
        nothing itself: built from the source's revision, or from `tree` (a local work tree) with
        `path` in place of spec.path. The very steps a run takes (tenant checks included), for
        `kubectl gitops build` and `diff` (engine/inspect.py)."""
        spec = parse_sync(sync)
        if path is not None:
            spec = replace(spec, path=path)
        run = _Run(spec, sync, self.clock(), record.now())
        run.scope = scope = scope_for(self.kube, spec.namespace)
        self._check_sync(spec, scope)
        if spec.chart is not None:
            from kubectl_gitops.engine.helm import render_chart

            chart = render_chart(self, run, tree)
            desired, revision = chart.desired, chart.revision
        elif tree is None:
            source_obj, policy = self._source(spec, scope)
            with self.fetcher.checkout(source_obj, policy, pin=spec.revision) as fetched:
                desired = self._build(spec, fetched, run)
                attach(desired, read_entries(fetched.path, spec.path))  # the signatures sync carries
                revision = fetched.revision
        else:
            desired = self._build(spec, tree, run)
            attach(desired, read_entries(tree.path, spec.path))
            revision = tree.revision
        if scope is not None:
            self._check_rendered(spec, scope, desired)
        return Rendered(revision, desired, run.secrets)

    # ------------------------------------------------------------ the steps

    def _reconcile(self, run: _Run, reset_inventory: bool = False) -> None:
        spec = run.spec
        with self._step(run, Step.TENANCY):
            run.scope = scope = scope_for(self.kube, spec.namespace)
            self._check_sync(spec, scope)
        with self._step(run, Step.DEPENDENCIES):
            self._check_dependencies(spec)
        desired, hooks = self._desired(run)
        with self._step(run, Step.PLAN):
            applier = self.applier_for(spec, scope)
            old, new, live, changes = self._plan(run, applier, desired, reset_inventory)
        with self._step(run, Step.APPLY):
            self._apply(run, applier, changes, old, new, reset_inventory, hooks)
        if spec.prune:
            with self._step(run, Step.PRUNE):
                self._prune(run, applier, old, new, live)
        with self._step(run, Step.HEALTH):
            self._wait(run, applier, desired)
        if hooks is not None:
            with self._step(run, Step.APPLY):
                hooks.after(applier.kube, applier.resources)

    def _desired(self, run: _Run) -> tuple[list[JSON], HookRunner | None]:
        """The source and build steps: the GitSource's path (kustomize or plain YAML, signatures
        carried), or a Helm chart (engine/helm.py) with the hooks to run around the apply."""
        spec, scope = run.spec, run.scope
        if spec.chart is not None:
            from kubectl_gitops.engine.helm import render_chart

            with self._step(run, Step.BUILD):
                chart = render_chart(self, run)
                run.revision = chart.revision
                if scope is not None:
                    self._check_rendered(spec, scope, chart.desired + (chart.hooks.objects if chart.hooks else []))
            return chart.desired, chart.hooks
        with ExitStack() as checkout:
            with self._step(run, Step.SOURCE):
                source_obj, policy = self._source(spec, scope)
                tree = checkout.enter_context(self.fetcher.checkout(source_obj, policy, pin=spec.revision))
            run.revision = tree.revision
            with self._step(run, Step.BUILD):
                desired = self._build(spec, tree, run)
                desired = carry_signatures(self.kube, spec, tree.path, desired, scope.tenant.name if scope else "")
                if scope is not None:
                    self._check_rendered(spec, scope, desired)
        return desired, None

    def _plan(self, run: _Run, applier: Applier, desired: list[JSON], reset_inventory: bool) -> tuple[
            Inventory, Inventory, dict[IdentityKey, JSON], ChangeSet]:
        """The recorded inventory (old), Git's (new), the live objects this Sync may act on, and what to write."""
        new = Inventory(ref_of(o) for o in desired)
        recorded = _status_of(run.obj).get("inventory")
        if reset_inventory:
            old, seen = self._adopt(applier, recorded, new)
        else:
            old = read_inventory(run.spec.namespace, run.spec.name, recorded)
            kinds = {(r.api_version, r.kind) for r in old} | {(o["apiVersion"], o["kind"]) for o in desired}
            seen = applier.live_objects(kinds)
        live, strangers = partition(seen, old.keys | new.keys)
        run.ignored = [ObjectResult(_stranger_ref(key, seen[key]), ObjectAction.IGNORED, STRANGER)
                       for key in strangers]
        changes = applier.plan(desired, live)
        self.on_total(len(changes.actions) + len(stale(old, new)))
        return old, new, live, changes

    def _apply(self, run: _Run, applier: Applier, changes: ChangeSet, old: Inventory, new: Inventory,
               reset_inventory: bool, hooks: HookRunner | None = None) -> None:
        # Write-ahead: every object about to be created is in the recorded inventory first, so a
        # run that dies half-way (or loses a race) can never leave an object with our labels that
        # no inventory lists.
        ahead = old.merge(new)
        run.inventory = ahead
        if ahead.keys != old.keys or reset_inventory:
            self._write_inventory(run, ahead)
        if hooks is not None:
            hooks.before(applier.kube, applier.resources)
        try:
            run.results = applier.apply(changes, run.started)
        except ApplyFailedWith as err:
            run.results = err.results
            raise
        run.inventory = new

    def _prune(self, run: _Run, applier: Applier, old: Inventory, new: Inventory,
               live: dict[IdentityKey, JSON]) -> None:
        """Delete what left Git (only after a successful apply: the caller never gets here otherwise)."""
        pruned, keep = applier.prune(stale(old, new), live)
        run.results += pruned
        run.inventory = new.merge(keep)
        failed = [r for r in pruned if r.failed]
        if failed:
            raise PruneFailed("; ".join(r.message for r in failed[:3]))

    def _adopt(self, applier: Applier, recorded: Any, new: Inventory) -> tuple[
            Inventory, dict[IdentityKey, JSON]]:
        """`--reset-inventory`: rebuild the inventory from the cluster. Adopted are the objects of
        the kinds in Git or in the readable part of the old inventory that carry this Sync's
        labels *and* were applied by our field manager; other labelled objects stay strangers."""
        kinds = {(r.api_version, r.kind) for r in salvage(recorded).merge(new)}
        live = applier.live_objects(kinds)
        adopted = Inventory(ref_of(obj) for obj in live.values() if manager_entries(obj, FIELD_MANAGER))
        return adopted, live

    def _check_dependencies(self, spec: SyncSpec) -> None:
        if not spec.depends_on:
            return
        edges: dict[str, list[str]] = {spec.key: [f"{d.namespace}/{d.name}" for d in spec.depends_on]}
        waiting: list[str] = []
        todo = list(edges[spec.key])
        while todo:
            key = todo.pop()
            if key in edges:
                continue
            ns, name = key.split("/", 1)
            dep = self.kube.get(record.SYNCS, name, ns)
            if dep is None:
                edges[key] = []
                waiting.append(f"{key} (not found)")
                continue
            deps = [f"{d.get('namespace') or ns}/{d.get('name')}"
                    for d in (dep.get("spec") or {}).get("dependsOn") or []]
            edges[key] = deps
            todo += deps
            if key in edges[spec.key] and not _ready_now(dep):
                waiting.append(f"{key} (not Ready at its current generation)")
        cycle = find_cycle(edges)
        if cycle:
            raise DependencyCycle(f"dependency cycle: {' -> '.join(cycle)}")
        if waiting:
            raise DependencyNotReady(f"waiting for {', '.join(sorted(waiting))}")

    @staticmethod
    def _check_sync(spec: SyncSpec, scope: TenantScope | None) -> None:
        """A tenant's Sync's own fields are checked first, before anything is read or fetched
        (docs/tenancy.md)."""
        if scope is not None:
            lockdown.raise_if(scope.tenant, spec.key, lockdown.check_sync(scope.tenant, spec, scope.owns),
                              "before fetching")

    def _source(self, spec: SyncSpec, scope: TenantScope | None) -> tuple[JSON, SourcePolicy | None]:
        """The GitSource and the policy to fetch it under: a tenant's URL is checked before any fetch,
        and fetched under a policy narrowed to the Tenant's (no file URLs without a file:// glob)."""
        source_obj = self.fetcher.get_source(spec.namespace, spec.source_name)
        if scope is None:
            return source_obj, None
        source = parse_source(source_obj)
        lockdown.raise_if(scope.tenant, spec.key, lockdown.check_url(
            scope.tenant, f"{source.namespace}/{source.name}", source.url), "before fetching")
        return source_obj, self.fetcher.tenant_policy(lockdown.file_urls_allowed(scope.tenant))

    def _check_rendered(self, spec: SyncSpec, scope: TenantScope, desired: list[JSON]) -> None:
        """Everything the tenant's Git renders against its Tenant, as a whole, before any write."""
        resources = self.resources()
        reader = self.kube.impersonating(self._impersonate(scope.tenant.applier))
        rbac_roles = resources.get("rbac.authorization.k8s.io/v1", "Role")

        def live_role(namespace: str, name: str) -> list[Any] | None:
            if rbac_roles is None or not scope.owns(namespace):
                return None
            found = reader.get(rbac_roles, name, namespace)
            return None if found is None else list(found.get("rules") or [])

        found = lockdown.check_objects(scope.tenant, desired, lambda av, k: bool(resources.namespaced(av, k)),
                                       scope.owns, live_role)
        lockdown.raise_if(scope.tenant, spec.key, found, "before applying")

    def _build(self, spec: SyncSpec, tree: Tree, run: _Run | None = None) -> list[JSON]:
        variables, secrets = self._variables(spec, run.scope if run else None)
        if run is not None:
            run.secrets = secrets + self.fetcher.secrets
        manifests = render(tree.path, spec.path, variables, strict=False, limits=self.fetcher.policy.limits,
                           secrets=secrets + self.fetcher.secrets)
        resources = self.resources(refresh=True)
        mf.check_known_kinds(manifests, resources.namespaced)
        scope = mf.with_crds(manifests, resources.namespaced)
        if spec.target_namespace:
            manifests = mf.apply_target_namespace(manifests, spec.target_namespace, _strict_scope(scope))
        manifests = mf.default_namespace(manifests, spec.namespace, _strict_scope(scope))
        mf.check_duplicates(manifests)  # again, now that namespaces are settled: `ns: x` and none are one object
        return [_stamped(m.obj, spec, tree.revision) for m in manifests]

    def _variables(self, spec: SyncSpec, scope: TenantScope | None) -> tuple[dict[str, str], tuple[str, ...]]:
        """The substitution values, and those of them that came from Secrets (masked in messages)."""
        values: dict[str, str] = {}
        secrets: list[str] = []
        applier = self.kube.impersonating(self._impersonate(self.identity(spec, scope)))
        for ref in spec.substitute_from:
            info = SECRETS if ref.kind == "Secret" else CONFIGMAPS
            try:
                obj = applier.get(info, ref.name, spec.namespace)
            except ApiError as err:
                raise BuildFailed(f"substituteFrom {ref.kind}/{ref.name}: {err}") from err
            if obj is None:
                if ref.optional:
                    continue
                raise BuildFailed(f"substituteFrom {ref.kind} {spec.namespace}/{ref.name} not found")
            data = _data_of(obj)
            values.update(data)
            if ref.kind == "Secret":
                secrets += data.values()
        values.update(spec.substitute)
        return values, tuple(secrets)

    def _wait(self, run: _Run, applier: Applier, desired: list[JSON]) -> None:
        spec = run.spec
        if spec.wait:
            refs = [ref_of(o) for o in desired]
        elif spec.health_checks:
            refs = [_health_ref(h, spec.namespace) for h in spec.health_checks]
        else:
            return

        def fetch(pending: Any) -> dict[IdentityKey, JSON]:
            kinds = {(r.api_version, r.kind) for r in pending}
            if spec.wait:
                return applier.live_objects(kinds)
            return self._get_each(applier, list(pending))

        try:
            wait_healthy(refs, fetch, spec.timeout)
        except GitOpsError:
            run.healthy = False
            raise
        run.healthy = True

    def _get_each(self, applier: Applier, refs: list[ObjectRef]) -> dict[IdentityKey, JSON]:
        out: dict[IdentityKey, JSON] = {}
        for ref in refs:
            info = applier.resources.get(ref.api_version, ref.kind)
            obj = applier.kube.get(info, ref.name, ref.namespace or None) if info else None
            if obj is not None:
                out[ref.key] = obj
        return out

    # ------------------------------------------------------------ identity and discovery

    def resources(self, refresh: bool = False) -> ResourceMap:
        if self._resources is None or refresh:
            self._resources = self.kube.discover()
        return self._resources

    def _impersonate(self, identity: str) -> str | None:
        if self._whoami is None:
            self._whoami = self._self_subject()
        return None if self._whoami == identity else identity

    @staticmethod
    def identity(spec: SyncSpec, scope: TenantScope | None) -> str:
        """The applier a Sync writes as: its Tenant's when one claims the namespace (docs/tenancy.md)."""
        return applier_of(spec, scope.tenant.applier if scope else None)

    def _self_subject(self) -> str:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            out = self.kube.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review)
        except ApiError:
            return ""
        return str(((out.get("status") or {}).get("userInfo") or {}).get("username") or "")

    def applier_for(self, spec: SyncSpec, scope: TenantScope | bool | None = True) -> Applier:
        """The Sync's Applier. `scope=True` (callers outside a run) looks the Tenant up; a tenant's
        applier reads per namespace (it may not list cluster-wide) and cluster kinds only if allowed."""
        if scope is True:
            scope = scope_for(self.kube, spec.namespace)
        tenant_scope = scope if isinstance(scope, TenantScope) else None
        kube = self.kube.impersonating(self._impersonate(self.identity(spec, tenant_scope)))
        namespaces = tenant_scope.namespaces if tenant_scope else None
        cluster_ok = None
        if tenant_scope is not None:
            tenant = tenant_scope.tenant

            def cluster_ok(info: ResourceInfo) -> bool:
                return tenant.kind(info.group, info.kind, namespaced=False).allowed

        return Applier(kube, self.resources(), spec.name, spec.namespace, concurrency=self.concurrency,
                       force=spec.force, tick=self.tick, namespaces=namespaces, cluster_ok=cluster_ok)

    # ------------------------------------------------------------ record

    def _record_success(self, run: _Run) -> SyncReport:
        counts = _counts(run.results)
        duration = self.clock() - run.started
        message = f"Applied revision: {run.revision}"
        waiting = [r for r in run.results if r.action is ObjectAction.WAITING]
        if waiting:
            message += (f"; {len(waiting)} pruned object(s) still being deleted: "
                        + "; ".join(r.message for r in waiting[:5]))
        entry = RunRecord.of(run.revision, run.started_at, duration, "ReconciliationSucceeded", counts,
                             message[:300] if waiting else "", **self._ran_by(run))
        outcome = Outcome(True, "ReconciliationSucceeded", message, generation_of(run.obj), run.revision,
                          applied=True, healthy=run.healthy, inventory=run.inventory or Inventory(), run=entry)
        self._write_status(run.obj, outcome)
        note = f"{message} ({_summary(counts)})"
        record.emit_event(self.kube, run.obj, warning=False, reason="ReconciliationSucceeded", note=note,
                          action="Reconcile")
        self._report_strangers(run)
        return SyncReport(run.spec.namespace, run.spec.name, run.revision, True, "ReconciliationSucceeded",
                          message, duration, (*run.results, *run.ignored), counts, steps=tuple(run.steps))

    def _record_failure(self, obj: JSON, run: _Run | None, err: GitOpsError, *, stalled: bool,
                        error: BaseException | None = None) -> SyncReport:
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        reason = err.reason
        message = mask(str(err), run.secrets) if run else str(err)
        duration = self.clock() - run.started if run else 0.0
        results = tuple(replace(r, message=mask(r.message, run.secrets))
                        for r in (*run.results, *run.ignored)) if run else ()
        counts = _counts(results)
        revision = run.revision if run else ""
        entry = RunRecord.of(revision, run.started_at, duration, reason, counts, message[:300],
                             **self._ran_by(run)) if run else None
        outcome = Outcome(False, reason, message, generation_of(obj), revision, stalled=stalled,
                          healthy=run.healthy if run else None, inventory=run.inventory if run else None, run=entry)
        try:
            self._write_status(obj, outcome)
        except GitOpsError as record_err:
            raise StatusNotRecorded(f"{message} (and the status could not be recorded: {record_err})") from err
        record.emit_event(self.kube, obj, warning=True, reason=reason, note=message, action="Reconcile")
        if run is not None:
            self._report_strangers(run)
        return SyncReport(ns, name, revision, False, reason, message, duration, results, counts, error,
                          tuple(run.steps) if run else ())

    def _ran_by(self, run: _Run) -> dict[str, Any]:
        """Who ran it and whether it applied a pin: the history's `by` and `pinned` (core/history.py)."""
        if self._whoami is None:
            self._whoami = self._self_subject()
        return {"by": self._whoami, "pinned": bool(run.spec.revision)}

    def _report_strangers(self, run: _Run) -> None:
        """A Warning Event naming the labelled strangers (the run's results list them all)."""
        if not run.ignored:
            return
        names = ", ".join(r.ref.display for r in run.ignored[:10])
        more = f" and {len(run.ignored) - 10} more" if len(run.ignored) > 10 else ""
        note = (f"{len(run.ignored)} object(s) carry this Sync's labels but are neither in its inventory "
                f"nor in Git; ignored (never pruned): {names}{more}")
        record.emit_event(self.kube, run.obj, warning=True, reason="ForeignObjectsIgnored", note=note,
                          action="Reconcile")

    # ------------------------------------------------------------ status writes (optimistic concurrency)

    def _write_inventory(self, run: _Run, inventory: Inventory) -> None:
        """Record `inventory` ahead of the writes (merged with a concurrent run's, if any)."""
        run.obj, run.inventory = self._write_status(run.obj, None, inventory)

    def _write_status(self, obj: JSON, outcome: Outcome | None, inventory: Inventory | None = None,
                      attempts: int = 8) -> tuple[JSON, Inventory | None]:
        """The one writer of a Sync's status: the outcome's status (core.status.build_status), or with
        no outcome just `inventory` (written ahead). A merge patch on the status subresource with
        the resourceVersion we read as a precondition; on a conflict (another run, or anyone, wrote
        the Sync since) read it again and retry, the inventory the union of ours and the one now
        recorded: two runs never drop each other's objects. Returns the Sync as written and the
        inventory recorded."""
        meta = obj.get("metadata") or {}
        ns, name = str(meta.get("namespace")), str(meta.get("name"))
        if outcome is not None:
            inventory = outcome.inventory
        current = obj
        for _ in range(attempts):
            if outcome is not None:
                body = build_status(_status_of(current), replace(outcome, inventory=inventory), self.now())
            else:
                body = inventory_status(inventory or Inventory())
            patch: JSON = {"status": body}
            version = (current.get("metadata") or {}).get("resourceVersion")
            if version:
                patch["metadata"] = {"resourceVersion": version}
            try:
                out = self.kube.merge_patch(record.SYNCS, name, ns, patch, subresource="status")
            except ApiError as err:
                if err.status != 409:
                    raise
                current = self.get_sync(ns, name)
                if inventory is not None:
                    # What the other writer recorded, as far as it can be read: an entry we can't
                    # read we could never have pruned either.
                    inventory = union(inventory, salvage(_status_of(current).get("inventory")))
                continue
            return out, inventory
        raise GitOpsError(f"Sync {ns}/{name}: the status changed under every one of {attempts} attempts to record it")


# ---------------------------------------------------------------- small pure helpers

def _status_of(obj: JSON) -> Mapping[str, Any]:
    """`status`, or {} when there is none or it is not an object (a damaged status is not a crash)."""
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def _conds(obj: JSON) -> list[JSON]:
    return readable_conditions(_status_of(obj).get("conditions"))


def _last_applied(obj: JSON) -> str:
    return str(_status_of(obj).get("lastAppliedRevision") or "")


def _ready_now(dep: JSON) -> bool:
    status = _status_of(dep)
    return (is_true(readable_conditions(status.get("conditions")), "Ready")
            and status.get("observedGeneration") == generation_of(dep))


def _strict_scope(scope: Callable[[str, str], bool | None]) -> Callable[[str, str], bool]:
    return lambda api_version, kind: bool(scope(api_version, kind))


def _data_of(obj: JSON) -> dict[str, str]:
    if obj.get("kind") == "Secret":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    return {str(k): str(v) for k, v in (obj.get("data") or {}).items()}


def _health_ref(check: Any, namespace: str) -> ObjectRef:
    group, _, version = str(check.get("apiVersion", "v1")).rpartition("/")
    return ObjectRef(group, version, str(check.get("kind")), str(check.get("namespace") or namespace),
                     str(check.get("name")))


def _counts(results: Any) -> dict[str, int]:
    return count_results(r.action for r in results if r.action.counted)


STRANGER = "carries this Sync's labels but is neither in its inventory nor in Git: ignored, never pruned"


class StatusNotRecorded(GitOpsError):
    """The run's outcome could not be written to the Sync (raised: nothing else can say it)."""


def unexpected(err: BaseException, step: Step | None = None) -> ReconcileError:
    """An unforeseen failure as a recorded reason: what it was and in which step, never a traceback."""
    if isinstance(err, RecursionError):
        what = "an object nested too deeply to process"
    else:
        what = f"unexpected {type(err).__name__}"
    if step is not None:
        what += f" during {step.value}"
    text = str(err).splitlines()[0][:300] if str(err) else ""
    return ReconcileError(f"{what}{': ' + text if text else ''} (a bug: please report it; "
                          f"`kubectl gitops --debug sync` shows where)")


def read_inventory(namespace: str, name: str, recorded: Any) -> Inventory:
    """`status.inventory`, or InventoryCorrupt with the repair (never a bare ValueError)."""
    try:
        return Inventory.from_status(recorded)
    except ValueError as err:
        raise InventoryCorrupt(
            f"Sync {namespace}/{name}: status.inventory cannot be read ({err}); nothing was applied or "
            f"pruned. Repair: `kubectl gitops sync {name} -n {namespace} --reset-inventory` rebuilds it "
            f"from the objects that carry this Sync's labels and were applied by {FIELD_MANAGER}"
        ) from err


def _stamped(obj: JSON, spec: SyncSpec, revision: str) -> JSON:
    try:
        return stamp(obj, spec.name, spec.namespace, revision)
    except RecursionError as err:
        raise BuildFailed(f"{ref_of(obj).display}: nested too deeply to process") from err


def _stranger_ref(key: IdentityKey, obj: JSON) -> ObjectRef:
    try:
        return ref_of(obj)
    except ValueError:
        group, kind, namespace, name = key
        return ObjectRef(group, "", kind, namespace, name)


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing to do"


