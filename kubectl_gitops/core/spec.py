"""Typed views of GitSource and Sync objects, with Flux's defaults, parsed purely.

The engine reads specs through these frozen dataclasses only, so defaults (interval, timeout,
prune, driftGuard) live in one place and a malformed spec is a clear error naming the field.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubectl_gitops.constants import DEFAULT_APPLIER_SA, SYSTEM_NAMESPACE
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.history import pin_sha

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

if typing.TYPE_CHECKING:
    from kubectl_gitops.core.helm import ChartSpec


class InvalidSpec(GitOpsError):
    reason = "InvalidSpec"


def parse_duration(text: str | None, default: float, where: str = "duration") -> float:
    """Go-style durations as Flux users write them: '1m', '90s', '1h30m', '500ms'."""
    if text is None or text == "":
        return default
    text = str(text).strip()
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise InvalidSpec(f"{where}: {text!r} is not a duration (use e.g. 30s, 5m, 1h)")
    return total


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds % 1 else f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs}s" if secs else f"{minutes}m"


@dataclass(frozen=True)
class Ref:
    branch: str = ""
    tag: str = ""
    semver: str = ""
    commit: str = ""

    def describe(self) -> str:
        if self.commit:
            return f"commit {self.commit[:12]}"
        if self.semver:
            return f"semver {self.semver}"
        if self.tag:
            return f"tag {self.tag}"
        return f"branch {self.branch or 'main'}"


@dataclass(frozen=True)
class SourceSpec:
    name: str
    namespace: str
    url: str
    ref: Ref
    interval: float
    timeout: float
    secret_name: str = ""
    ignore: str = ""
    suspend: bool = False
    insecure: bool = False
    """Allow credentials over plain http:// (Flux's `.spec.insecure` naming, RFC-0004); warned about."""
    verify: Verify | None = None
    """spec.verify: check commit (or tag) signatures against a TrustPolicy before anything is built."""


@dataclass(frozen=True)
class Verify:
    """GitSource spec.verify: `mode` HEAD (the resolved commit), Tag (the annotated tag object) or All
    (every commit since the last verified revision); `trust_policy` names the cluster TrustPolicy."""

    mode: str
    trust_policy: str


@dataclass(frozen=True)
class DependsOn:
    name: str
    namespace: str


@dataclass(frozen=True)
class SubstituteFrom:
    kind: str
    name: str
    optional: bool = False


@dataclass(frozen=True)
class SyncSpec:
    name: str
    namespace: str
    generation: int
    source_name: str
    path: str
    prune: bool
    interval: float
    retry_interval: float
    timeout: float
    depends_on: tuple[DependsOn, ...] = ()
    target_namespace: str = ""
    service_account: str = ""
    wait: bool = False
    health_checks: tuple[Mapping[str, str], ...] = ()
    substitute: Mapping[str, str] = field(default_factory=dict)
    substitute_from: tuple[SubstituteFrom, ...] = ()
    suspend: bool = False
    force: bool = False
    source_kind: str = "GitSource"
    """sourceRef.kind: GitSource, or HelmRepository for a chart (docs/helm.md)."""
    chart: ChartSpec | None = None
    """spec.chart: render a Helm chart instead of a kustomization (core/helm.py, docs/helm.md)."""
    drift_guard: str = "enforce"
    source_namespace: str = ""
    """sourceRef.namespace as written (the engine reads GitSources in the Sync's namespace only)."""
    revision: str = ""
    """spec.revision: a rollback pin (core/history.py); "" tracks the GitSource's ref."""
    deletion_policy: str = "Delete"
    """What the controller's finalizer does when the Sync is deleted: Delete (prune what it owns) or Orphan."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def applier(self) -> str:
        """The identity every write of this Sync is made as (docs/webhook.md, "Who can act as an applier"), for a
        Sync in a namespace no Tenant claims. In a tenant's namespace the name must be the Tenant's
        applier and the namespace comes from the Tenant: see `applier_of` and docs/tenancy.md."""
        if self.service_account:
            return f"system:serviceaccount:{self.namespace}:{self.service_account}"
        return f"system:serviceaccount:{SYSTEM_NAMESPACE}:{DEFAULT_APPLIER_SA}"


def _meta(obj: Mapping[str, Any]) -> tuple[str, str, int]:
    meta = obj.get("metadata") or {}
    return str(meta.get("name", "")), str(meta.get("namespace", "")), int(meta.get("generation") or 0)


def parse_source(obj: Mapping[str, Any]) -> SourceSpec:
    name, namespace, _ = _meta(obj)
    spec = obj.get("spec") or {}
    url = str(spec.get("url") or "")
    if not url:
        raise InvalidSpec(f"GitSource {namespace}/{name}: spec.url is required")
    ref = spec.get("ref") or {}
    where = f"GitSource {namespace}/{name}"
    return SourceSpec(
        name, namespace, url,
        Ref(str(ref.get("branch") or ""), str(ref.get("tag") or ""), str(ref.get("semver") or ""),
            str(ref.get("commit") or "")),
        parse_duration(spec.get("interval"), 60.0, f"{where}: spec.interval"),
        parse_duration(spec.get("timeout"), 60.0, f"{where}: spec.timeout"),
        str((spec.get("secretRef") or {}).get("name") or ""),
        str(spec.get("ignore") or ""),
        bool(spec.get("suspend", False)),
        bool(spec.get("insecure", False)),
        _verify(spec.get("verify"), where),
    )


VERIFY_MODES = ("HEAD", "Tag", "All")


def _verify(raw: Any, where: str) -> Verify | None:
    if not raw:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{where}: spec.verify must be an object")
    mode = str(raw.get("mode") or "HEAD")
    if mode not in VERIFY_MODES:
        raise InvalidSpec(f"{where}: spec.verify.mode must be one of {', '.join(VERIFY_MODES)}, not {mode!r}")
    policy = str(raw.get("trustPolicy") or "")
    if not policy:
        raise InvalidSpec(f"{where}: spec.verify.trustPolicy is required (the TrustPolicy that holds the keys)")
    return Verify(mode, policy)


DELETION_POLICIES = ("Delete", "Orphan")


def _chart_fields(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """sourceRef.kind and spec.chart (parsed by core/helm.py; imported here to avoid a cycle)."""
    from kubectl_gitops.core.helm import KIND_HELM_REPOSITORY, parse_chart

    kind = str((spec.get("sourceRef") or {}).get("kind") or "GitSource")
    if kind not in ("GitSource", KIND_HELM_REPOSITORY):
        raise InvalidSpec(f"{where}: spec.sourceRef.kind must be GitSource or {KIND_HELM_REPOSITORY}, not {kind!r}")
    chart = parse_chart(spec.get("chart"), where)
    if kind == KIND_HELM_REPOSITORY and (chart is None or not chart.name):
        raise InvalidSpec(f"{where}: a HelmRepository source needs spec.chart.name (the chart to install)")
    return {"source_kind": kind, "chart": chart}


def parse_sync(obj: Mapping[str, Any]) -> SyncSpec:
    name, namespace, generation = _meta(obj)
    spec = obj.get("spec") or {}
    where = f"Sync {namespace}/{name}"
    source = str((spec.get("sourceRef") or {}).get("name") or "")
    if not source:
        raise InvalidSpec(f"{where}: spec.sourceRef.name is required")
    interval = parse_duration(spec.get("interval"), 600.0, f"{where}: spec.interval")
    guard = str(spec.get("driftGuard") or "enforce")
    if guard not in ("enforce", "warn", "off"):
        raise InvalidSpec(f"{where}: spec.driftGuard must be enforce, warn or off, not {guard!r}")
    policy = str(spec.get("deletionPolicy") or "Delete")
    if policy not in DELETION_POLICIES:
        raise InvalidSpec(f"{where}: spec.deletionPolicy must be Delete or Orphan, not {policy!r}")
    return SyncSpec(
        name=name, namespace=namespace, generation=generation, source_name=source,
        path=str(spec.get("path") or "./"), prune=bool(spec.get("prune", False)), interval=interval,
        retry_interval=parse_duration(spec.get("retryInterval"), interval, f"{where}: spec.retryInterval"),
        timeout=parse_duration(spec.get("timeout"), 300.0, f"{where}: spec.timeout"),
        **_chart_fields(spec, where),
        depends_on=tuple(DependsOn(str(d.get("name")), str(d.get("namespace") or namespace))
                         for d in spec.get("dependsOn") or []),
        target_namespace=str(spec.get("targetNamespace") or ""),
        service_account=str(spec.get("serviceAccountName") or ""),
        wait=bool(spec.get("wait", False)),
        health_checks=tuple({k: str(v) for k, v in hc.items()} for hc in spec.get("healthChecks") or []),
        substitute={str(k): str(v) for k, v in (spec.get("substitute") or {}).items()},
        substitute_from=tuple(SubstituteFrom(str(s.get("kind", "ConfigMap")), str(s.get("name", "")),
                                             bool(s.get("optional", False)))
                              for s in spec.get("substituteFrom") or []),
        suspend=bool(spec.get("suspend", False)), force=bool(spec.get("force", False)), drift_guard=guard,
        source_namespace=str((spec.get("sourceRef") or {}).get("namespace") or ""),
        revision=_pin(spec.get("revision"), where),
        deletion_policy=policy,
    )


def _pin(raw: Any, where: str) -> str:
    """spec.revision, checked: it must name one commit (docs/cli.md, rollback)."""
    if not raw:
        return ""
    try:
        pin_sha(str(raw))
    except ValueError as err:
        raise InvalidSpec(f"{where}: spec.revision: {err}") from None
    return str(raw).strip()


def applier_of(spec: SyncSpec, tenant_applier: str | None) -> str:
    """Who a Sync applies as: its Tenant's applier when a Tenant claims its namespace (the engine
    has checked that serviceAccountName names it), else the Sync's own (`SyncSpec.applier`)."""
    return tenant_applier or spec.applier
