"""Audit rules over the cluster's facts as a whole: Syncs, and the webhook that guards them (pure).

* `sync/stalled`, `sync/not-ready`, `sync/suspended`: a Sync's conditions as the engine records
  them (`core.status`); a suspension is dated by the managedFields entry that last wrote
  `spec.suspend` (the API server's clock), so no extra bookkeeping is needed.
* `webhook/*`: the configurations against what `install` ships (present, entries, which
  namespaces and objects they skip, failurePolicy), with `core.checks.configurations`; and the
  results `kubectl gitops check` gets by talking to the webhook (caBundle signing the serving
  certificate, expiry within 30 days, the endpoint answering, callers authenticated), each
  turned into a finding when it is not OK.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

from kubectl_gitops.core.audit.context import AuditContext, meta, name_of, namespace_of
from kubectl_gitops.core.audit.model import CLUSTER, Finding, Rule, Severity, ref_of
from kubectl_gitops.core.audit.object_rules import parse_time
from kubectl_gitops.core.checks import CLIENT_AUTH, CheckResult, Outcome, configurations
from kubectl_gitops.core.install import FAIL_CLOSED_ENTRIES, select
from kubectl_gitops.core.objects import ObjectRef
from kubectl_gitops.core.status import find_condition

PROBE_RULES: Final = {
    "webhook caBundle": "webhook/ca-bundle",
    "webhook certificate": "webhook/certificate",
    "webhook endpoint": "webhook/endpoint",
    CLIENT_AUTH: "webhook/client-auth",
}
"""`kubectl gitops check` result name -> the audit rule it feeds."""
SELECTORS: Final = ("namespaceSelector", "objectSelector", "matchConditions", "rules")


# ------------------------------------------------------------------ sync/*


def _syncs(ctx: AuditContext) -> Iterator[Mapping[str, Any]]:
    for sync in ctx.facts.syncs:
        if not ctx.scope.namespace(namespace_of(sync)):
            continue
        if ctx.scope.sync and name_of(sync) != ctx.scope.sync:
            continue
        yield sync


def _suspended(sync: Mapping[str, Any]) -> bool:
    spec = sync.get("spec")
    return isinstance(spec, Mapping) and spec.get("suspend") is True


def sync_stalled(rule: Rule, ctx: AuditContext) -> Iterator[Finding]:
    for sync in _syncs(ctx):
        stalled = find_condition(_conditions(sync), "Stalled")
        if stalled is not None and stalled.get("status") == "True":
            yield rule.finding(ref_of(sync), f"Stalled: {stalled.get('reason') or 'Unknown'}: "
                                             f"{_one_line(stalled.get('message'))}", _retry(sync))


def sync_not_ready(rule: Rule, ctx: AuditContext) -> Iterator[Finding]:
    for sync in _syncs(ctx):
        conditions = _conditions(sync)
        stalled = find_condition(conditions, "Stalled")
        if _suspended(sync) or (stalled is not None and stalled.get("status") == "True"):
            continue  # reported by sync/suspended or sync/stalled
        ready = find_condition(conditions, "Ready")
        if ready is None:
            yield rule.finding(ref_of(sync), "never reconciled (no Ready condition)", _retry(sync))
        elif ready.get("status") != "True":
            yield rule.finding(ref_of(sync), f"Ready is {ready.get('status')}: {ready.get('reason') or 'Unknown'}: "
                                             f"{_one_line(ready.get('message'))}", _retry(sync))


def sync_suspended(rule: Rule, ctx: AuditContext) -> Iterator[Finding]:
    for sync in _syncs(ctx):
        if not _suspended(sync):
            continue
        since = suspended_since(sync)
        if since is not None and ctx.now - since <= ctx.max_suspended:
            continue
        how_long = f"since {since.strftime('%Y-%m-%dT%H:%M:%SZ')}" if since else "since an unknown time"
        yield rule.finding(ref_of(sync), f"suspended {how_long} (longer than {_duration(ctx.max_suspended)}): "
                                         "nothing is reconciled and the drift guard lets every edit through",
                           f"kubectl gitops resume sync {name_of(sync)} -n {namespace_of(sync)}")


def suspended_since(sync: Mapping[str, Any]) -> dt.datetime | None:
    """When `spec.suspend` was last written: the newest managedFields entry owning it."""
    times = []
    for entry in meta(sync).get("managedFields") or []:
        fields = entry.get("fieldsV1") if isinstance(entry, Mapping) else None
        spec = fields.get("f:spec") if isinstance(fields, Mapping) else None
        if isinstance(spec, Mapping) and "f:suspend" in spec:
            moment = parse_time(entry.get("time"))
            if moment is not None:
                times.append(moment)
    return max(times) if times else parse_time(meta(sync).get("creationTimestamp"))


def _conditions(sync: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = sync.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    return [c for c in conditions if isinstance(c, Mapping)] if isinstance(conditions, list) else []


def _retry(sync: Mapping[str, Any]) -> str:
    return (f"Read why (kubectl gitops get syncs -n {namespace_of(sync)} -o wide), fix it in Git or the cluster, "
            f"then kubectl gitops sync {name_of(sync)} -n {namespace_of(sync)}")


def _one_line(value: object) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= 300 else text[:299] + "…"


def _duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0 and seconds:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


# ------------------------------------------------------------------ webhook/*


def _config_ref(config: Mapping[str, Any]) -> ObjectRef:
    return ObjectRef("admissionregistration.k8s.io", "v1", str(config.get("kind") or ""), "", name_of(config))


def _live(ctx: AuditContext) -> dict[str, Mapping[str, Any]]:
    return {name_of(c): c for c in ctx.facts.webhook_configurations}


def _installed(ctx: AuditContext) -> bool:
    """Whether any of our configurations is there (none: installed with --no-webhook, nothing to judge)."""
    return any(name_of(c) in _live(ctx) for c in ctx.facts.shipped_webhooks)


def webhook_configuration(rule: Rule, ctx: AuditContext) -> Iterator[Finding]:
    if not ctx.scope.cluster_wide or not ctx.facts.shipped_webhooks:
        return
    live = _live(ctx)
    result = configurations({name_of(c): name_of(c) in live for c in ctx.facts.shipped_webhooks})
    if result.outcome is not Outcome.OK:
        yield rule.finding(CLUSTER, f"webhook: {result.detail}", "kubectl gitops install",
                           severity=Severity.ERROR if result.outcome is Outcome.FAILED else Severity.WARNING)
    for shipped in ctx.facts.shipped_webhooks:
        config = live.get(name_of(shipped))
        if config is None:
            continue
        names = {str(h.get("name")) for h in config.get("webhooks") or [] if isinstance(h, Mapping)}
        missing = sorted(str(h.get("name")) for h in shipped.get("webhooks") or [] if h.get("name") not in names)
        if missing:
            yield rule.finding(_config_ref(config), f"entries missing: {', '.join(missing)}: requests they judge "
                                                    "pass unjudged", "kubectl gitops install")


def webhook_exclusions(rule: Rule, ctx: AuditContext) -> Iterator[Finding]:
    """Entries that skip more than install ships: namespaces, objects, conditions or resources."""
    if not ctx.scope.cluster_wide:
        return
    live = _live(ctx)
    closed = {str(h.get("name")): h for c in select(ctx.facts.shipped_webhooks, webhook=True, fail_closed=True)
              for h in c.get("webhooks") or []}
    for shipped in ctx.facts.shipped_webhooks:
        config = live.get(name_of(shipped))
        if config is None:
            continue
        hooks = {str(h.get("name")): h for h in config.get("webhooks") or [] if isinstance(h, Mapping)}
        for want in shipped.get("webhooks") or []:
            got = hooks.get(str(want.get("name")))
            if got is None:
                continue
            differ = [key for key in SELECTORS if _canonical(got.get(key)) != _canonical(want.get(key))]
            also = closed.get(str(want.get("name")))  # as `install --fail-closed` shapes it
            if differ and also is not None and all(_canonical(got.get(k)) == _canonical(also.get(k))
                                                   for k in SELECTORS):
                differ = []
            if differ:
                yield rule.finding(_config_ref(config), f"entry {want.get('name')}: {', '.join(differ)} "
                                                        f"differ from what install ships{_extra_excluded(got, want)}",
                                   "kubectl gitops install (restores the shipped selectors and conditions)")


def _extra_excluded(got: Mapping[str, Any], want: Mapping[str, Any]) -> str:
    extra = sorted(_excluded(got) - _excluded(want))
    return f" (also skips namespaces {', '.join(extra)})" if extra else ""


def _excluded(hook: Mapping[str, Any]) -> set[str]:
    selector = hook.get("namespaceSelector")
    exprs = selector.get("matchExpressions") if isinstance(selector, Mapping) else None
    return {str(v) for e in exprs or [] if isinstance(e, Mapping) and e.get("key") == "kubernetes.io/metadata.name"
            and e.get("operator") == "NotIn" for v in e.get("values") or []}


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True) if value not in (None, {}, []) else ""


def webhook_failure_policy(rule: Rule, ctx: AuditContext) -> Iterator[Finding]:
    """failurePolicy Fail where install never sets it: an outage would lock out autoscalers or the applier."""
    if not ctx.scope.cluster_wide:
        return
    shipped = {str(h.get("name")) for c in ctx.facts.shipped_webhooks for h in c.get("webhooks") or []}
    for config in ctx.facts.webhook_configurations:
        for hook in config.get("webhooks") or []:
            name = str(hook.get("name"))
            if name in shipped and name not in FAIL_CLOSED_ENTRIES and hook.get("failurePolicy", "Fail") == "Fail":
                yield rule.finding(_config_ref(config), f"entry {name} has failurePolicy Fail: while the webhook is "
                                                        "down, every request it matches is refused",
                                   f"Set failurePolicy: Ignore on {name} (kubectl gitops install [--fail-closed] "
                                   "sets Fail only where it is safe)")


def webhook_probe(rule: Rule, ctx: AuditContext, name: str) -> Iterator[Finding]:
    """One line of `kubectl gitops check`'s webhook results, as a finding when it is not OK."""
    if not ctx.scope.cluster_wide or ctx.facts.webhook_probe is None or not _installed(ctx):
        return
    for result in ctx.facts.webhook_probe:
        if PROBE_RULES.get(result.name) == name and result.outcome is not Outcome.OK:
            yield _from_check(rule, result)


def _from_check(rule: Rule, result: CheckResult) -> Finding:
    severity = Severity.ERROR if result.outcome is Outcome.FAILED else Severity.WARNING
    return rule.finding(CLUSTER, f"{result.name}: {result.detail}", rule.fix, severity=severity)
