"""`dev up|status|down` on a second, private dev cluster: idempotent up, a killed etcd, no leftovers."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.e2e.conftest import DevCluster
from tests.helpers import gitops, kubectl

NAME = "lifecycle"


def _pids(status: dict[str, object]) -> dict[str, int]:
    comps = status["components"]
    assert isinstance(comps, list)
    return {str(c["name"]): int(c["pid"]) for c in comps}


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_lifecycle_up_idempotent_killed_etcd_down(dev_cluster: DevCluster) -> None:
    assert dev_cluster  # the shared cluster is up, so the binaries are built: this start is warm
    gitops("dev", "down", "--name", NAME, check=False)
    t0 = time.monotonic()
    first = gitops("dev", "up", "--name", NAME)
    warm_seconds = time.monotonic() - t0
    assert "ready in" in first.stdout
    assert warm_seconds < 30, f"warm dev up took {warm_seconds:.1f}s"
    try:
        again = gitops("dev", "up", "--name", NAME)
        assert "already running" in again.stdout
        status = json.loads(gitops("dev", "status", "--name", NAME, "-o", "json").stdout)
        assert status["healthy"] is True
        pids = _pids(status)
        assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
        cfg = status["kubeconfig"]
        nodes = json.loads(kubectl("get", "nodes", "-o", "json", kubeconfig=cfg).stdout)["items"]
        assert len(nodes) == 2
        bare = gitops("get", "syncs", kubeconfig=cfg, check=False)  # a cluster without kubectl-gitops
        assert bare.returncode == 1 and "not installed" in bare.stderr and "kubectl gitops install" in bare.stderr

        kubectl("create", "configmap", "survivor", "--from-literal=a=b", kubeconfig=cfg)
        os.kill(pids["etcd"], signal.SIGKILL)
        time.sleep(0.5)
        broken = gitops("dev", "status", "--name", NAME, check=False)
        assert broken.returncode == 1 and "DEAD" in broken.stdout

        healed = gitops("dev", "up", "--name", NAME)
        assert "etcd down; restarting in place (data kept)" in healed.stderr
        after_heal = _pids(json.loads(gitops("dev", "status", "--name", NAME, "-o", "json").stdout))
        assert after_heal["etcd"] != pids["etcd"] and not _running(pids["etcd"])
        assert after_heal["kube-apiserver"] == pids["kube-apiserver"], "only the dead component restarts"
        kubectl("get", "--raw", "/readyz", kubeconfig=cfg)
        survivor = kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.a}", kubeconfig=cfg)
        assert survivor.stdout == "b", "etcd's data must survive a restart in place"
        pids = after_heal
    finally:
        gitops("dev", "down", "--name", NAME, check=False)

    assert not any(_running(p) for p in pids.values()), "dev down must leave no process behind"
    after = gitops("dev", "status", "--name", NAME, check=False)
    assert after.returncode == 1 and "not running" in after.stdout
    stopped = gitops("check", kubeconfig=cfg, check=False)
    assert stopped.returncode == 1
    assert "failed  API server" in stopped.stdout or "failed  kubeconfig" in stopped.stdout


def test_port_in_use_is_refused_clearly(dev_cluster: DevCluster) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        out = gitops("dev", "up", "--name", "portclash", "--port", str(port), check=False)
    gitops("dev", "down", "--name", "portclash", check=False)
    assert out.returncode == 1
    assert f"port {port}" in out.stderr and "in use" in out.stderr
