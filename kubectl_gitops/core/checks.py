"""Pure judgements behind `kubectl gitops check`: version parsing and skew rules.

Kept apart from the I/O that gathers the facts so the rules (what counts as too much skew,
what message a user sees) are unit-tested without a cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Outcome(Enum):
    OK = "ok"
    WARN = "warn"
    FAILED = "failed"


@dataclass(frozen=True)
class CheckResult:
    name: str
    outcome: Outcome
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "result": self.outcome.value, "detail": self.detail}


_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def minor_of(version: str) -> tuple[int, int] | None:
    """(major, minor) from 'v1.37.2', '1.37+', 'v1.32.4-dispatcher'; None if unparseable."""
    m = _VERSION.match(version.strip())
    return (int(m.group(1)), int(m.group(2))) if m else None


def kubectl_skew(kubectl: str, server: str) -> CheckResult:
    """kubectl is supported within one minor of the server; we only use it for kustomize builds."""
    k, s = minor_of(kubectl), minor_of(server)
    if k is None or s is None:
        return CheckResult("kubectl skew", Outcome.WARN, f"cannot compare kubectl {kubectl} with server {server}")
    skew = s[1] - k[1]
    if k[0] != s[0] or abs(skew) > 1:
        return CheckResult("kubectl skew", Outcome.WARN,
                           f"kubectl {kubectl} is {abs(skew)} minor versions from server {server} "
                           "(kubectl supports ±1); kubectl gitops only uses it for kustomize builds")
    return CheckResult("kubectl skew", Outcome.OK, f"kubectl {kubectl} within ±1 minor of server {server}")


def client_skew(python_client: str, server: str) -> CheckResult:
    """The kubernetes Python client's major version follows the Kubernetes minor it was made for."""
    c = minor_of(python_client)
    s = minor_of(server)
    if c is None or s is None:
        return CheckResult("server version", Outcome.WARN, f"server {server}, client {python_client}")
    skew = s[1] - c[0]
    if abs(skew) > 1:
        return CheckResult("server version", Outcome.FAILED,
                           f"server {server} is {abs(skew)} minor versions from this plugin's API client "
                           f"(kubernetes {python_client} is for v1.{c[0]}): upgrade kubectl-gitops")
    return CheckResult("server version", Outcome.OK, f"server {server}; API client kubernetes {python_client}")


def exit_code(results: list[CheckResult]) -> int:
    return 1 if any(r.outcome is Outcome.FAILED for r in results) else 0


def cert_expiry(not_after_iso: str, days_left: float) -> CheckResult:
    """Fail when expired, warn within 30 days (the API server would start refusing the webhook)."""
    if days_left <= 0:
        return CheckResult("webhook certificate", Outcome.FAILED,
                           f"expired at {not_after_iso}: run `kubectl gitops install` to renew it")
    if days_left < 30:
        return CheckResult("webhook certificate", Outcome.WARN,
                           f"expires in {days_left:.0f} days ({not_after_iso}): run `kubectl gitops install`")
    return CheckResult("webhook certificate", Outcome.OK, f"valid for {days_left:.0f} more days")


def configurations(present: dict[str, bool]) -> CheckResult:
    """All webhook configurations, or none (installed with --no-webhook) — never half."""
    missing = sorted(name for name, ok in present.items() if not ok)
    if len(missing) == len(present):
        return CheckResult("webhook", Outcome.WARN,
                           "not installed: out-of-band edits are reverted on the next sync, not refused "
                           "(install it with `kubectl gitops install`)")
    if missing:
        return CheckResult("webhook", Outcome.FAILED, f"configuration(s) missing: {', '.join(missing)}; "
                           "run `kubectl gitops install` again")
    return CheckResult("webhook", Outcome.OK, f"configurations present: {', '.join(sorted(present))}")


# ------------------------------------------------------------------ who may call the webhook

CLIENT_AUTH = "admission callers"  # not "webhook …": scripts match the "webhook" lines by prefix
AUTH_DOC = "docs/webhook.md, 'Only the API server may call the webhook'"
REFUSAL_MARK = "client certificate required"


def metric_total(exposition: str, name: str) -> float:
    """The sum of every sample of counter `name` (all label sets) in a Prometheus text exposition."""
    total = 0.0
    for line in exposition.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except (IndexError, ValueError):
                continue
    return total


@dataclass(frozen=True)
class AuthCounts:
    """The webhook's counters of authenticated reviews and refused callers, at one moment."""

    authenticated: float
    refused: float

    @classmethod
    def parse(cls, exposition: str) -> AuthCounts:
        return cls(metric_total(exposition, "kubectl_gitops_webhook_authenticated_reviews_total"),
                   metric_total(exposition, "kubectl_gitops_webhook_refused_callers_total"))


def caller_auth(anonymous_answer: str, before: AuthCounts | None, after: AuthCounts | None,
                failure_policy: str) -> CheckResult:
    """Judge the webhook's caller authentication from an anonymous POST to /validate (its answer)
    and the counters before/after a server dry-run that makes the API server call the webhook."""
    if REFUSAL_MARK not in anonymous_answer:
        return CheckResult(CLIENT_AUTH, Outcome.WARN,
                           "the webhook answers reviews from any caller that reaches it (denials name Syncs, "
                           "sources, paths, revisions): configure the API server's client certificate and "
                           f"install with --client-ca-file ({AUTH_DOC})")
    if before is None or after is None:
        return CheckResult(CLIENT_AUTH, Outcome.WARN, "the webhook refuses callers without a client certificate; "
                           "could not confirm that the API server presents one (its /metrics unreadable from "
                           "here): kubectl_gitops_webhook_refused_callers_total must stay flat")
    if after.authenticated > before.authenticated:
        return CheckResult(CLIENT_AUTH, Outcome.OK, "reviews only from the API server (client certificate "
                           "verified; anonymous callers refused)")
    if after.refused > before.refused:
        effect = ("every guarded update and delete is refused" if failure_policy == "Fail"
                  else "with failurePolicy Ignore nothing is guarded")
        return CheckResult(CLIENT_AUTH, Outcome.FAILED,
                           "the API server calls the webhook without the client certificate it requires: its "
                           f"reviews are refused, so {effect}. Give the API server an AdmissionConfiguration "
                           f"(--admission-control-config-file) with a client certificate for the webhook ({AUTH_DOC})")
    return CheckResult(CLIENT_AUTH, Outcome.WARN,
                       "the webhook refuses callers without a client certificate, but a test request (server "
                       "dry-run) was not seen by it: the API server's certificate may fail the TLS handshake "
                       "(another CA?); see the webhook's log")
