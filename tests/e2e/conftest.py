"""The e2e harness: one real dev control plane per test session and a fresh namespace per test.

Set KUBECTL_GITOPS_E2E_KUBECONFIG to use a control plane that is already running (its
kubeconfig); otherwise the session starts the dev cluster named "e2e" (`e2e-gw0`, `e2e-gw1` under
pytest-xdist) and stops it at the end
(KUBECTL_GITOPS_E2E_KEEP=1 keeps it for the next run). If it cannot start, the whole run fails
with the reason: e2e tests are never silently skipped.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.gitrepo import GitRepo
from tests.e2e.syncworld import World
from tests.helpers import gitops, kubectl

# One control plane per xdist worker (tox runs the e2e files on two workers, a file per worker at a
# time): each worker's tests share it, and workers never share a name.
CLUSTER_NAME = "e2e" + (f"-{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else "")


def pytest_configure(config: pytest.Config) -> None:
    """Put kubectl at the API server's version first on PATH (built once from the pinned modules,
    like the control plane): the machine's kubectl may be outside the version-skew policy, and the
    tests should see what a user with a supported kubectl sees."""
    from kubectl_gitops.devcluster.build import ensure_kubectl

    try:
        path = ensure_kubectl(lambda m: print(m, flush=True))
    except Exception as err:
        raise pytest.UsageError(f"cannot build kubectl for the e2e tests: {err}") from err
    os.environ["PATH"] = f"{path.parent}{os.pathsep}{os.environ.get('PATH', '')}"


@dataclass(frozen=True)
class DevCluster:
    name: str
    kubeconfig: str
    started_here: bool


@pytest.fixture(scope="session")
def dev_cluster() -> Iterator[DevCluster]:
    given = os.environ.get("KUBECTL_GITOPS_E2E_KUBECONFIG")
    if given:
        yield DevCluster("external", given, False)
        return
    up = gitops("dev", "up", "--name", CLUSTER_NAME, check=False, timeout=5400)
    if up.returncode != 0:
        pytest.fail(f"the dev control plane did not start, so no e2e test can run:\n{up.output}",
                    pytrace=False)
    path = gitops("dev", "kubeconfig", "--name", CLUSTER_NAME, "--path").stdout.strip()
    cluster = DevCluster(CLUSTER_NAME, path, True)
    try:
        yield cluster
    finally:
        if not os.environ.get("KUBECTL_GITOPS_E2E_KEEP"):
            gitops("dev", "down", "--name", CLUSTER_NAME, check=False)


@pytest.fixture(scope="session")
def kubeconfig(dev_cluster: DevCluster) -> str:
    return dev_cluster.kubeconfig


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kubeconfig: str) -> Iterator[str]:
    """A fresh namespace named after the test; deleted (without waiting) afterwards."""
    base = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", name, kubeconfig=kubeconfig)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", kubeconfig=kubeconfig,
            check=False)


@pytest.fixture(scope="module")
def installed(kubeconfig: str) -> str:
    """CRDs, RBAC and the applier ServiceAccount, once per test module (install is idempotent)."""
    gitops("install", "--no-webhook", kubeconfig=kubeconfig)
    return kubeconfig


@pytest.fixture
def w(installed: str, namespace: str, tmp_path: Path) -> World:
    """A Sync world in the test's namespace: a fresh Git repository and the plugin, run through kubectl."""
    return World(installed, namespace, GitRepo(tmp_path / "repo"))
