"""The rules behind `kubectl gitops check`: version parsing, skew, exit code, certificate and webhook checks."""

from __future__ import annotations

import pytest

from kubectl_gitops.core.checks import (
    AuthCounts,
    CheckResult,
    Outcome,
    caller_auth,
    cert_expiry,
    client_skew,
    configurations,
    exit_code,
    kubectl_skew,
    metric_total,
    minor_of,
)


@pytest.mark.parametrize(("version", "expected"), [
    ("v1.37.2", (1, 37)),
    ("1.37+", (1, 37)),
    ("v1.32.4-dispatcher", (1, 32)),
    ("v1.33.0-rc.1", (1, 33)),
    ("  v1.30.1+k3s1  ", (1, 30)),
    ("37.0.1", (37, 0)),  # the kubernetes Python client's own version
    ("1.2", (1, 2)),
])
def test_minor_of(version: str, expected: tuple[int, int]) -> None:
    assert minor_of(version) == expected


@pytest.mark.parametrize("version", ["", "garbage", "v1", "latest", "vX.Y.Z", "unknown-1.30"])
def test_minor_of_garbage(version: str) -> None:
    assert minor_of(version) is None


@pytest.mark.parametrize(("kubectl", "server"), [
    ("v1.37.2", "v1.37.0"), ("v1.36.5", "v1.37.2"), ("v1.38.0", "v1.37.2"), ("v1.37.0", "1.37+"),
])
def test_kubectl_skew_within_one_minor(kubectl: str, server: str) -> None:
    result = kubectl_skew(kubectl, server)
    assert result.outcome is Outcome.OK
    assert result.name == "kubectl skew"
    assert kubectl in result.detail
    assert server in result.detail


@pytest.mark.parametrize(("kubectl", "server", "skew"), [
    ("v1.35.1", "v1.37.2", 2), ("v1.39.0", "v1.37.2", 2), ("v1.30.0", "v1.37.2", 7),
])
def test_kubectl_skew_beyond_one_minor_warns(kubectl: str, server: str, skew: int) -> None:
    result = kubectl_skew(kubectl, server)
    assert result.outcome is Outcome.WARN  # only used for kustomize builds: never fatal
    assert f"is {skew} minor versions from server {server}" in result.detail
    assert "±1" in result.detail


def test_kubectl_skew_across_majors_warns() -> None:
    assert kubectl_skew("v2.37.0", "v1.37.0").outcome is Outcome.WARN


def test_kubectl_skew_unparseable() -> None:
    result = kubectl_skew("unknown", "v1.37.2")
    assert result.outcome is Outcome.WARN
    assert result.detail == "cannot compare kubectl unknown with server v1.37.2"
    assert kubectl_skew("v1.37.2", "").outcome is Outcome.WARN


@pytest.mark.parametrize(("client", "server"), [
    ("37.0.1", "v1.37.2"), ("37.0.1", "v1.36.0"), ("37.0.1", "v1.38.1"), ("36.1.0", "1.37+"),
])
def test_client_skew_ok(client: str, server: str) -> None:
    result = client_skew(client, server)
    assert result.outcome is Outcome.OK
    assert result.name == "server version"
    assert result.detail == f"server {server}; API client kubernetes {client}"


@pytest.mark.parametrize(("client", "server", "skew"), [
    ("37.0.1", "v1.35.4", 2), ("37.0.1", "v1.40.0", 3), ("33.1.0", "v1.37.2", 4),
])
def test_client_skew_too_far_fails(client: str, server: str, skew: int) -> None:
    result = client_skew(client, server)
    assert result.outcome is Outcome.FAILED
    assert f"server {server} is {skew} minor versions" in result.detail
    assert f"kubernetes {client} is for v1.{client.partition('.')[0]}" in result.detail
    assert "upgrade kubectl-gitops" in result.detail


def test_client_skew_unparseable_warns() -> None:
    result = client_skew("37.0.1", "garbage")
    assert result.outcome is Outcome.WARN
    assert result.detail == "server garbage, client 37.0.1"


def test_exit_code() -> None:
    ok = CheckResult("a", Outcome.OK, "")
    warn = CheckResult("b", Outcome.WARN, "")
    failed = CheckResult("c", Outcome.FAILED, "")
    assert exit_code([]) == 0
    assert exit_code([ok, warn]) == 0
    assert exit_code([ok, warn, failed]) == 1
    assert exit_code([failed]) == 1


def test_as_dict() -> None:
    assert CheckResult("webhook", Outcome.WARN, "not installed").as_dict() == {
        "check": "webhook", "result": "warn", "detail": "not installed"}


@pytest.mark.parametrize(("days", "outcome"), [
    (365.0, Outcome.OK), (30.0, Outcome.OK), (29.9, Outcome.WARN), (1.0, Outcome.WARN), (0.01, Outcome.WARN),
    (0.0, Outcome.FAILED), (-3.0, Outcome.FAILED),
])
def test_cert_expiry_outcomes(days: float, outcome: Outcome) -> None:
    result = cert_expiry("2026-03-01T00:00:00Z", days)
    assert result.name == "webhook certificate"
    assert result.outcome is outcome


def test_cert_expiry_messages() -> None:
    assert cert_expiry("2027-01-01T00:00:00Z", 200.4).detail == "valid for 200 more days"
    warn = cert_expiry("2026-02-01T00:00:00Z", 12.2).detail
    assert warn.startswith("expires in 12 days (2026-02-01T00:00:00Z)")
    assert "kubectl gitops install" in warn
    failed = cert_expiry("2025-01-01T00:00:00Z", -1).detail
    assert failed.startswith("expired at 2025-01-01T00:00:00Z")
    assert "kubectl gitops install" in failed


NAMES = ("kubectl-gitops-drift-guard", "kubectl-gitops-stamps")


def test_configurations_all_present() -> None:
    result = configurations(dict.fromkeys(NAMES, True))
    assert result.outcome is Outcome.OK
    assert result.detail == "configurations present: kubectl-gitops-drift-guard, kubectl-gitops-stamps"


def test_configurations_none_present_is_a_warning() -> None:
    result = configurations(dict.fromkeys(NAMES, False))
    assert result.outcome is Outcome.WARN
    assert result.detail.startswith("not installed")


def test_configurations_half_present_fails() -> None:
    result = configurations({"kubectl-gitops-stamps": True, "kubectl-gitops-drift-guard": False})
    assert result.outcome is Outcome.FAILED
    assert "kubectl-gitops-drift-guard" in result.detail
    assert "kubectl-gitops-stamps" not in result.detail
    assert exit_code([result]) == 1


# ------------------------------------------------------------------ webhook callers

REFUSED = '{"error": "this endpoint answers the Kubernetes API server only (client certificate required)"}'
EXPOSITION = """# HELP kubectl_gitops_webhook_refused_callers_total x
# TYPE kubectl_gitops_webhook_refused_callers_total counter
kubectl_gitops_webhook_refused_callers_total{endpoint="/validate",reason="no-certificate"} 2.0
kubectl_gitops_webhook_refused_callers_total{endpoint="/mutate",reason="unexpected-name"} 1.0
kubectl_gitops_webhook_refused_callers_created{endpoint="/validate",reason="no-certificate"} 1.7e9
kubectl_gitops_webhook_authenticated_reviews_total{endpoint="/mutate"} 3.0
"""


def test_metric_total_sums_label_sets_and_ignores_lookalikes() -> None:
    assert metric_total(EXPOSITION, "kubectl_gitops_webhook_refused_callers_total") == 3.0
    assert AuthCounts.parse(EXPOSITION) == AuthCounts(3.0, 3.0)
    assert metric_total("", "x") == 0.0


def test_a_webhook_that_answers_anyone_is_a_warning() -> None:
    r = caller_auth('{"error": "malformed"}', None, None, "Ignore")
    assert r.outcome is Outcome.WARN and "any caller" in r.detail and "--client-ca-file" in r.detail


def test_authenticated_reviews_arriving_is_ok() -> None:
    assert caller_auth(REFUSED, AuthCounts(1, 5), AuthCounts(2, 5), "Ignore").outcome is Outcome.OK


@pytest.mark.parametrize("policy, effect", [("Ignore", "nothing is guarded"),
                                            ("Fail", "every guarded update and delete is refused")])
def test_an_api_server_without_its_client_certificate_fails(policy: str, effect: str) -> None:
    r = caller_auth(REFUSED, AuthCounts(0, 1), AuthCounts(0, 4), policy)
    assert r.outcome is Outcome.FAILED
    assert effect in r.detail and "--admission-control-config-file" in r.detail


def test_nothing_seen_is_a_warning_pointing_at_the_log() -> None:
    r = caller_auth(REFUSED, AuthCounts(0, 1), AuthCounts(0, 1), "Ignore")
    assert r.outcome is Outcome.WARN and "log" in r.detail
    assert caller_auth(REFUSED, None, None, "Ignore").outcome is Outcome.WARN
