"""The controller as a process against the dev control plane (docs/controller.md).

Each test runs its own controller(s) on a shard named after its namespace (`--shard NS`, the Syncs
labelled so), so they act on that test's Syncs only; intervals are seconds. What is asserted is
read from the cluster with the real kubectl (objects, the Sync's status, the Lease) and from the
controller's /metrics; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.constants import FIELD_MANAGER, LABEL_SHARD, LABEL_SYNC
from kubectl_gitops.core import resources
from tests.e2e.gitrepo import GitRepo
from tests.e2e.syncworld import SYNC_RESOURCE, World, configmap, docs
from tests.helpers import gitops, kubectl, plugin_env

INTERVAL = 3.0
CONTROLLER_START = 30.0


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class ControllerProc:
    """`kubectl gitops controller` as a child process with its own ports and log file."""

    def __init__(self, kubeconfig: str, shard: str, log: Path, *extra: str) -> None:
        self.health, self.metrics_port = free_ports(2)
        self.log = log
        args = [sys.executable, "-m", "kubectl_gitops.cli.main", "controller", "--kubeconfig", kubeconfig,
                "--shard", shard, "--allow-file-urls", "--health-addr", f"127.0.0.1:{self.health}",
                "--metrics-addr", f"127.0.0.1:{self.metrics_port}", "--log-format", "json", *extra]
        self._out = log.open("ab")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, env=plugin_env(kubeconfig))
        deadline = time.monotonic() + CONTROLLER_START
        while not self._get("/readyz", self.health):
            assert self.proc.poll() is None, f"the controller exited {self.proc.returncode}:\n{self.text()}"
            assert time.monotonic() < deadline, f"the controller was not ready in {CONTROLLER_START}s:\n{self.text()}"
            time.sleep(0.2)

    @staticmethod
    def _get(path: str, port: int) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                return str(resp.read().decode())
        except OSError:
            return None

    def metric(self, metric: str, /, **labels: str) -> float:
        """The value of one sample (0 when absent)."""
        text = self._get("/metrics", self.metrics_port) or ""
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            sample, _, rest = key.partition("{")
            got = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
            if sample == metric and got == want:
                return float(value)
        return 0.0

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log.read_text(errors="replace").splitlines():
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        return out

    def text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def terminate(self, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()
        return int(self.proc.returncode)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


Start = Callable[..., ControllerProc]


@pytest.fixture
def start(w: World, tmp_path: Path) -> Iterator[Start]:
    procs: list[ControllerProc] = []

    def run(*extra: str, name: str = "controller") -> ControllerProc:
        proc = ControllerProc(w.kubeconfig, w.ns, tmp_path / f"{name}-{len(procs)}.log", *extra)
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        proc.terminate()
    # No controller is left for this shard: drop the finalizers so the namespace can be deleted.
    for name in w.kubectl("get", SYNC_RESOURCE, "-o", "name", check=False).stdout.split():
        w.kubectl("patch", name, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}', check=False)


def setup(w: World, syncs: dict[str, dict[str, Any]], *, source_interval: str = "2s") -> None:
    """GitSource `src` and the Syncs, labelled for this test's shard, in one server-side apply."""
    objs = [resources.git_source("src", w.ns, w.repo.url, branch="main", interval=source_interval)]
    objs += [resources.sync(name, w.ns, "src", **{"interval": f"{INTERVAL:g}s", **kwargs})
             for name, kwargs in syncs.items()]
    for obj in objs[1:]:
        obj["metadata"]["labels"] = {LABEL_SHARD: w.ns}
        obj["spec"].setdefault("retryInterval", "4s")
    kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}-cli", "-f", "-", kubeconfig=w.kubeconfig,
            input=docs(*objs))


def wait_for(what: str, check: Callable[[], bool], timeout: float, poll: float = 0.25) -> float:
    """Seconds until `check()` held; fails naming `what` after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:g}s"
        time.sleep(poll)
    return time.monotonic() - started


def ready(w: World, name: str) -> bool:
    conds = w.sync_status(name).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def cm_data(w: World, name: str) -> dict[str, str] | None:
    obj = w.get("configmap", name)
    return None if obj is None else dict(obj.get("data") or {})


# ---------------------------------------------------------------- the tests

def test_a_pushed_commit_is_applied_within_one_interval(w: World, start: Start) -> None:
    w.repo.write("app/a.yaml", docs(configmap("a", {"v": "1"}))).commit("first")
    setup(w, {"app": {"path": "app", "prune": True}})
    ctl = start()
    wait_for("first apply", lambda: cm_data(w, "a") == {"v": "1"}, 2 * INTERVAL + 10)
    assert "kubectl-gitops.dev/finalizer" in (w.get(SYNC_RESOURCE, "app") or {})["metadata"]["finalizers"]

    w.repo.write("app/a.yaml", docs(configmap("a", {"v": "2"}))).write("app/b.yaml", docs(configmap("b"))).commit()
    took = wait_for("the pushed commit applied", lambda: cm_data(w, "a") == {"v": "2"} and w.exists("configmap", "b"),
                    INTERVAL + 3)
    print(f"commit -> applied in {took:.1f}s (interval {INTERVAL:g}s)")
    assert w.sync_status("app")["lastAppliedRevision"].endswith(w.repo.head())
    lines = [ln for ln in ctl.lines() if ln.get("msg") == "reconciled"]
    assert lines and all(ln["sync"] == f"{w.ns}/app" and ln["revision"] and ln["reason"] for ln in lines)
    assert all({"sync", "revision", "reason"} <= set(ln) for ln in ctl.lines()), "a log line without the fields"


def test_sync_remote_returns_the_controllers_result(w: World, start: Start) -> None:
    w.repo.write("app/a.yaml", docs(configmap("a"))).commit()
    setup(w, {"app": {"path": "app", "interval": "10m"}}, source_interval="10m")  # only the request runs it
    start()
    wait_for("first run", lambda: ready(w, "app"), 20)
    w.repo.write("app/b.yaml", docs(configmap("b"))).commit()
    run = w.sync("app", "--remote", "--timeout", "60s")
    assert run.returncode == 0, run.output
    assert run.data["ready"] is True and run.data["reason"] == "ReconciliationSucceeded"
    assert run.data["revision"].endswith(w.repo.head()), "the answer is not the run the request asked for"
    assert run.data["counts"]["created"] == 1, run.data
    assert w.exists("configmap", "b")
    status = w.sync_status("app")
    assert status["lastHandledReconcileAt"] == (w.get(SYNC_RESOURCE, "app") or {})["metadata"]["annotations"][
        "kubectl-gitops.dev/requestedAt"]

    # A failing run is reported as such, with its reason, and exit 1.
    w.repo.write("app/bad.yaml", "kind: [unclosed\n").commit()
    bad = w.sync("app", "--remote", "--timeout", "60s")
    assert bad.returncode == 1 and bad.data["ready"] is False and bad.reason == "BuildFailed", bad.output


def test_sync_remote_without_a_controller_times_out_with_the_reason(w: World) -> None:
    w.repo.write("app/a.yaml", docs(configmap("a"))).commit()
    setup(w, {"app": {"path": "app"}})
    run = w.sync("app", "--remote", "--timeout", "2s")
    assert run.returncode != 0
    assert "did not handle the request" in run.output and "Traceback" not in run.output


def test_drift_is_reverted_within_one_interval(w: World, start: Start) -> None:
    """No webhook runs here: a change to a field Git owns goes through, and the controller undoes it."""
    w.repo.write("app/a.yaml", docs(configmap("a", {"v": "git"}))).commit()
    setup(w, {"app": {"path": "app"}})
    start()
    wait_for("first apply", lambda: cm_data(w, "a") == {"v": "git"}, 20)
    w.kubectl("patch", "configmap", "a", "--type", "merge", "-p", '{"data":{"v":"hand-edit"}}')
    assert cm_data(w, "a") == {"v": "hand-edit"}
    took = wait_for("drift reverted", lambda: cm_data(w, "a") == {"v": "git"}, INTERVAL + 3)
    print(f"drift reverted in {took:.1f}s")


def test_kill_9_mid_reconcile_then_restart_converges(w: World, start: Start) -> None:
    names = [f"cm-{i:03d}" for i in range(300)]
    w.repo.write("app/all.yaml", docs(*(configmap(n) for n in names))).commit()
    setup(w, {"app": {"path": "app", "prune": True}})
    first = start("--concurrency", "1")

    def some_applied() -> bool:
        return len(w.names("configmap") & set(names)) >= 20

    wait_for("a partial apply", some_applied, 60, poll=0.05)
    first.kill9()
    partial = w.names("configmap") & set(names)
    assert len(partial) < len(names), "the run finished before the kill: nothing was tested"
    w.repo.write("app/all.yaml", docs(*(configmap(n) for n in names[:250]))).commit()  # 50 removed meanwhile

    start()
    wait_for("converged after the restart", lambda: ready(w, "app") and w.sync_status("app")[
        "lastAppliedRevision"].endswith(w.repo.head()), 90)
    live = {n for n in w.names("configmap") if n.startswith("cm-")}
    want = set(names[:250])
    assert live == want, f"lost {sorted(want - live)[:5]}, left {sorted(live - want)[:5]}"
    assert w.inventory("app") == {w.cm_id(n) for n in names[:250]}
    labelled = w.kubectl("get", "configmap", "-l", f"{LABEL_SYNC}=app", "-o", "name").stdout.split()
    assert len(labelled) == 250, "an object outside the inventory carries the Sync's label"


def test_two_replicas_one_leads_and_the_other_takes_over(w: World, start: Start) -> None:
    w.repo.write("app/a.yaml", docs(configmap("a", {"v": "1"}))).commit()
    setup(w, {"app": {"path": "app"}})
    election = ("--leader-elect", "--leader-election-namespace", w.ns, "--lease-duration", "6",
                "--renew-deadline", "4", "--retry-period", "1")
    a = start(*election, name="a")
    b = start(*election, name="b")
    wait_for("first apply", lambda: ready(w, "app"), 30)
    lease_name = f"kubectl-gitops-controller-{w.ns}"

    def holder() -> str:
        lease = w.get("lease", lease_name)
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")

    wait_for("a leader", lambda: bool(holder()), 10)
    leaders = [p for p in (a, b) if p.metric("gitops_leader") == 1]
    assert len(leaders) == 1, "both replicas (or none) think they lead"
    leader, standby = leaders[0], (b if leaders[0] is a else a)
    time.sleep(2 * INTERVAL)
    assert not [ln for ln in standby.lines() if ln.get("msg") == "reconciled"], "the standby reconciled"

    first_holder = holder()
    leader.kill9()  # no release: the standby must wait for the lease to expire
    took = wait_for("failover", lambda: standby.metric("gitops_leader") == 1, 6 + 4)
    print(f"failover in {took:.1f}s (lease 6s)")
    assert holder() != first_holder
    w.repo.write("app/a.yaml", docs(configmap("a", {"v": "2"}))).commit()
    wait_for("the new leader applies", lambda: cm_data(w, "a") == {"v": "2"}, INTERVAL + 5)


def test_sigterm_releases_the_lease_for_an_immediate_takeover(w: World, start: Start) -> None:
    w.repo.write("app/a.yaml", docs(configmap("a"))).commit()
    setup(w, {"app": {"path": "app"}})
    election = ("--leader-elect", "--leader-election-namespace", w.ns, "--lease-duration", "15",
                "--renew-deadline", "10", "--retry-period", "1")
    a = start(*election, name="a")
    wait_for("a leads", lambda: a.metric("gitops_leader") == 1, 10)
    b = start(*election, name="b")
    assert a.terminate() == 0
    took = wait_for("takeover after release", lambda: b.metric("gitops_leader") == 1, 5)
    print(f"takeover after SIGTERM in {took:.1f}s (lease 15s)")
    assert any(ln.get("reason") == "LeaseReleased" for ln in a.lines())


def test_deleting_a_sync_prunes_its_objects(w: World, start: Start) -> None:
    w.repo.write("app/a.yaml", docs(configmap("a"), configmap("b"))).commit()
    w.repo.write("keep/k.yaml", docs(configmap("k"))).commit()
    setup(w, {"app": {"path": "app"}, "kept": {"path": "keep"}})
    w.kubectl("patch", SYNC_RESOURCE, "kept", "--type", "merge", "-p", '{"spec":{"deletionPolicy":"Orphan"}}')
    start()
    wait_for("applied", lambda: ready(w, "app") and ready(w, "kept") and w.exists("configmap", "k"), 30)
    w.kubectl("delete", SYNC_RESOURCE, "app", "kept", "--wait=false")
    wait_for("Syncs gone", lambda: not w.exists(SYNC_RESOURCE, "app") and not w.exists(SYNC_RESOURCE, "kept"), 30)
    assert not w.exists("configmap", "a") and not w.exists("configmap", "b"), "the deleted Sync's objects remain"
    assert w.exists("configmap", "k"), "deletionPolicy Orphan pruned anyway"


def test_a_sync_whose_inventory_is_unreadable_is_released_by_delete_keep(w: World, start: Start) -> None:
    """The escape: the finalizer cannot prune (corrupt inventory), `delete sync --keep` lets it go."""
    w.repo.write("app/a.yaml", docs(configmap("a"))).commit()
    setup(w, {"app": {"path": "app"}})
    ctl = start()
    wait_for("applied", lambda: ready(w, "app"), 30)
    ctl.terminate()
    w.kubectl("patch", SYNC_RESOURCE, "app", "--subresource", "status", "--type", "merge",
              "-p", '{"status":{"inventory":{"entries":[{"id":"garbage","v":"v1"}]}}}')
    start()
    w.kubectl("delete", SYNC_RESOURCE, "app", "--wait=false")
    time.sleep(2)
    assert w.exists(SYNC_RESOURCE, "app"), "deleted without its prune"
    out = w.gitops("delete", "sync", "app", "--keep")
    assert "deleted" in out.stdout
    wait_for("released", lambda: not w.exists(SYNC_RESOURCE, "app"), 10)
    assert w.exists("configmap", "a")


def test_unreachable_source_backs_off_and_recovers(w: World, start: Start, tmp_path: Path) -> None:
    w.repo.write("app/a.yaml", docs(configmap("a", {"v": "1"}))).commit()
    setup(w, {"app": {"path": "app"}})
    ctl = start()
    wait_for("applied", lambda: ready(w, "app"), 30)
    moved = tmp_path / "away"
    os.rename(w.repo.path, moved)
    try:
        wait_for("the failure recorded", lambda: not ready(w, "app"), INTERVAL + 10)
        assert w.condition("app", "Ready")["reason"] == "SourceFailed"
        wait_for("backing off", lambda: ctl.metric("gitops_sync_consecutive_failures", namespace=w.ns,
                                                   name="app") >= 3, 30)
        assert ctl.metric("gitops_git_fetch_duration_seconds_count", result="failure") >= 1
        history = w.sync_status("app")["history"]
        failed = [h for h in history if h["result"] == "SourceFailed"]
        assert len(failed) >= 3
    finally:
        os.rename(moved, w.repo.path)
    w.repo.write("app/a.yaml", docs(configmap("a", {"v": "2"}))).commit()
    wait_for("recovered", lambda: ready(w, "app") and cm_data(w, "a") == {"v": "2"}, 4 + INTERVAL + 5)
    assert ctl.metric("gitops_sync_consecutive_failures", namespace=w.ns, name="app") == 0


def test_suspend_is_honoured_and_resume_reconciles_at_once(w: World, start: Start) -> None:
    w.repo.write("app/a.yaml", docs(configmap("a", {"v": "git"}))).commit()
    setup(w, {"app": {"path": "app", "interval": "10m"}})
    start()
    wait_for("first apply", lambda: cm_data(w, "a") == {"v": "git"}, 20)
    w.kubectl("patch", SYNC_RESOURCE, "app", "--type", "merge", "-p", '{"spec":{"suspend":true}}')
    w.kubectl("patch", "configmap", "a", "--type", "merge", "-p", '{"data":{"v":"hand-edit"}}')
    time.sleep(2 * INTERVAL)
    assert cm_data(w, "a") == {"v": "hand-edit"}, "a suspended Sync was reconciled"
    w.kubectl("patch", SYNC_RESOURCE, "app", "--type", "merge", "-p", '{"spec":{"suspend":false}}')
    took = wait_for("resume reconciles", lambda: cm_data(w, "a") == {"v": "git"}, 5)
    print(f"resume -> reconciled in {took:.1f}s (interval 10m)")


def test_sigterm_lets_the_run_in_flight_finish(w: World, start: Start) -> None:
    names = [f"cm-{i:03d}" for i in range(300)]
    w.repo.write("app/all.yaml", docs(*(configmap(n) for n in names))).commit()
    setup(w, {"app": {"path": "app"}})
    ctl = start("--concurrency", "1")
    wait_for("a partial apply", lambda: len(w.names("configmap") & set(names)) >= 20, 60, poll=0.05)
    assert ctl.terminate(timeout=40) == 0
    assert len(w.names("configmap") & set(names)) == len(names), "SIGTERM cut the run in flight short"
    assert ready(w, "app") and w.sync_status("app")["lastAppliedRevision"].endswith(w.repo.head())
    stopping = next(ln for ln in ctl.lines() if ln.get("reason") == "Stopping")
    assert "1 run(s) in flight" in stopping["msg"]
    assert not any(ln.get("reason") == "Abandoned" for ln in ctl.lines())


def test_a_dependency_turning_ready_runs_its_dependents_at_once(w: World, start: Start, tmp_path: Path) -> None:
    """`app` depends on `base`; app's own source never changes, so only base's Ready can wake it."""
    w.repo.write("base/b.yaml", "kind: [broken\n").commit()
    other = GitRepo(tmp_path / "other")
    other.write("app/a.yaml", docs(configmap("a"))).commit()
    objs = [resources.git_source("src", w.ns, w.repo.url, branch="main", interval="2s"),
            resources.git_source("other", w.ns, other.url, branch="main", interval="10m"),
            resources.sync("base", w.ns, "src", "base", interval="3s"),
            resources.sync("app", w.ns, "other", "app", interval="10m", depends_on=["base"])]
    for obj in objs[2:]:
        obj["metadata"]["labels"] = {LABEL_SHARD: w.ns}
        obj["spec"]["retryInterval"] = "10m"
    kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}-cli", "-f", "-", kubeconfig=w.kubeconfig,
            input=docs(*objs))
    start()
    wait_for("app waits for base", lambda: w.condition("app", "Ready").get("reason") == "DependencyNotReady", 20)
    # Failures at about 0, 1, 3, 7, 15 s: app's next own retry is 16 s after its 5th failure, far
    # beyond the bound below, which only base's source poll (2 s) and two runs fit in.
    time.sleep(16)
    w.repo.write("base/b.yaml", docs(configmap("b"))).commit()
    took = wait_for("app runs once base is Ready", lambda: ready(w, "app"), 6)
    print(f"dependency Ready -> dependent reconciled in {took:.1f}s")
    assert w.exists("configmap", "a")


def test_dev_up_controller_runs_it_as_a_local_process(tmp_path: Path) -> None:
    name = "ctl-dev-e2e"
    up = gitops("dev", "up", "--name", name, "--controller", check=False, timeout=900)
    try:
        assert up.returncode == 0, up.output
        status = gitops("dev", "status", "--name", name, "-o", "json")
        procs = {c["name"]: c for c in json.loads(status.stdout)["components"]}
        assert procs["controller"]["running"], status.stdout
        kubeconfig = gitops("dev", "kubeconfig", "--name", name, "--path").stdout.strip()
        in_cluster = kubectl("-n", "kubectl-gitops-system", "get", "deployment", "kubectl-gitops-controller",
                             kubeconfig=kubeconfig, check=False)
        assert in_cluster.returncode != 0, "the in-cluster controller was installed too"
        repo = GitRepo(tmp_path / "repo")
        repo.write("app/a.yaml", docs(configmap("a"))).commit()
        kubectl("create", "namespace", "demo", kubeconfig=kubeconfig)
        gitops("-n", "demo", "create", "source", "src", "--url", repo.url, "--branch", "main", "--interval", "2s",
               kubeconfig=kubeconfig)
        gitops("-n", "demo", "create", "sync", "app", "--source", "src", "--path", "app", "--interval", "3s",
               kubeconfig=kubeconfig)
        wait_for("applied by the local controller", lambda: kubectl(
            "-n", "demo", "get", "configmap", "a", kubeconfig=kubeconfig, check=False).returncode == 0, 30)
    finally:
        gitops("dev", "down", "--name", name, check=False)


def test_plugin_delete_with_the_controller_running_prunes_or_keeps_as_asked(w: World, start: Start) -> None:
    w.repo.write("app/a.yaml", docs(configmap("a"))).write("kept/k.yaml", docs(configmap("k"))).commit()
    setup(w, {"app": {"path": "app"}, "kept": {"path": "kept"}})
    start()
    wait_for("applied", lambda: ready(w, "app") and ready(w, "kept"), 30)
    w.gitops("delete", "sync", "kept", "--keep")
    wait_for("kept deleted", lambda: not w.exists(SYNC_RESOURCE, "kept"), 10)
    time.sleep(1)
    assert w.exists("configmap", "k"), "--keep, yet the controller's finalizer pruned"
    w.gitops("delete", "sync", "app")
    wait_for("app deleted", lambda: not w.exists(SYNC_RESOURCE, "app"), 10)
    assert not w.exists("configmap", "a")
