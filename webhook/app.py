"""The Flask adapter: AdmissionReview in, the core's decision out, metrics on the side.

Endpoints: POST /validate (drift guard), POST /tenancy (tenant boundaries, core/tenancy.py), POST
/mutate (ownership/revision stamps and the tenant label), GET /healthz, /readyz, /metrics.

Drift guard and tenancy are composed here, as two endpoints rather than one /validate, because
their webhook entries send different requests: the guard sees updates and deletes of objects
labelled as managed, tenancy sees creates, updates and deletes of anything in a tenant's
namespaces and cluster-scoped writes by tenant appliers and people. One endpoint would have to
guess from the request which entry sent it; two keep each decision, its metrics and its failure
answer separate, and a request both entries match is judged by both (the API server calls each).

The handlers parse, fetch what the core needs, call it, and answer; they
decide nothing themselves except what to do when the core could not decide:

* A body that is not an AdmissionReview v1 but whose `request.uid` can be read (the API server
  writes it first, so it survives anything a client stored in an object) gets a well-formed
  review: /validate REFUSES it (its entries only send objects labelled as managed and scale
  requests, so what can't be read is refused, never waved through by `failurePolicy: Ignore`),
  /mutate allows it without a patch. Only a body without a readable uid gets HTTP 400
  `{"error": reason}`: there is nobody to answer, and it did not come from an API server.
  Objects nested too deeply to decode are not malformed: the core reads the rest and the guard
  refuses to judge what it could not read (core/bounded.py).
* Any other failure (a bug, the API server not answering the Sync lookup, a parent fetch that
  times out) still gets a well-formed review echoing the uid, never HTTP 500:
  - /validate FAILS CLOSED for requests the guard could refuse (`needs_judgement`: an UPDATE or
    DELETE of an object carrying the ownership labels, or any scale request) and OPEN for all
    others. A guard that waves changes through whenever its lookup is slow is no guard; the blast
    radius stays small because everything else, kube-system and our own namespace pass, and the
    break-glass group passes even then (with a warning).
  - /tenancy FAILS CLOSED (its entries only send requests of tenant appliers and people and in
    tenant namespaces; the platform's admins, system identities and the break-glass group are
    kept off them or pass): the Tenants it can't read are no reason to let a tenant out.
  - /mutate FAILS OPEN (allowed, no patch, a warning): stamps are bookkeeping, and refusing the
    applier's writes for them would stop GitOps for no safety gain.

Metrics live in a CollectorRegistry of the app's own (several apps per process in tests, and no
default-registry collectors leaking in). Under several gunicorn workers (the default is two: one
Python process is one core's worth of GIL) `serve` turns on prometheus_client's multiprocess mode
before the client is imported, and /metrics reports the sum over all workers.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from werkzeug.exceptions import HTTPException

from kubectl_gitops.constants import BREAK_GLASS_GROUP
from kubectl_gitops.core import tenancy
from kubectl_gitops.core.admission import (
    REVIEW_API_VERSION,
    REVIEW_KIND,
    AdmissionRequest,
    AdmissionResponse,
    MalformedReview,
    allow,
    parse_review,
    to_review,
)
from kubectl_gitops.core.drift import in_break_glass, needs_judgement, review
from kubectl_gitops.core.mutate import stamp_patch

from . import trust as signatures
from .lookup import ParentFetcher, SyncLookup
from .tenants import NotSynced, TenantFacts
from .trust import TrustFacts

log = logging.getLogger("kubectl_gitops_webhook")

MAX_BODY = 16 * 1024 * 1024
"""object + oldObject of the largest object etcd stores (1.5 MiB each) with room to spare."""
ENDPOINTS = ("/validate", "/tenancy", "/signatures", "/mutate", "/healthz", "/readyz", "/metrics")
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

T = TypeVar("T")
Decide = Callable[[AdmissionRequest], AdmissionResponse]
OnError = Callable[[AdmissionRequest, Exception], AdmissionResponse]
OnUnreadable = Callable[[str, MalformedReview], AdmissionResponse]


class Metrics:
    """The webhook's Prometheus metrics, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter("kubectl_gitops_webhook_requests", "HTTP requests by endpoint and status code.",
                                ["endpoint", "code"], registry=self.registry)
        self.decisions = Counter("kubectl_gitops_webhook_decisions", "Admission decisions by endpoint and reason.",
                                 ["endpoint", "reason", "allowed"], registry=self.registry)
        self.latency = Histogram("kubectl_gitops_webhook_request_duration_seconds",
                                 "Time to answer an admission review.", ["endpoint"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)


class _Lazy(Generic[T]):
    """Build a lookup on first use, in the serving process (after gunicorn forks)."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
        return self._value


def create_app(lookup_factory: Callable[[], SyncLookup], parent_fetcher: ParentFetcher | None = None, *,
               break_glass_group: str = BREAK_GLASS_GROUP, registry: CollectorRegistry | None = None,
               trusted_controllers: Iterable[str] = (),
               tenancy_factory: Callable[[], TenantFacts] | None = None,
               trust_factory: Callable[[], TrustFacts] | None = None) -> Flask:
    """The webhook app. `lookup_factory` is called once, lazily; `parent_fetcher` serves scale requests.

    `tenancy_factory`: the Tenants' facts (called once, lazily); without it there is no /tenancy
    and /mutate stamps no tenant label.

    `trusted_controllers`: usernames (beyond the control plane's own controllers) that may change
    ownerReferences and finalizers of managed objects, e.g. an operator adding its own finalizers.
    """
    app = Flask("kubectl_gitops_webhook")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    metrics = Metrics(registry)
    app.extensions["kubectl_gitops_metrics"] = metrics
    lookup = _Lazy(lookup_factory)
    facts = _Lazy(tenancy_factory) if tenancy_factory is not None else None
    trusted = frozenset(trusted_controllers)

    def validate(req: AdmissionRequest) -> AdmissionResponse:
        parent = None
        if parent_fetcher is not None and req.sub_resource == "scale" and req.operation == "UPDATE":
            parent = parent_fetcher(req)
        return review(req, lookup.get(), break_glass_group=break_glass_group, parent=parent, trusted=trusted)

    def validate_failed(req: AdmissionRequest, err: Exception) -> AdmissionResponse:
        if not needs_judgement(req):
            return allow(req, "ErrorNotJudged")
        return _fail_closed(req, break_glass_group, "drift-guard", "drift guard", "change",
                            f"({type(err).__name__}); a change to a GitOps-managed object is refused")

    def mutate(req: AdmissionRequest) -> AdmissionResponse:
        ops = stamp_patch(req, lookup.get(), _tenant_label(req, facts))
        return allow(req, "Stamped" if ops else "NothingToStamp", patch=tuple(ops))

    def mutate_failed(req: AdmissionRequest, err: Exception) -> AdmissionResponse:
        return allow(req, "ErrorNotStamped", warnings=("kubectl-gitops: ownership stamps skipped (webhook error)",))

    def handle(endpoint: str, handlers: _Handlers) -> Response:
        started = time.perf_counter()
        try:
            return _answer(endpoint, handlers, metrics)
        finally:
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)

    validating = _Handlers(validate, validate_failed, _validate_unreadable)
    mutating = _Handlers(mutate, mutate_failed, _mutate_unreadable)
    app.add_url_rule("/validate", "validate", lambda: handle("/validate", validating), methods=["POST"])
    app.add_url_rule("/mutate", "mutate", lambda: handle("/mutate", mutating), methods=["POST"])
    if facts is not None:
        judging = _tenancy_handlers(facts, break_glass_group)
        app.add_url_rule("/tenancy", "tenancy", lambda: handle("/tenancy", judging), methods=["POST"])
    if trust_factory is not None:  # manifest signatures (webhook/trust.py)
        signing = _signature_handlers(_Lazy(trust_factory), facts, parent_fetcher, break_glass_group)
        app.add_url_rule("/signatures", "signatures", lambda: handle("/signatures", signing), methods=["POST"])
    app.add_url_rule("/healthz", "healthz", lambda: _json({"status": "ok"}, 200))
    app.add_url_rule("/readyz", "readyz", lambda: _ready(lookup, facts))
    app.add_url_rule("/metrics", "metrics",
                     lambda: Response(_exposition(metrics), 200, mimetype=CONTENT_TYPE_LATEST))
    _install_hooks(app, metrics)
    return app


def _fail_closed(req: AdmissionRequest, group: str, key: str, check: str, noun: str,
                 why: str) -> AdmissionResponse:
    """A check that could not decide: break-glass passes with a warning, everyone else is refused
    (a well-formed denial, never an HTTP error that failurePolicy Ignore would admit)."""
    if in_break_glass(req, group):
        return allow(req, "ErrorBreakGlass", warnings=(f"break-glass: {check} check failed; {noun} let through",),
                     audit_annotations={key: "break-glass-on-error"})
    return AdmissionResponse(
        uid=req.uid, allowed=False, code=500, reason="ErrorDenied",
        message=(f"kubectl-gitops {check} could not decide {why} until it can. Retry in a moment.\n"
                 f"If this persists, a member of {group or 'the break-glass group'} may proceed."))


def _validate_unreadable(uid: str, err: MalformedReview) -> AdmissionResponse:
    return AdmissionResponse(
        uid=uid, allowed=False, code=400, reason="MalformedDenied",
        message=(f"kubectl-gitops drift guard could not read this admission review ({str(err)[:300]}); "
                 f"it only receives requests about GitOps-managed objects and scale requests, so it is "
                 f"refused.\nIf this persists, the webhook configuration or the API server sends reviews "
                 f"the guard does not understand."))


def _tenancy_handlers(facts: _Lazy[TenantFacts], break_glass_group: str) -> _Handlers:
    """/tenancy: core/tenancy.review over the watched Tenants; fails closed but for break-glass."""

    def judge_tenancy(req: AdmissionRequest) -> AdmissionResponse:
        return tenancy.review(req, facts.get())

    def tenancy_failed(req: AdmissionRequest, err: Exception) -> AdmissionResponse:
        return _fail_closed(req, break_glass_group, "tenancy", "tenancy", "request",
                            f"({type(err).__name__}: {str(err)[:200]}); requests of tenants are refused")

    return _Handlers(judge_tenancy, tenancy_failed, _tenancy_unreadable)


def _signature_handlers(trust: _Lazy[TrustFacts], facts: _Lazy[TenantFacts] | None,
                        parent_fetcher: ParentFetcher | None, break_glass_group: str) -> _Handlers:
    """/signatures: webhook/trust.review over the watched TrustPolicies; fails closed but for break-glass."""

    def tenant_of(namespace: str) -> str:
        return facts.get().tenant_of(namespace) if facts is not None else ""

    def judge(req: AdmissionRequest) -> AdmissionResponse:
        return signatures.review(req, trust.get().policies(), tenant_of=tenant_of, parent_fetcher=parent_fetcher,
                                 break_glass_group=break_glass_group)

    def failed(req: AdmissionRequest, err: Exception) -> AdmissionResponse:
        if req.sub_resource == "scale":  # every scale in the cluster is sent: never freeze the autoscalers
            return allow(req, "ErrorNotJudged", warnings=("kubectl-gitops: scale not checked for signatures "
                                                          "(webhook error)",))
        return _fail_closed(req, break_glass_group, "signatures", "signature", "request",
                            f"({type(err).__name__}: {str(err)[:200]}); writes in signed scopes are refused")

    def unreadable(uid: str, err: MalformedReview) -> AdmissionResponse:
        return AdmissionResponse(uid=uid, allowed=False, code=400, reason="MalformedDenied",
                                 message=f"kubectl-gitops signatures could not read this admission review "
                                         f"({str(err)[:300]}); refused.")

    return _Handlers(judge, failed, unreadable)


def _tenancy_unreadable(uid: str, err: MalformedReview) -> AdmissionResponse:
    return AdmissionResponse(
        uid=uid, allowed=False, code=400, reason="MalformedDenied",
        message=f"kubectl-gitops tenancy could not read this admission review ({str(err)[:300]}); refused.")


def _tenant_label(req: AdmissionRequest, facts: _Lazy[TenantFacts] | None) -> str:
    """The tenant label's value for the object of `req` ("" when no Tenant claims its namespace, or
    the Tenants can't be read: the ownership stamps must not be lost for the label's sake)."""
    if facts is None or req.object is None:
        return ""
    try:
        return _claiming_tenant(req, facts)
    except Exception as err:
        log.warning("/mutate: uid %s: tenant label skipped: %s", req.uid, err)
        return ""


def _claiming_tenant(req: AdmissionRequest, facts: _Lazy[TenantFacts]) -> str:
    if req.kind.group == "" and req.kind.kind == "Namespace":
        meta = (req.object or {}).get("metadata")
        labels = meta.get("labels") if isinstance(meta, dict) else None
        return facts.get().tenant_of(req.name, labels if isinstance(labels, dict) else {})
    return facts.get().tenant_of(req.namespace) if req.namespace else ""


def _mutate_unreadable(uid: str, err: MalformedReview) -> AdmissionResponse:
    return AdmissionResponse(uid=uid, allowed=True, reason="MalformedNotStamped",
                             warnings=("kubectl-gitops: ownership stamps skipped (unreadable review)",))


@dataclass(frozen=True)
class _Handlers:
    """One endpoint's decision, its answer when deciding failed, and its answer to an unreadable review."""

    decide: Decide
    on_error: OnError
    on_unreadable: OnUnreadable


def _answer(endpoint: str, handlers: _Handlers, metrics: Metrics) -> Response:
    try:
        req = parse_review(request.get_data(cache=False))
    except MalformedReview as err:
        log.warning("%s: malformed AdmissionReview (uid %r): %s", endpoint, err.uid, err)
        if not err.uid:
            metrics.decisions.labels(endpoint, "Malformed", "false").inc()
            return _json({"error": str(err)}, 400)
        resp = handlers.on_unreadable(err.uid, err)
        metrics.decisions.labels(endpoint, resp.reason, "true" if resp.allowed else "false").inc()
        return _json(to_review(resp), 200)
    except HTTPException as err:  # body too large, broken chunking
        return _json({"error": err.description or err.name}, err.code or 400)
    try:
        resp = handlers.decide(req)
    except Exception as err:
        log.exception("%s: uid %s (%s %s %s/%s): decision failed", endpoint, req.uid, req.operation,
                      req.kind.kind, req.namespace, req.name)
        resp = handlers.on_error(req, err)
    try:
        body = to_review(resp)
        metrics.decisions.labels(endpoint, resp.reason or "Unknown", "true" if resp.allowed else "false").inc()
    except Exception:
        # Last resort (a bug in building the answer): still a well-formed review with the
        # uid echoed, keeping the decision already made, or the endpoint's failure policy.
        log.exception("%s: uid %s: could not build the response", endpoint, req.uid)
        body = {"apiVersion": REVIEW_API_VERSION, "kind": REVIEW_KIND,
                "response": {"uid": req.uid, "allowed": bool(resp.allowed)}}
    if not resp.allowed:
        log.info("%s: denied uid %s %s %s %s/%s by %s: %s", endpoint, req.uid, req.operation, req.kind.kind,
                 req.namespace, req.name, req.user_info.username, resp.reason)
    return _json(body, 200)


def _ready(lookup: _Lazy[SyncLookup], facts: _Lazy[TenantFacts] | None) -> Response:
    try:
        lookup.get()
        if facts is not None and not facts.get().synced():
            raise NotSynced("the Tenants and Namespaces have not been listed yet")
    except Exception as err:
        log.warning("not ready: lookup unavailable: %s", err)
        return _json({"status": "unavailable", "error": str(err)[:200]}, 503)
    return _json({"status": "ok"}, 200)


def _json(body: Any, code: int) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), code, mimetype="application/json")


def _exposition(metrics: Metrics) -> bytes:
    """This app's metrics; under several gunicorn workers, all workers' (multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return bytes(generate_latest(merged))
    return bytes(generate_latest(metrics.registry))


def _install_hooks(app: Flask, metrics: Metrics) -> None:
    @app.before_request
    def _start() -> None:
        g.endpoint_label = request.path if request.path in ENDPOINTS else "other"

    @app.after_request
    def _count(resp: Response) -> Response:
        metrics.requests.labels(g.get("endpoint_label", "other"), str(resp.status_code)).inc()
        return resp

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        return _json({"error": err.description or err.name}, err.code or 400)

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        # Only reachable outside the admission handlers (they catch everything themselves).
        log.exception("unexpected error on %s", request.path)
        return _json({"error": f"internal error ({type(err).__name__})"}, 500)
