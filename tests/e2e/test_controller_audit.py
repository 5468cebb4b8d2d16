"""The controller's periodic audit (`controller --audit-interval`) on the dev control plane: a
seeded violation shows in its /metrics within an interval and leaves when fixed, the AuditReports
are written (`--audit-report`), and of two replicas only the leader audits. Controllers run as
processes (tests/e2e/test_controller.py's `ControllerProc`); nothing is mocked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubectl_gitops.constants import LABEL_SYNC, LABEL_SYNC_NAMESPACE
from tests.e2e.syncworld import World
from tests.e2e.test_controller import ControllerProc, wait_for
from tests.helpers import Run, gitops, kubectl

EVERY = "2s"
ORPHAN = {"rule": "orphan/unowned", "severity": "warning"}


@pytest.fixture
def procs(w: World) -> Iterator[list[ControllerProc]]:
    running: list[ControllerProc] = []
    yield running
    for proc in running:
        proc.terminate()


def runs(proc: ControllerProc) -> float:
    return proc.metric("gitops_audit_runs_total", result="ok") + proc.metric("gitops_audit_runs_total",
                                                                            result="incomplete")


def stray(w: World) -> None:
    """A ConfigMap labelled as applied by a Sync that does not exist: orphan/unowned."""
    kubectl("apply", "-f", "-", kubeconfig=w.kubeconfig, input=json.dumps({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "stray", "namespace": w.ns,
                     "labels": {LABEL_SYNC: "gone", LABEL_SYNC_NAMESPACE: w.ns}}, "data": {"a": "1"}}))


def test_a_seeded_finding_shows_in_the_metrics_and_the_reports(w: World, procs: list[ControllerProc],
                                                              tmp_path: Path) -> None:
    proc = ControllerProc(w.kubeconfig, w.ns, tmp_path / "c.log", "--audit-interval", EVERY, "--audit-report")
    procs.append(proc)
    wait_for("a first audit", lambda: runs(proc) >= 1, 60)
    assert proc.metric("gitops_audit_objects") > 0
    assert proc.metric("gitops_audit_last_run_timestamp_seconds") > 0
    before = proc.metric("gitops_audit_findings", **ORPHAN)
    stray(w)
    took = wait_for("the finding in /metrics", lambda: proc.metric("gitops_audit_findings", **ORPHAN) == before + 1,
                    60)
    print(f"finding in /metrics after {took:.1f}s (interval {EVERY})")
    report = json.loads(w.kubectl("get", "auditreports", "kubectl-gitops-audit", "-o", "json").stdout)
    assert [(r["rule"], r["object"]["name"]) for r in report["results"]] == [("orphan/unowned", "stray")], \
        report["results"]
    w.kubectl("delete", "configmap", "stray")
    wait_for("the finding gone", lambda: proc.metric("gitops_audit_findings", **ORPHAN) == before, 60)


def test_only_the_leader_audits(w: World, procs: list[ControllerProc], tmp_path: Path) -> None:
    election = ("--leader-elect", "--leader-election-namespace", w.ns, "--lease-duration", "6",
                "--renew-deadline", "4", "--retry-period", "1", "--audit-interval", EVERY)
    a = ControllerProc(w.kubeconfig, w.ns, tmp_path / "a.log", *election)
    procs.append(a)
    b = ControllerProc(w.kubeconfig, w.ns, tmp_path / "b.log", *election)
    procs.append(b)
    wait_for("a leader", lambda: a.metric("gitops_leader") + b.metric("gitops_leader") == 1, 20)
    leader, standby = (a, b) if a.metric("gitops_leader") == 1 else (b, a)
    wait_for("two audits on the leader", lambda: runs(leader) >= 2, 60)
    assert runs(standby) == 0 and standby.metric("gitops_audit_runs_total", result="failed") == 0


def test_a_bad_interval_is_refused_naming_the_flag(installed: str) -> None:
    out = kubectl_gitops_controller(installed, "--audit-interval", "soon")
    assert out.returncode != 0 and "--audit-interval" in out.output and "not a duration" in out.output, out.output


def kubectl_gitops_controller(kubeconfig: str, *args: str) -> Run:
    return gitops("controller", "--metrics-addr", "0", "--health-addr", "0", *args, kubeconfig=kubeconfig,
                  check=False, timeout=60)
