"""The harness is real: a real API server, RBAC, controller-manager, and the plugin through kubectl."""

from __future__ import annotations

import json
import time

from tests.e2e.conftest import DevCluster
from tests.helpers import gitops, kubectl, run


def test_configmap_create_read_delete(kubeconfig: str, namespace: str) -> None:
    kubectl("-n", namespace, "create", "configmap", "greeting", "--from-literal=hello=world",
            kubeconfig=kubeconfig)
    got = json.loads(kubectl("-n", namespace, "get", "configmap", "greeting", "-o", "json",
                             kubeconfig=kubeconfig).stdout)
    assert got["data"] == {"hello": "world"}
    assert got["metadata"]["uid"]  # assigned by the real API server
    kubectl("-n", namespace, "delete", "configmap", "greeting", kubeconfig=kubeconfig)
    gone = kubectl("-n", namespace, "get", "configmap", "greeting", kubeconfig=kubeconfig, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_rbac_refuses_unprivileged_user(dev_cluster: DevCluster, namespace: str, tmp_path: object) -> None:
    from pathlib import Path

    cfg = Path(str(tmp_path)) / "mallory.kubeconfig"
    cfg.write_text(gitops("dev", "kubeconfig", "--name", dev_cluster.name, "--user", "mallory",
                          "--group", "tenants").stdout
                   if dev_cluster.started_here else "")
    assert cfg.read_text(), "an external cluster cannot issue users; run the e2e suite on the dev cluster"
    denied = kubectl("-n", namespace, "create", "configmap", "x", "--from-literal=a=b",
                     kubeconfig=str(cfg), check=False)
    assert denied.returncode != 0
    assert "is forbidden" in denied.stderr and 'User "mallory"' in denied.stderr
    can = kubectl("auth", "can-i", "create", "configmaps", "-n", namespace, kubeconfig=str(cfg), check=False)
    assert can.stdout.strip() == "no"


def test_namespace_deletion_completes(kubeconfig: str) -> None:
    """Only kube-controller-manager's namespace controller finishes a namespace deletion."""
    name = f"doomed-{int(time.time() * 1000) % 10**8}"
    kubectl("create", "namespace", name, kubeconfig=kubeconfig)
    kubectl("-n", name, "create", "configmap", "c", "--from-literal=a=b", kubeconfig=kubeconfig)
    kubectl("delete", "namespace", name, "--wait=true", "--timeout=90s", kubeconfig=kubeconfig)
    gone = kubectl("get", "namespace", name, kubeconfig=kubeconfig, check=False)
    assert "NotFound" in gone.stderr


def test_plugin_is_discovered_by_kubectl() -> None:
    listed = run(["kubectl", "plugin", "list"], check=False)
    assert "kubectl-gitops" in listed.stdout
    out = gitops("version", "--client")
    assert out.stdout.startswith("Client Version: v")


def test_check_passes_against_dev_cluster(kubeconfig: str) -> None:
    out = gitops("check", kubeconfig=kubeconfig)
    lines = out.stdout.splitlines()
    names = [line.split()[1] for line in lines]
    assert names[:4] == ["kubectl", "kubeconfig", "API", "server"]
    assert not [line for line in lines if line.startswith("failed")]
    assert any(line.startswith("ok") and "CustomResourceDefinitions" in line for line in lines)
    version = json.loads(gitops("version", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert version["serverVersion"]["gitVersion"].startswith("v1.")


def test_check_fails_clearly_against_stopped_cluster(kubeconfig: str, tmp_path: object) -> None:
    """A kubeconfig pointing at a port where nothing listens: the API check fails and says why."""
    import re
    import socket
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    text = re.sub(r"server: https://127\.0\.0\.1:\d+", f"server: https://127.0.0.1:{dead_port}",
                  Path(kubeconfig).read_text())
    cfg = Path(str(tmp_path)) / "stopped.kubeconfig"
    cfg.write_text(text)
    out = gitops("check", kubeconfig=str(cfg), check=False)
    assert out.returncode == 1
    assert "failed  API server" in out.stdout
    assert "connection refused" in out.stdout.lower()
    assert "check failed: API server" in out.stderr
