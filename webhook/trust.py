"""/signatures: manifest signatures at admission, over TrustPolicies kept current by a watch.

A stolen applier token must not be enough to change what runs: in a namespace, Tenant or Sync a
TrustPolicy covers, a create or update of a managed object (one carrying the ownership labels, or
written by one of the project's appliers) is admitted only if it carries a valid signature for
exactly its identity and content. The decision is `core.manifest_sig.check_signature` (the audit
calls the same function over live objects); this module feeds it: the TrustPolicies, listed and
watched like the Tenants (webhook/tenants.py `Watched`, never fetched per request), parsed once per
change; the tenant of the namespace; the signature check of adapters/keys.py (cached).

It also validates TrustPolicy writes: a key that doesn't parse, an unknown algorithm, a too small
RSA key or an OpenPGP key gpg can't import is refused naming the key.

Writes of `pods/ephemeralcontainers` and `pods/resize` change the Pod's spec and are judged as writes
of the Pod. Scale writes (`*/scale`) are judged against the parent: replicas in the signed manifest can't be
changed that way by anyone; unsigned replicas only by a controller the policy trusts (HPA).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from kubectl_gitops.adapters import keys
from kubectl_gitops.adapters.kube import object_path
from kubectl_gitops.constants import API_VERSION, GROUP, KIND_TRUST_POLICY, SYSTEM_NAMESPACE
from kubectl_gitops.core import manifest_sig as ms
from kubectl_gitops.core.admission import AdmissionRequest, AdmissionResponse, allow
from kubectl_gitops.core.drift import in_break_glass
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.trust import TrustPolicy, parse_trust_policy

from .lookup import ParentFetcher
from .tenants import Watched

log = logging.getLogger("kubectl_gitops_webhook")

JSON = dict[str, Any]
TRUST_POLICIES_PATH = object_path(API_VERSION, "trustpolicies", None)
APPLIER_PREFIX = f"system:serviceaccount:{SYSTEM_NAMESPACE}:"
"""The project's appliers (the default one and the tenants'): whatever they write is judged."""
SPEC_SUBRESOURCES = frozenset({"ephemeralcontainers", "resize"})
"""Subresources whose writes change a Pod's spec (a debug container, in-place resized resources):
judged as writes of the Pod itself, whose whole object the API server sends."""


class TrustFacts:
    """The TrustPolicies, from a `Watched` view, parsed once per change."""

    def __init__(self, watched: Watched) -> None:
        self._watched = watched
        self._parsed: tuple[TrustPolicy, ...] | None = None
        self._lock = threading.Lock()
        watched._on_change = self.invalidate

    def invalidate(self) -> None:
        with self._lock:
            self._parsed = None

    def policies(self) -> tuple[TrustPolicy, ...]:
        with self._lock:
            parsed = self._parsed
        if parsed is None:
            parsed = tuple(_parse_all(self._watched.items().values()))
            with self._lock:
                self._parsed = parsed
        return parsed

    def synced(self) -> bool:
        return self._watched.synced

    def stop(self) -> None:
        self._watched.stop()


def _parse_all(objs: Iterable[JSON]) -> Iterable[TrustPolicy]:
    for obj in sorted(objs, key=lambda o: str((o.get("metadata") or {}).get("name") or "")):
        try:
            yield parse_trust_policy(obj)
        except GitOpsError as err:
            log.warning("TrustPolicy is not enforced at admission: %s", err)


def from_cluster(kubeconfig: str | None = None) -> TrustFacts:
    from kubectl_gitops.adapters.kube import connect_auto

    kube = connect_auto(kubeconfig)
    kube.timeout = 10.0
    facts = TrustFacts(Watched("TrustPolicies", lambda: kube.list_page(TRUST_POLICIES_PATH),
                               lambda rv: kube.watch(TRUST_POLICIES_PATH, rv)))
    facts._watched.start()
    return facts


_SHARED: list[TrustFacts] = []
_SHARED_LOCK = threading.Lock()


def shared(kubeconfig: str | None = None) -> TrustFacts:
    with _SHARED_LOCK:
        if not _SHARED:
            _SHARED.append(from_cluster(kubeconfig))
        return _SHARED[0]


# ------------------------------------------------------------------ the review


def _is_trust_policy(req: AdmissionRequest) -> bool:
    return req.kind.group == GROUP and req.kind.kind == KIND_TRUST_POLICY


def judged(req: AdmissionRequest) -> bool:
    """Whether a request is about a managed object: labelled as a Sync's (before or after), or
    written by one of the project's appliers."""
    return bool(ms.sync_of(req.object) or ms.sync_of(req.old_object)
                or req.user_info.username.startswith(APPLIER_PREFIX))


def review(req: AdmissionRequest, policies: Sequence[TrustPolicy], *, tenant_of: Callable[[str], str],
           parent_fetcher: ParentFetcher | None, break_glass_group: str,
           now: datetime | None = None) -> AdmissionResponse:
    """The /signatures decision for one request."""
    if _is_trust_policy(req) and not req.sub_resource:
        return _check_policy(req)
    if req.operation not in ("CREATE", "UPDATE") or req.sub_resource == "status":
        return allow(req, "NotJudged")
    when = now or datetime.now(UTC)
    if req.sub_resource == "scale":
        return _check_scale(req, policies, tenant_of, parent_fetcher, break_glass_group, when)
    if (req.sub_resource and req.sub_resource not in SPEC_SUBRESOURCES) or req.object is None or not judged(req):
        return allow(req, "NotJudged")
    problems = ms.check_signature(req.object, policies, keys.verify_manifest, now=when, old=req.old_object,
                                  requester=req.user_info.username, tenant=_tenant(req, tenant_of))
    if not problems:
        return allow(req, "Signed")
    scope = ms.covering(policies, req.namespace, {ms.sync_of(req.object), ms.sync_of(req.old_object)},
                        _tenant(req, tenant_of))
    return _decide(req, scope, problems, break_glass_group)


def _tenant(req: AdmissionRequest, tenant_of: Callable[[str], str]) -> str:
    return tenant_of(req.namespace) if req.namespace else ""


def _decide(req: AdmissionRequest, scope: Sequence[TrustPolicy], problems: list[str],
            break_glass_group: str) -> AdmissionResponse:
    what = f"{req.kind.kind} {req.namespace + '/' if req.namespace else ''}{req.name}"
    names = ", ".join(p.name for p in scope)
    message = (f"{what} is in the signed scope of TrustPolicy {names}: {'; '.join(problems)}. "
               "Change it in Git, sign it with `kubectl gitops sign`, and sync.")
    if not ms.enforced(scope):
        return allow(req, "UnsignedWarned", warnings=(f"kubectl-gitops: {what} not validly signed: {problems[0]}",))
    if in_break_glass(req, break_glass_group):
        return allow(req, "UnsignedBreakGlass", warnings=(f"break-glass: {what} not validly signed: {problems[0]}",),
                     audit_annotations={"signatures": "break-glass"})
    return AdmissionResponse(uid=req.uid, allowed=False, code=403, reason="SignatureRefused", message=message)


def _check_policy(req: AdmissionRequest) -> AdmissionResponse:
    """A TrustPolicy write: never by the project's own ServiceAccounts (a stolen applier token must
    not be able to weaken, add a key to, or delete the policy that judges it; the controller writes
    only the status subresource), and only with keys that parse."""
    if req.user_info.username.startswith(APPLIER_PREFIX):
        return AdmissionResponse(uid=req.uid, allowed=False, code=403, reason="TrustPolicyByApplier",
                                 message=f"TrustPolicy {req.name}: {req.user_info.username} may not "
                                         f"{req.operation.lower()} TrustPolicies (the project's appliers "
                                         "are judged by them; an administrator manages them)")
    if req.operation not in ("CREATE", "UPDATE"):
        return allow(req, "NotJudged")
    try:
        policy = parse_trust_policy(req.object or {})
        keys.check_policy_keys(policy)
    except GitOpsError as err:
        return AdmissionResponse(uid=req.uid, allowed=False, code=422, reason="InvalidTrustPolicy",
                                 message=f"{err}")
    return allow(req, "ValidTrustPolicy")


def _check_scale(req: AdmissionRequest, policies: Sequence[TrustPolicy], tenant_of: Callable[[str], str],
                 parent_fetcher: ParentFetcher | None, break_glass_group: str, now: datetime) -> AdmissionResponse:
    tenant = _tenant(req, tenant_of)
    if not ms.covering(policies, req.namespace, (), tenant) and not any(p.scope.syncs for p in policies):
        return allow(req, "NotJudged")
    parent = parent_fetcher(req) if parent_fetcher is not None else None
    if parent is None:
        return allow(req, "NotJudged")
    replicas = ((req.object or {}).get("spec") or {}).get("replicas")
    problems = ms.check_scale(parent, replicas, policies, keys.verify_manifest, now=now,
                              requester=req.user_info.username, tenant=tenant)
    if not problems:
        return allow(req, "Signed")
    scope = ms.covering(policies, req.namespace, {ms.sync_of(parent)}, tenant)
    return _decide(req, scope, problems, break_glass_group)
