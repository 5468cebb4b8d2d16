"""The project's own manifests apply with plain `kubectl apply -k`, on a private dev cluster.

manifests/dev is applied for real (its webhooks point at a loopback URL where nothing listens,
and failurePolicy Ignore keeps the cluster writable); the production base manifests/install,
whose webhook Service would have no real endpoints here, is checked with a server-side dry run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import DevCluster
from tests.helpers import gitops, kubectl

NAME = "manifests"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def private(dev_cluster: DevCluster) -> Iterator[str]:
    assert dev_cluster  # binaries built: a warm start
    gitops("dev", "up", "--name", NAME)
    try:
        yield json.loads(gitops("dev", "status", "--name", NAME, "-o", "json").stdout)["kubeconfig"]
    finally:
        gitops("dev", "down", "--name", NAME, check=False)


def test_plain_kubectl_applies_the_dev_manifests_and_the_cluster_stays_writable(private: str) -> None:
    out = kubectl("apply", "-k", str(ROOT / "manifests" / "dev"), kubeconfig=private)
    assert "customresourcedefinition.apiextensions.k8s.io/syncs.kubectl-gitops.dev created" in out.stdout
    assert "validatingwebhookconfiguration.admissionregistration.k8s.io/kubectl-gitops-drift-guard created" \
        in out.stdout
    hooks = json.loads(kubectl("get", "validatingwebhookconfiguration", "kubectl-gitops-drift-guard", "-o", "json",
                               kubeconfig=private).stdout)["webhooks"]
    assert all(h["clientConfig"]["url"].startswith("https://127.0.0.1:") for h in hooks)
    # nothing listens at that URL: a labelled object is still editable (Ignore), never locked out
    kubectl("create", "namespace", "writable", kubeconfig=private)
    kubectl("-n", "writable", "create", "configmap", "c", "--from-literal=a=b", kubeconfig=private)
    kubectl("-n", "writable", "label", "configmap", "c", "kubectl-gitops.dev/sync=x", kubeconfig=private)
    kubectl("-n", "writable", "delete", "configmap", "c", kubeconfig=private)
    kubectl("get", "crd", "syncs.kubectl-gitops.dev", kubeconfig=private)


def test_plain_kubectl_accepts_the_production_base_in_a_server_dry_run(private: str) -> None:
    # a server dry run creates nothing, so the namespace its objects live in must exist already
    ns = kubectl("create", "namespace", "kubectl-gitops-system", "--dry-run=client", "-o", "yaml",
                 kubeconfig=private).stdout
    kubectl("apply", "-f", "-", input=ns, kubeconfig=private)
    out = kubectl("apply", "-k", str(ROOT / "manifests" / "install"), "--dry-run=server", kubeconfig=private)
    for expected in ("deployment.apps/kubectl-gitops-webhook", "poddisruptionbudget.policy/kubectl-gitops-webhook",
                     "service/kubectl-gitops-webhook", "mutatingwebhookconfiguration.admissionregistration.k8s.io/"
                     "kubectl-gitops-stamps"):
        assert expected in out.stdout, out.stdout


def test_install_refuses_an_in_cluster_webhook_on_the_dev_control_plane(private: str) -> None:
    out = gitops("install", kubeconfig=private, check=False)
    assert out.returncode == 2
    assert "dev up --webhook" in out.stderr
