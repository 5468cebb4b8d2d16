"""Read the cluster for an audit and run the rules (core/audit) over it; write the reports.

`run_audit(kube, scope)` is the whole audit, for `kubectl gitops audit` and for a controller that
runs it on an interval (the result carries counts by rule and by severity for its metrics).

Reading is bounded in time and memory whatever the cluster's size:
* the small collections every rule may consult (Tenants, Syncs, GitSources, Namespaces, RBAC, our
  webhook configurations) are listed first, in parallel, into an `AuditContext`;
* then every other listable kind is read with paginated list calls (`limit`/`continue`), kinds in
  parallel on a few threads, and each page goes through the object rules and is dropped: at most
  one page per thread is held, plus the findings;
* kinds nobody's Git holds and no rule looks at (Events, Leases, Endpoints, EndpointSlices,
  ControllerRevisions) are not read at all.

A kind that can't be read (forbidden, an aggregated API that is down) does not stop the audit: it is
named in `AuditResult.errors`, and the exit code says the audit is incomplete.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final, cast

import yaml

from kubectl_gitops.adapters.keys import verify_manifest
from kubectl_gitops.adapters.kube import ApiError, Kube, object_path
from kubectl_gitops.constants import (
    GROUP,
    KIND_SOURCE,
    KIND_SYNC,
    KIND_TENANT,
    KIND_TRUST_POLICY,
    LABEL_SYNC,
    VERSION,
)
from kubectl_gitops.core.audit import registry
from kubectl_gitops.core.audit.context import DEFAULT_MAX_SUSPENDED, AuditContext, Facts, Scope
from kubectl_gitops.core.audit.model import AuditResult, Finding, Rule
from kubectl_gitops.core.audit.render import (
    KIND_CLUSTER_REPORT,
    KIND_REPORT,
    PLURAL_CLUSTER_REPORT,
    PLURAL_REPORT,
    REPORT_LABEL,
    reports,
)
from kubectl_gitops.core.checks import CheckResult
from kubectl_gitops.core.discovery import DISCOVERY_ACCEPT, ResourceInfo, parse_aggregated
from kubectl_gitops.core.errors import GitOpsError

JSON = dict[str, Any]
WebhookProbe = Callable[[Kube], Sequence[CheckResult]]
PAGE: Final = 500
WORKERS: Final = 8
ADMISSION = "admissionregistration.k8s.io"
RBAC = "rbac.authorization.k8s.io"
NOT_READ: Final = frozenset({("", "Event"), ("events.k8s.io", "Event"), ("coordination.k8s.io", "Lease"),
                             ("", "Endpoints"), ("discovery.k8s.io", "EndpointSlice"),
                             ("apps", "ControllerRevision"), ("", "ComponentStatus")})
FIELD_MANAGER_AUDIT: Final = "kubectl-gitops-audit"

# The collections the context holds as a whole: (group, kind) -> how to reach them.
CONTEXT_KINDS: Final = {
    "tenants": ResourceInfo(GROUP, VERSION, KIND_TENANT, "tenants", False),
    "syncs": ResourceInfo(GROUP, VERSION, KIND_SYNC, "syncs", True),
    "sources": ResourceInfo(GROUP, VERSION, KIND_SOURCE, "gitsources", True),
    "namespaces": ResourceInfo("", "v1", "Namespace", "namespaces", False),
    "cluster_roles": ResourceInfo(RBAC, "v1", "ClusterRole", "clusterroles", False),
    "roles": ResourceInfo(RBAC, "v1", "Role", "roles", True),
    "cluster_role_bindings": ResourceInfo(RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", False),
    "role_bindings": ResourceInfo(RBAC, "v1", "RoleBinding", "rolebindings", True),
    "validating": ResourceInfo(ADMISSION, "v1", "ValidatingWebhookConfiguration",
                               "validatingwebhookconfigurations", False),
    "mutating": ResourceInfo(ADMISSION, "v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False),
    "trust_policies": ResourceInfo(GROUP, VERSION, KIND_TRUST_POLICY, "trustpolicies", False),
}
REPORT: Final = ResourceInfo(GROUP, VERSION, KIND_REPORT, PLURAL_REPORT, True)
CLUSTER_REPORT: Final = ResourceInfo(GROUP, VERSION, KIND_CLUSTER_REPORT, PLURAL_CLUSTER_REPORT, False)


class AuditFailed(GitOpsError):
    """The audit could not run at all (exit code 2: not a finding, an error)."""

    reason = "AuditFailed"
    exit_code = 2


@dataclass
class _Tally:
    """Findings and counts gathered by the reader threads."""

    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    objects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, found: list[Finding], objects: int) -> None:
        with self.lock:
            self.findings += found
            self.objects += objects

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


EVERYTHING: Final = Scope()


def run_audit(kube: Kube, scope: Scope = EVERYTHING, *, rules: Sequence[Rule] = registry.RULES,
              now: dt.datetime | None = None, max_suspended: dt.timedelta = DEFAULT_MAX_SUSPENDED,
              webhook_probe: WebhookProbe | None = None, workers: int = WORKERS, page: int = PAGE) -> AuditResult:
    """Audit the cluster behind `kube` within `scope`.

    `webhook_probe`: `kubectl gitops check`'s webhook checks (cli/check_webhook.webhook_checks), run
    only for a cluster-wide scope; without it the webhook is judged by its configurations alone."""
    now = now or dt.datetime.now(dt.UTC)
    tally = _Tally()
    try:
        served = [i for i in _listable(_discover(kube)) if (i.group, i.kind) not in NOT_READ]
    except GitOpsError as err:
        raise AuditFailed(f"audit: could not discover the API server's kinds: {err}") from err
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="audit") as pool:
        # The probe talks to the webhook (and makes the API server call it): it runs meanwhile.
        probing = pool.submit(webhook_probe, kube) if webhook_probe is not None and scope.cluster_wide else None
        lists = dict(zip(CONTEXT_KINDS, pool.map(lambda i: _list_all(kube, i, tally), CONTEXT_KINDS.values()),
                         strict=True))
        ctx = AuditContext.build(_facts(lists, None, served), scope, now=now, max_suspended=max_suspended,
                                 verify=verify_manifest)
        held = {(i.group, i.kind) for i in CONTEXT_KINDS.values()}
        for name, items in lists.items():
            if name not in ("validating", "mutating"):
                tally.add([f for obj in items for f in registry.run_object(obj, ctx, rules)], _in_scope(items, ctx))
        streamed = [i for i in served if (i.group, i.kind) not in held]
        list(pool.map(lambda i: _audit_kind(kube, i, ctx, rules, tally, page), streamed))
        if probing is not None:
            ctx = dataclasses.replace(ctx, facts=dataclasses.replace(ctx.facts, webhook_probe=_probed(probing, tally)))
    findings = tally.findings + registry.run_cluster(ctx, rules)
    return AuditResult.of(findings, rules, tally.objects, tally.errors)


def _probed(probing: Future[Sequence[CheckResult]], tally: _Tally) -> tuple[CheckResult, ...] | None:
    """The probe's results; a probe that broke leaves the audit incomplete (and says why)."""
    try:
        return tuple(probing.result())
    except Exception as err:
        tally.error(f"webhook probe: {type(err).__name__}: {err}")
        return None


def _in_scope(items: Sequence[JSON], ctx: AuditContext) -> int:
    return sum(1 for obj in items if ctx.in_scope(obj))


def _discover(kube: Kube) -> list[ResourceInfo]:
    infos: list[ResourceInfo] = []
    for path in ("/api", "/apis"):
        infos += parse_aggregated(kube.request("GET", path, accept=DISCOVERY_ACCEPT))
    return infos


def _listable(resources: Sequence[ResourceInfo]) -> list[ResourceInfo]:
    """One version of each served kind that can be listed (the preferred one comes first)."""
    seen: dict[tuple[str, str], ResourceInfo] = {}
    for info in resources:
        if "list" in info.verbs and "/" not in info.plural:
            seen.setdefault((info.group, info.kind), info)
    return sorted(seen.values(), key=lambda i: (i.group, i.kind))


def _facts(lists: dict[str, list[JSON]], probe: Sequence[CheckResult] | None,
           served: Sequence[ResourceInfo]) -> Facts:
    """The context's facts (the probe's results are added once it has answered)."""
    shipped = shipped_webhooks()
    names = {str((c.get("metadata") or {}).get("name")) for c in shipped}
    ours = [c for c in lists["validating"] + lists["mutating"] if (c.get("metadata") or {}).get("name") in names]
    return Facts(tenants=lists["tenants"], syncs=lists["syncs"], sources=lists["sources"],
                 namespaces=lists["namespaces"], cluster_roles=lists["cluster_roles"], roles=lists["roles"],
                 cluster_role_bindings=lists["cluster_role_bindings"], role_bindings=lists["role_bindings"],
                 webhook_configurations=ours, shipped_webhooks=shipped,
                 webhook_probe=tuple(probe) if probe is not None else None, trust_policies=lists["trust_policies"],
                 plurals={(i.group, i.kind): i.plural for i in [*served, *CONTEXT_KINDS.values()]})


def shipped_webhooks() -> list[JSON]:
    """The webhook configurations `install` ships (manifests/install/webhook-configurations.yaml)."""
    from kubectl_gitops.engine.install import manifests_dir

    path = manifests_dir() / "install" / "webhook-configurations.yaml"
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as err:
        raise AuditFailed(f"audit: cannot read the shipped webhook configurations at {path}: {err}") from err
    return [d for d in docs if isinstance(d, dict) and d.get("kind", "").endswith("WebhookConfiguration")]


# ------------------------------------------------------------------ reading


def pages(kube: Kube, info: ResourceInfo, *, namespace: str | None = None, label_selector: str = "",
          page: int = PAGE) -> Iterator[list[JSON]]:
    """The objects of one kind, a page at a time (limit/continue), apiVersion and kind filled in."""
    path = object_path(info.api_version, info.plural, namespace if info.namespaced else None)
    query = {"limit": str(page)}
    if label_selector:
        query["labelSelector"] = label_selector
    while True:
        out = kube.request("GET", path, query=query)
        items = out.get("items") or []
        for item in items:
            item.setdefault("apiVersion", info.api_version)
            item.setdefault("kind", info.kind)
        yield items
        token = (out.get("metadata") or {}).get("continue")
        if not token:
            return
        query["continue"] = str(token)


_DONE: Final = object()


class _Handoff:
    """One slot between a fetcher thread and its consumer; `stop` ends the fetcher's wait."""

    def __init__(self) -> None:
        self.slot: queue.Queue[object] = queue.Queue(maxsize=1)
        self.stop = threading.Event()

    def put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.slot.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def fetch(self, source: Iterator[list[JSON]]) -> None:
        try:
            for item in source:
                if not self.put(item):
                    return
        except BaseException as err:  # handed to the consumer, raised there
            self.put(err)
            return
        self.put(_DONE)


def prefetched(source: Iterator[list[JSON]]) -> Iterator[list[JSON]]:
    """`source`'s pages, the next one fetched while the current one is judged (one page ahead:
    the API server encodes while we decode and judge). Errors surface where the page would; a
    consumer that stops early stops the fetcher too (no thread or page left behind)."""
    handoff = _Handoff()
    threading.Thread(target=handoff.fetch, args=(source,), name="audit-prefetch", daemon=True).start()
    try:
        while (item := handoff.slot.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield cast(list[JSON], item)
    finally:
        handoff.stop.set()


def _list_all(kube: Kube, info: ResourceInfo, tally: _Tally) -> list[JSON]:
    try:
        return [obj for items in pages(kube, info) for obj in items]
    except ApiError as err:
        if err.status == 404 and info.group == GROUP:
            return []  # our CRDs are not installed: nothing of ours to audit
        tally.error(f"{_kind(info)}: {err}")
    except GitOpsError as err:
        tally.error(f"{_kind(info)}: {err}")
    return []


def _audit_kind(kube: Kube, info: ResourceInfo, ctx: AuditContext, rules: Sequence[Rule], tally: _Tally,
                page: int) -> None:
    scope = ctx.scope
    if not info.namespaced and not scope.cluster_wide and not scope.sync:
        return
    selector = f"{LABEL_SYNC}={scope.sync}" if scope.sync else ""
    # A Sync's objects may be anywhere (targetNamespace): its label finds them, in every namespace.
    targets: list[str | None] = [None]
    if scope.namespaces is not None and info.namespaced and not scope.sync:
        targets = list(sorted(scope.namespaces))
    try:
        for namespace in targets:
            for items in prefetched(pages(kube, info, namespace=namespace, label_selector=selector, page=page)):
                tally.add([f for obj in items for f in registry.run_object(obj, ctx, rules)], _in_scope(items, ctx))
    except ApiError as err:
        if err.status in (404, 405):
            return  # gone since discovery, or not really listable
        tally.error(f"{_kind(info)}: {err}")
    except GitOpsError as err:
        tally.error(f"{_kind(info)}: {err}")


def _kind(info: ResourceInfo) -> str:
    return f"{info.plural}.{info.group}" if info.group else info.plural


# ------------------------------------------------------------------ reports


def write_reports(kube: Kube, result: AuditResult, scope: Scope, *, now: dt.datetime | None = None) -> int:
    """Replace the AuditReports of this scope with `result`'s; returns how many were written.

    One per namespace with findings and one cluster-wide (only for a cluster-wide scope); reports
    of namespaces in scope that have no findings any more are deleted."""
    cluster, per_namespace = reports(result, scope.describe(), now=now or dt.datetime.now(dt.UTC))
    written = 0
    try:
        if scope.cluster_wide:
            kube.apply(CLUSTER_REPORT, cluster, field_manager=FIELD_MANAGER_AUDIT)
            written += 1
        keep = set()
        for report in per_namespace:
            kube.apply(REPORT, report, field_manager=FIELD_MANAGER_AUDIT)
            keep.add(report["metadata"]["namespace"])
            written += 1
        for items in pages(kube, REPORT, label_selector=f"{REPORT_LABEL}=kubectl-gitops"):
            for old in items:
                meta = old.get("metadata") or {}
                namespace = str(meta.get("namespace") or "")
                if namespace not in keep and scope.namespace(namespace) and not scope.sync:
                    kube.delete(REPORT, str(meta.get("name")), namespace)
    except ApiError as err:
        if err.status == 404:
            raise AuditFailed("audit --report: the AuditReport kinds are not installed (kubectl gitops install "
                              f"adds them): {err}") from err
        raise AuditFailed(f"audit --report: could not write the reports: {err}") from err
    return written
