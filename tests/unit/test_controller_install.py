"""The controller's install manifests: 2 replicas with leader election, probes, restricted Pod, RBAC for
leases; `dev up --controller` installs everything but the in-cluster workload."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.cli.controller_cmd import parse_addr
from kubectl_gitops.core import install as shape
from kubectl_gitops.core.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]
JSON = dict[str, Any]


@pytest.fixture(scope="module")
def objs() -> list[JSON]:
    if shutil.which("kubectl") is None:
        pytest.fail("needs kubectl on PATH (kubectl kustomize)")
    out = subprocess.run(["kubectl", "kustomize", str(ROOT / "manifests" / "install")], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def one(objs: list[JSON], kind: str, name: str) -> JSON:
    found = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def test_deployment_two_replicas_leader_elected_probed_and_restricted(objs: list[JSON]) -> None:
    deploy = one(objs, "Deployment", "kubectl-gitops-controller")
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:2] == ["controller", "--leader-elect"]
    assert "--allow-file-urls" not in container["args"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and not sc["allowPrivilegeEscalation"] and sc["readOnlyRootFilesystem"]
    assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["terminationGracePeriodSeconds"] > 25, "shorter than the controller's own grace period"
    svc = one(objs, "Service", "kubectl-gitops-controller-metrics")
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"


def test_rbac_leases_in_the_system_namespace_only(objs: list[JSON]) -> None:
    role = one(objs, "Role", "kubectl-gitops-controller-leases")
    assert role["metadata"]["namespace"] == "kubectl-gitops-system"
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "list", "watch", "create", "update", "patch"]}]
    cluster_rules = one(objs, "ClusterRole", "kubectl-gitops-controller")["rules"]
    assert not any("coordination.k8s.io" in r["apiGroups"] for r in cluster_rules)
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in cluster_rules)


def test_local_controller_install_leaves_out_the_workload_only(objs: list[JSON]) -> None:
    kept = {(o["kind"], o["metadata"]["name"]) for o in shape.select(objs, webhook=False, controller=False)}
    assert ("Deployment", "kubectl-gitops-controller") not in kept
    assert ("Service", "kubectl-gitops-controller-metrics") not in kept
    assert ("ServiceAccount", "kubectl-gitops-controller") in kept
    full = {(o["kind"], o["metadata"]["name"]) for o in shape.select(objs, webhook=False)}
    assert ("Deployment", "kubectl-gitops-controller") in full


def test_addresses() -> None:
    assert parse_addr(":8080", "--x") == ("0.0.0.0", 8080)
    assert parse_addr("127.0.0.1:9", "--x") == ("127.0.0.1", 9)
    assert parse_addr("0", "--x") is None
    with pytest.raises(UsageError, match="--metrics-addr"):
        parse_addr("8080x", "--metrics-addr")
