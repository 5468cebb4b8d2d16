"""The drift guard's Sync lookups are watch-backed: a suspend or resume takes effect at once.

Measured here: from the API server accepting `spec.suspend` to the guard's first answer that
reflects it (probes are server-side dry runs as bob, one every ~0.1 s plus kubectl's start-up).
With the old 5 s TTL cache the lag was anywhere up to 5 s; a watch event arrives in milliseconds,
so the bound asserted (LAG_BOUND) is mostly the probe's own cost.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.e2e.webhookworld import App, Cluster, app, make_app, webhook_cluster
from tests.helpers import Run

__all__ = ["app", "make_app"]  # fixtures, used by name

CLUSTER = "webhook-watch-e2e"
LAG_BOUND = 2.0


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from webhook_cluster(CLUSTER, tmp_path_factory)


def edit(app: App) -> Run:
    return app.kubectl("bob", "set", "image", "deployment/web", "web=nginx:9", "--dry-run=server")


def lag_until(app: App, allowed: bool, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while (edit(app).returncode == 0) != allowed:
        assert time.monotonic() - started < timeout, f"the guard still answers {not allowed} after {timeout}s"
        time.sleep(0.1)
    return time.monotonic() - started


def test_suspend_and_resume_take_effect_at_once(app: App) -> None:
    assert edit(app).returncode != 0, "enforce mode let bob change a field Git owns"
    lags = []
    for _ in range(3):
        app.admin("patch", "syncs.kubectl-gitops.dev", app.sync, "--type=merge", "-p", '{"spec":{"suspend":true}}')
        lags.append(("suspend", lag_until(app, allowed=True)))
        app.admin("patch", "syncs.kubectl-gitops.dev", app.sync, "--type=merge", "-p", '{"spec":{"suspend":false}}')
        lags.append(("resume", lag_until(app, allowed=False)))
    print("guard lag after suspend/resume (s): " + ", ".join(f"{what} {lag:.2f}" for what, lag in lags))
    assert max(lag for _, lag in lags) < LAG_BOUND, lags


def test_scale_of_a_guarded_deployment_is_judged_from_the_watch(app: App) -> None:
    refused = app.kubectl("bob", "scale", "deployment", "web", "--replicas=4", "--dry-run=server")
    assert refused.returncode != 0 and "replicas" in refused.stderr, refused.output
    app.admin("patch", "syncs.kubectl-gitops.dev", app.sync, "--type=merge", "-p", '{"spec":{"suspend":true}}')
    started = time.monotonic()
    while app.kubectl("bob", "scale", "deployment", "web", "--replicas=4").returncode != 0:
        assert time.monotonic() - started < LAG_BOUND, "scale still refused after the suspend"
        time.sleep(0.1)
    assert app.replicas() == 4
