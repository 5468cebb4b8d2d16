"""The webhook part of `kubectl gitops check`: configurations, caBundle vs serving certificate,
certificate expiry, the endpoint answering (directly for a URL webhook, through the API
server's service proxy for the in-cluster one: the same path the API server itself takes), and
who may call it: an anonymous review must be refused, and a server dry-run that makes the API
server call the webhook must arrive authenticated (the webhook's counters tell).
"""

from __future__ import annotations

import base64
import datetime as dt
import ssl
from typing import Any
from urllib.parse import urlsplit

from kubectl_gitops.adapters import pki
from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.constants import LABEL_SYNC, SYSTEM_NAMESPACE
from kubectl_gitops.core import install as shape
from kubectl_gitops.core.checks import (
    CLIENT_AUTH,
    AuthCounts,
    CheckResult,
    Outcome,
    caller_auth,
    cert_expiry,
    configurations,
)
from kubectl_gitops.core.errors import GitOpsError

CONFIGS = {
    "kubectl-gitops-drift-guard": "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/",
    "kubectl-gitops-stamps": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/",
    "kubectl-gitops-signatures": "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/",
}


def webhook_checks(kube: Kube) -> list[CheckResult]:
    found: dict[str, dict[str, Any] | None] = {}
    for name, base in CONFIGS.items():
        try:
            found[name] = kube.request("GET", base + name)
        except ApiError as err:
            if err.status != 404:
                return [CheckResult("webhook", Outcome.FAILED, f"cannot read {name}: {err}")]
            found[name] = None
    first = configurations({n: o is not None for n, o in found.items()})
    if first.outcome is not Outcome.OK:
        return [first]
    hooks = [h for obj in found.values() if obj for h in obj.get("webhooks") or []]
    return [first, *_certificate_checks(kube, hooks)]


def _certificate_checks(kube: Kube, hooks: list[dict[str, Any]]) -> list[CheckResult]:
    bundles = {str((h.get("clientConfig") or {}).get("caBundle") or "") for h in hooks}
    if len(bundles) != 1 or "" in bundles:
        return [CheckResult("webhook caBundle", Outcome.FAILED,
                            "webhook entries have missing or different caBundles: run `kubectl gitops install`")]
    ca_pem = base64.b64decode(bundles.pop())
    url = str((hooks[0].get("clientConfig") or {}).get("url") or "")
    endpoint = _endpoint(kube, url, ca_pem)
    try:
        cert_pem = _served_certificate(url) if url else _secret_certificate(kube)
    except (OSError, GitOpsError, ValueError) as err:
        # Nothing answers at the URL: the endpoint line says so; the certificate is unknown, not wrong.
        outcome = Outcome.WARN if endpoint.outcome is Outcome.FAILED else Outcome.FAILED
        return [CheckResult("webhook caBundle", outcome, f"cannot read the serving certificate: {err}"), endpoint]
    results = [_ca_matches(ca_pem, cert_pem, url)]
    not_after = pki.not_after(cert_pem)
    days = (not_after - dt.datetime.now(dt.UTC)).total_seconds() / 86400
    results.append(cert_expiry(not_after.strftime("%Y-%m-%dT%H:%M:%SZ"), days))
    results.append(endpoint)
    if endpoint.outcome is Outcome.OK:
        results.append(_caller_auth(kube, _Endpoint(kube, url, ca_pem), _guard_policy(hooks)))
    return results


def _guard_policy(hooks: list[dict[str, Any]]) -> str:
    return next((str(h.get("failurePolicy", "Fail")) for h in hooks if h.get("name") == shape.GUARD_ENTRY), "Ignore")


class _Endpoint:
    """The webhook's own paths: directly at its URL, or through the API server's service proxy."""

    def __init__(self, kube: Kube, url: str, ca_pem: bytes) -> None:
        self.kube, self.ca_pem = kube, ca_pem
        self.base = "{0.scheme}://{0.netloc}".format(urlsplit(url)) if url else ""

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        if not self.base:
            proxy = f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/services/https:{shape.WEBHOOK_NAME}:443/proxy{path}"
            try:
                out = self.kube.request(method, proxy, body=body, accept="*/*", timeout=5)
            except ApiError as err:
                return err.status, str(err)
            return 200, str(out)
        import urllib.error
        import urllib.request

        ctx = ssl.create_default_context(cadata=self.ca_pem.decode())
        req = urllib.request.Request(self.base + path, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
                return int(resp.status), resp.read().decode(errors="replace")
        except urllib.error.HTTPError as err:
            return int(err.code), err.read().decode(errors="replace")

    def counts(self) -> AuthCounts | None:
        if not self.base:  # the proxy answers text, which kube.request cannot decode as JSON
            return None
        try:
            code, text = self.call("GET", "/metrics")
        except (OSError, GitOpsError, ValueError):
            return None
        return AuthCounts.parse(text) if code == 200 else None


def _caller_auth(kube: Kube, endpoint: _Endpoint, failure_policy: str) -> CheckResult:
    try:
        _, answer = endpoint.call("POST", "/validate", b"{}")
    except (OSError, GitOpsError, ValueError) as err:
        return CheckResult(CLIENT_AUTH, Outcome.WARN, f"could not send a test review to the webhook: {err}")
    before = endpoint.counts()
    _make_the_api_server_call(kube)
    return caller_auth(answer, before, endpoint.counts(), failure_policy)


def _make_the_api_server_call(kube: Kube) -> None:
    """A server dry-run create of a labelled ConfigMap: the stamps entry sends it to the webhook,
    nothing is stored. Refused or forbidden, it still tells (the counters); errors are ignored."""
    probe = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"generateName": "kubectl-gitops-check-", "labels": {LABEL_SYNC: "check"}}}
    for _ in range(3):  # in-cluster, a few tries reach both replicas
        try:
            kube.request("POST", "/api/v1/namespaces/default/configmaps", body=probe, query={"dryRun": "All"},
                         timeout=10)
        except GitOpsError:
            return


def _ca_matches(ca_pem: bytes, cert_pem: bytes, url: str) -> CheckResult:
    where = url or f"Secret {SYSTEM_NAMESPACE}/{shape.TLS_SECRET}"
    if pki.signed_by(cert_pem, ca_pem):
        return CheckResult("webhook caBundle", Outcome.OK, f"matches the serving certificate ({where})")
    return CheckResult("webhook caBundle", Outcome.FAILED,
                       f"does not sign the serving certificate of {where}: the API server will refuse TLS; "
                       "run `kubectl gitops install`")


def _served_certificate(url: str) -> bytes:
    parts = urlsplit(url)
    pem = ssl.get_server_certificate((parts.hostname or "127.0.0.1", parts.port or 443), timeout=5)
    return pem.encode()


def _secret_certificate(kube: Kube) -> bytes:
    secret = kube.request("GET", f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/secrets/{shape.TLS_SECRET}")
    return base64.b64decode((secret.get("data") or {}).get("tls.crt", ""))


def _endpoint(kube: Kube, url: str, ca_pem: bytes) -> CheckResult:
    try:
        if url:
            _probe_url(url, ca_pem)
            where = "{0.scheme}://{0.netloc}".format(urlsplit(url))
        else:
            proxy = (f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/services/"
                     f"https:{shape.WEBHOOK_NAME}:443/proxy/healthz")
            kube.request("GET", proxy, accept="*/*", timeout=5)
            where = f"service {SYSTEM_NAMESPACE}/{shape.WEBHOOK_NAME}"
    except (OSError, GitOpsError, ValueError) as err:
        where = "{0.scheme}://{0.netloc}".format(urlsplit(url)) if url else "the webhook Service"
        return CheckResult("webhook endpoint", Outcome.FAILED,
                           f"{where} not answering ({err}); with failurePolicy Ignore edits are not guarded "
                           "meanwhile: start the webhook (`kubectl gitops dev up --webhook` locally)")
    return CheckResult("webhook endpoint", Outcome.OK, f"{where} answers /healthz")


def _probe_url(url: str, ca_pem: bytes) -> None:
    import urllib.request

    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    parts = urlsplit(url)
    with urllib.request.urlopen(f"{parts.scheme}://{parts.netloc}/healthz", context=ctx, timeout=5) as resp:
        if resp.status != 200:
            raise ValueError(f"/healthz answered HTTP {resp.status}")
