"""Only the API server may ask for admission reviews: a client-certificate check per request.

Why: a denial names the Sync that owns an object, its Git source URL, path and revision. Anyone
who can reach the webhook's port (every Pod, in most clusters) could POST a crafted AdmissionReview
and read that back, or probe which objects are guarded. The API server can present a client
certificate to webhooks (an AdmissionConfiguration with a `WebhookAdmissionConfiguration`
kubeConfigFile, see docs/webhook.md); the webhook accepts reviews only over a TLS connection that
presented a certificate signed by the configured client CA and, when names are configured, whose
CN or a DNS SAN is one of them.

Why per request and not in the TLS handshake: kubelet probes and Prometheus scrape /healthz,
/readyz and /metrics without a client certificate, and gunicorn has one TLS context for the whole
port. So the context asks for a certificate without requiring one (CERT_OPTIONAL: a certificate
that *is* presented must verify against the client CA, or the handshake fails), and this hook
refuses /validate and /mutate unless the connection's verified peer certificate (gunicorn puts the
TLS socket in the WSGI environ as `gunicorn.socket`) is there and carries an expected name. The
check runs before the body is read, and the refusal says nothing about any Sync.
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, request
from prometheus_client import Counter

log = logging.getLogger("kubectl_gitops_webhook")

PROTECTED = ("/validate", "/mutate")
REFUSAL = "this endpoint answers the Kubernetes API server only (client certificate required)"
PeerCert = Mapping[str, Any]


@dataclass(frozen=True)
class ClientPolicy:
    """Who may call /validate and /mutate: a verified client certificate, optionally with one of `names`."""

    names: frozenset[str] = frozenset()

    def refusal(self, peer: PeerCert | None) -> str | None:
        """None when `peer` (ssl.getpeercert() of a verified connection) may call; else why not."""
        if not peer:
            return "no-certificate"
        if self.names and not (cert_names(peer) & self.names):
            return "unexpected-name"
        return None


def cert_names(peer: PeerCert) -> set[str]:
    """The subject CN(s) and DNS SANs of a certificate as `ssl.getpeercert()` returns it."""
    names = {value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"}
    names |= {value for kind, value in peer.get("subjectAltName", ()) if kind == "DNS"}
    return names


def peer_certificate(environ: Mapping[str, Any]) -> PeerCert | None:
    """The verified client certificate of this request's connection, or None (plain socket, none sent)."""
    sock = environ.get("gunicorn.socket")
    if not isinstance(sock, ssl.SSLSocket):
        return None
    try:
        cert = sock.getpeercert()
    except (ValueError, OSError):  # handshake not done / connection gone
        return None
    return cert or None


def require_client_certificate(app: Flask, policy: ClientPolicy) -> None:
    """Register the check on `app`: refused callers get HTTP 403 and a fixed message, nothing else."""
    metrics = app.extensions.get("kubectl_gitops_metrics")
    registry = metrics.registry if metrics is not None else None
    refused = Counter("kubectl_gitops_webhook_refused_callers",
                      "Reviews refused because the caller was not the API server (no or unexpected "
                      "client certificate).", ["endpoint", "reason"], registry=registry)
    authenticated = Counter("kubectl_gitops_webhook_authenticated_reviews",
                            "Reviews that arrived with the API server's client certificate.", ["endpoint"],
                            registry=registry)

    @app.before_request
    def _only_the_api_server() -> Response | None:
        if request.path not in PROTECTED:
            return None
        reason = policy.refusal(peer_certificate(request.environ))
        if reason is None:
            authenticated.labels(request.path).inc()
            return None
        refused.labels(request.path, reason).inc()
        log.warning("%s: refused a caller from %s: %s", request.path, request.remote_addr, reason)
        return Response(json.dumps({"error": REFUSAL}), 403, mimetype="application/json")


def policy_from(names: Iterable[str]) -> ClientPolicy:
    return ClientPolicy(frozenset(n for n in names if n))
