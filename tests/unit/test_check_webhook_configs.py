"""`kubectl gitops check` reads every webhook configuration install ships, the signatures one
included: a cluster missing it (an install from before signatures, or deleted by hand) fails the
check naming it, and its entries' caBundle is compared like the others'."""

from __future__ import annotations

from typing import Any

from kubectl_gitops.adapters.kube import ApiError
from kubectl_gitops.cli import check_webhook
from kubectl_gitops.core.checks import Outcome


class FakeKube:
    """Answers GETs of webhook configurations from a dict (404 for the others)."""

    def __init__(self, configs: dict[str, dict[str, Any]]) -> None:
        self.configs = configs

    def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        name = path.rsplit("/", 1)[-1]
        if name not in self.configs:
            raise ApiError(404, "NotFound", f"{name} not found")
        return self.configs[name]


def config(name: str, ca: str = "Q0E=") -> dict[str, Any]:
    return {"metadata": {"name": name}, "webhooks": [{"name": f"{name}.x", "clientConfig": {"caBundle": ca}}]}


def test_the_signatures_configuration_is_checked() -> None:
    assert "kubectl-gitops-signatures" in check_webhook.CONFIGS


def test_a_missing_signatures_configuration_fails_the_check_naming_it() -> None:
    kube = FakeKube({n: config(n) for n in ("kubectl-gitops-drift-guard", "kubectl-gitops-stamps")})
    results = check_webhook.webhook_checks(kube)  # type: ignore[arg-type]
    assert [(r.name, r.outcome) for r in results] == [("webhook", Outcome.FAILED)]
    assert "kubectl-gitops-signatures" in results[0].detail


def test_a_different_ca_bundle_on_the_signatures_entries_fails_the_check() -> None:
    kube = FakeKube({n: config(n) for n in ("kubectl-gitops-drift-guard", "kubectl-gitops-stamps")}
                    | {"kubectl-gitops-signatures": config("kubectl-gitops-signatures", "T1RIRVI=")})
    results = check_webhook.webhook_checks(kube)  # type: ignore[arg-type]
    assert [(r.name, r.outcome) for r in results] == [("webhook", Outcome.OK), ("webhook caBundle", Outcome.FAILED)]
