"""The audit's rules, in the order they run, and the two loops that run them (pure).

Adding a rule is adding an entry to `RULES` (or passing a longer tuple to `run_object` /
`run_cluster`): the reader, the outputs, the reports and the counts pick it up by its id.
Signature verification at admission (`core/manifest_sig.py`) plugs in as two object rules
(`signature/missing`, `signature/invalid`, core/audit/signature_rules.py).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, Final

from kubectl_gitops.core.audit import cluster_rules as cr
from kubectl_gitops.core.audit import object_rules as orules
from kubectl_gitops.core.audit import signature_rules as sr
from kubectl_gitops.core.audit.context import AuditContext
from kubectl_gitops.core.audit.model import Finding, Rule, Severity

E, W = Severity.ERROR, Severity.WARNING

RULES: Final[tuple[Rule, ...]] = (
    # -------- objects
    Rule("tenancy/boundary", E, "An object a Tenant does not allow (the webhook's tenancy rules)",
         "Delete or move the object, or change the Tenant", on_object=orules.tenant_boundary),
    Rule("drift/changed", E, "A field Git declares was changed since the last applied revision",
         "Put the change in Git, or sync to revert it", on_object=orules.drift_changed),
    Rule("drift/ownership", W, "A field Git declares is also owned by another field manager",
         "Stop the other client applying it", on_object=orules.drift_ownership),
    Rule("signature/missing", E, "A managed object in a TrustPolicy's signed scope carries no signature "
         "(a warning where every covering policy is in warn mode)",
         "Sign it (kubectl gitops sign), commit and sync", on_object=sr.signature_missing),
    Rule("signature/invalid", E, "A managed object's signature is untrusted, expired, for another object, or "
         "does not match its content (a warning where every covering policy is in warn mode)",
         "Revert the change with a sync, or sign what Git holds again (kubectl gitops sign)",
         on_object=sr.signature_invalid),
    Rule("rbac/tenant-escalation", E, "A tenant's subject bound to cluster-admin, admin, or escalate/bind/impersonate",
         "Delete the binding or remove the tenant's subjects", on_object=orules.tenant_escalation),
    Rule("rbac/applier-impersonation", E, "A binding lets a non-operator impersonate an applier or mint its tokens",
         "Drop or narrow the binding, or move the applier", on_object=orules.applier_impersonation),
    Rule("orphan/unowned", W, "An object in a managed namespace that no Sync owns",
         "Add it to Git, or delete it", on_object=orules.orphan,
         unless=("tenancy/boundary", "rbac/tenant-escalation", "rbac/applier-impersonation")),
    # -------- cluster
    Rule("sync/stalled", E, "A Sync is stalled (it will not progress without a change)",
         "Fix the cause named in the condition, then sync", on_cluster=cr.sync_stalled),
    Rule("sync/not-ready", W, "A Sync is not Ready", "Fix the cause named in the condition, then sync",
         on_cluster=cr.sync_not_ready),
    Rule("sync/suspended", W, "A Sync has been suspended longer than the threshold",
         "kubectl gitops resume sync NAME", on_cluster=cr.sync_suspended),
    Rule("webhook/configuration", E, "A webhook configuration or entry is missing",
         "kubectl gitops install", on_cluster=cr.webhook_configuration),
    Rule("webhook/exclusions", E, "A webhook entry skips more namespaces, objects or requests than install ships",
         "kubectl gitops install", on_cluster=cr.webhook_exclusions),
    Rule("webhook/failure-policy", E, "failurePolicy Fail on an entry that must fail open",
         "Set failurePolicy: Ignore there", on_cluster=cr.webhook_failure_policy),
    Rule("webhook/ca-bundle", E, "The caBundle does not sign the webhook's serving certificate",
         "kubectl gitops install", on_cluster=functools.partial(cr.webhook_probe, name="webhook/ca-bundle")),
    Rule("webhook/certificate", E, "The serving certificate expired or expires within 30 days",
         "kubectl gitops install (renews it)",
         on_cluster=functools.partial(cr.webhook_probe, name="webhook/certificate")),
    Rule("webhook/endpoint", E, "The webhook does not answer",
         "Start the webhook (its Deployment, or `kubectl gitops dev up --webhook`)",
         on_cluster=functools.partial(cr.webhook_probe, name="webhook/endpoint")),
    Rule("webhook/client-auth", E, "The webhook answers anyone, or the API server can't authenticate to it",
         "docs/webhook.md, 'Only the API server may call the webhook'",
         on_cluster=functools.partial(cr.webhook_probe, name="webhook/client-auth")),
)


def by_id(rules: Iterable[Rule] = RULES) -> dict[str, Rule]:
    return {r.id: r for r in rules}


def run_object(obj: Mapping[str, Any], ctx: AuditContext, rules: Iterable[Rule] = RULES) -> list[Finding]:
    """Every object rule on one live object (out of scope: nothing), precedence applied."""
    if not ctx.in_scope(obj):
        return []
    found: list[Finding] = []
    fired: set[str] = set()
    for rule in rules:
        if rule.on_object is None or fired.intersection(rule.unless):
            continue
        mine = list(rule.on_object(rule, obj, ctx))
        if mine:
            fired.add(rule.id)
            found += mine
    return found


def run_cluster(ctx: AuditContext, rules: Iterable[Rule] = RULES) -> list[Finding]:
    """Every cluster rule on the facts."""
    return [f for rule in rules if rule.on_cluster is not None for f in rule.on_cluster(rule, ctx)]
