"""Audit rules for manifest signatures: `signature/missing` and `signature/invalid` (pure).

In every scope a TrustPolicy covers, each managed live object (carrying a Sync's ownership labels,
or server-side applied by the project's appliers) must carry a valid signature for exactly its
identity and content. The decision is `core.manifest_sig.check_signature`, the very function the
webhook's /signatures endpoint calls; the audit calls it the way that function documents for live
objects: no request (no old object, no requester), and the control plane's field managers named
in `ignore_managers` (their fields, such as a Deployment's replicas scaled by the HPA through the
controller manager, are not the signer's business; everything else a manager wrote is judged).

A policy in `enforce` mode makes the finding an error; in `warn` mode (every covering policy warns)
a warning, as the webhook refuses or only warns. The signature check itself (`manifest_sig.Verify`)
is injected through `AuditContext.verify` (adapters/keys.py's `verify_manifest`), so this module
does no cryptography and no I/O; without one (`verify` None) the rules find nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from kubectl_gitops.constants import FIELD_MANAGER
from kubectl_gitops.core import manifest_sig as ms
from kubectl_gitops.core.audit.context import AuditContext, meta
from kubectl_gitops.core.audit.model import Finding, Rule, Severity, ref_of

CONTROL_PLANE_MANAGERS: Final = frozenset({"kube-controller-manager", "kube-scheduler"})
"""Field managers of the control plane's controllers: what they write is not judged (admission lets
the same controllers write unsigned fields)."""


def managed(obj: Mapping[str, Any]) -> bool:
    """Labelled as a Sync's, or applied by the project's field manager (the webhook's `judged`)."""
    if ms.sync_of(obj):
        return True
    entries = meta(obj).get("managedFields")
    return isinstance(entries, list) and any(
        isinstance(e, Mapping) and e.get("manager") == FIELD_MANAGER and e.get("operation") == "Apply"
        and not e.get("subresource") for e in entries)


def signature_problems(obj: Mapping[str, Any], ctx: AuditContext) -> tuple[list[str], list[str], bool]:
    """(why the object is not validly signed, the covering policies' names, enforced); ([], [], False)
    when no policy covers it or it is not managed. The adapter between a live object and
    `check_signature`: the same call admission makes, minus the request."""
    if ctx.verify is None or not ctx.trust_policies or not managed(obj):
        return [], [], False
    namespace = str(meta(obj).get("namespace") or "")
    tenant = ctx.tenant_of(namespace)
    tenant_name = tenant.name if tenant is not None else ""
    scope = ms.covering(ctx.trust_policies, namespace, {ms.sync_of(obj)}, tenant_name)
    if not scope:
        return [], [], False
    problems = ms.check_signature(obj, ctx.trust_policies, ctx.verify, now=ctx.now, tenant=tenant_name,
                                  ignore_managers=CONTROL_PLANE_MANAGERS)
    return problems, [p.name for p in scope], ms.enforced(scope)


def _finding(rule: Rule, obj: Mapping[str, Any], ctx: AuditContext, *, unsigned: bool) -> Iterator[Finding]:
    if (ms.annotation_of(obj) is None) != unsigned:
        return
    problems, names, enforced = signature_problems(obj, ctx)
    if not problems:
        return
    mode = "enforce" if enforced else "warn"
    yield rule.finding(ref_of(obj), f"in the signed scope of TrustPolicy {', '.join(names)} ({mode}): "
                                    f"{'; '.join(problems)}",
                       severity=Severity.ERROR if enforced else Severity.WARNING)


def signature_missing(rule: Rule, obj: Mapping[str, Any], ctx: AuditContext) -> Iterator[Finding]:
    """A managed object with no signature annotation where a TrustPolicy requires one."""
    yield from _finding(rule, obj, ctx, unsigned=True)


def signature_invalid(rule: Rule, obj: Mapping[str, Any], ctx: AuditContext) -> Iterator[Finding]:
    """A signature that does not verify by a trusted key valid now, names another object, or does not
    match the object's content (changed after signing, fields added by a manager)."""
    yield from _finding(rule, obj, ctx, unsigned=False)


__all__ = ["CONTROL_PLANE_MANAGERS", "managed", "signature_invalid", "signature_missing", "signature_problems"]
