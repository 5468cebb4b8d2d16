"""`get` with kubectl's conventions, and careful `delete sync` / `uninstall`, on the dev control plane.

`-o name` is compared with what the real kubectl prints for the same objects; `--watch` is a real
watch that sees a change made by another process; the confirmation is answered through a real
pseudo-terminal, and `--dry-run` is checked against the cluster: nothing changed. Last, the engine
side of the same layer: an API error in a step is recorded under that step's reason.
"""

from __future__ import annotations

import os
import pty
import queue
import subprocess
import threading
import time

from tests.e2e.syncworld import SYNC_RESOURCE, World, configmap, docs
from tests.helpers import gitops, kubectl, plugin_env

PRUNE_DISABLED = {"kubectl-gitops.dev/prune": "disabled"}


def on_a_terminal(w: World, *args: str, answer: str) -> tuple[int, str]:
    """Run `kubectl gitops -n NS ARGS` with stdin a pseudo-terminal, typing `answer`."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(["kubectl", "gitops", "-n", w.ns, *args], stdin=slave, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=plugin_env(w.kubeconfig))
        os.close(slave)
        if answer:
            os.write(master, answer.encode())
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(master)
    return proc.returncode, out.decode()


def two_syncs(w: World) -> None:
    """`good` (Ready), `broken` (a path that doesn't exist: Ready=False), labelled differently."""
    w.repo.write("apps/cm.yaml", docs(configmap("a")))
    w.repo.commit("apps")
    w.setup({"good": {"path": "apps", "prune": True}, "broken": {"path": "nowhere", "prune": True}})
    w.kubectl("label", SYNC_RESOURCE, "good", "team=a")
    w.kubectl("label", SYNC_RESOURCE, "broken", "team=b")
    w.sync_ok("good")
    assert w.sync("broken").returncode == 1


def test_get_selectors_names_and_headers_follow_kubectl(w: World) -> None:
    two_syncs(w)
    names = w.gitops("get", "syncs", "-o", "name").stdout.split()
    assert names == w.kubectl("get", SYNC_RESOURCE, "-o", "name").stdout.split()  # kubectl's own spelling
    assert names == ["sync.kubectl-gitops.dev/broken", "sync.kubectl-gitops.dev/good"]

    assert w.gitops("get", "syncs", "-l", "team=a", "-o", "name").stdout.split() == ["sync.kubectl-gitops.dev/good"]
    assert w.gitops("get", "syncs", "-l", "team!=a", "-o", "name").stdout.split() == \
        w.kubectl("get", SYNC_RESOURCE, "-l", "team!=a", "-o", "name").stdout.split()
    failing = w.gitops("get", "syncs", "--status-selector", "ready=false").stdout.splitlines()
    assert failing[0].split()[:2] == ["NAME", "READY"] and [line.split()[0] for line in failing[1:]] == ["broken"]
    plain = w.gitops("get", "syncs", "--no-headers").stdout.splitlines()
    assert [line.split()[:2] for line in plain] == [["broken", "False"], ["good", "True"]]

    bad = w.gitops("get", "syncs", "-l", "team in a", check=False)
    assert bad.returncode == 2 and "-l/--selector" in bad.stderr and "Traceback" not in bad.output
    missing = w.gitops("get", "sync", "nope", check=False)
    assert missing.returncode == 1 and f"Sync {w.ns}/nope not found" in missing.stderr


def test_get_watch_prints_each_change_made_elsewhere_and_ends_at_the_request_timeout(w: World) -> None:
    two_syncs(w)
    lines: queue.Queue[str] = queue.Queue()
    started = time.monotonic()
    proc = subprocess.Popen(["kubectl", "gitops", "-n", w.ns, "get", "syncs", "--watch", "-o", "name",
                             "-l", "team=a", "--request-timeout", "25s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=plugin_env(w.kubeconfig))

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line.strip())

    threading.Thread(target=read, daemon=True).start()
    try:
        assert lines.get(timeout=30) == "sync.kubectl-gitops.dev/good"  # the initial list
        w.gitops("suspend", "sync", "good")  # another process changes it: one event
        assert lines.get(timeout=15) == "sync.kubectl-gitops.dev/good"
        w.kubectl("label", SYNC_RESOURCE, "broken", "team=a", "--overwrite")  # enters the selection
        assert lines.get(timeout=15) == "sync.kubectl-gitops.dev/broken"
        assert proc.wait(timeout=40) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        proc.kill()
    assert time.monotonic() - started < 45
    assert lines.empty(), "no event printed twice, none for objects outside the selection"


def test_delete_dry_run_lists_exactly_what_would_be_pruned_and_changes_nothing(w: World) -> None:
    w.repo.write("apps/cm.yaml", docs(configmap("goes"), configmap("stays", annotations=PRUNE_DISABLED)))
    w.repo.commit("apps")
    w.setup({"app": {"path": "apps", "prune": True}})
    w.sync_ok("app")

    out = w.gitops("delete", "sync", "app", "--dry-run").stdout
    assert f"would-delete ConfigMap/{w.ns}/goes" in out
    assert f"would-skip ConfigMap/{w.ns}/stays" in out and "kubectl-gitops.dev/prune: disabled (from Git)" in out
    assert f"sync {w.ns}/app would be deleted after pruning 1 object(s) (dry run)" in out
    assert w.exists("configmap", "goes") and w.exists("configmap", "stays") and w.exists(SYNC_RESOURCE, "app")

    code, said = on_a_terminal(w, "delete", "sync", "app", answer="n\n")
    assert code != 0 and f"Delete Sync {w.ns}/app, pruning the 1 object(s) it applied? [y/N]" in said, said
    assert w.exists("configmap", "goes") and w.exists(SYNC_RESOURCE, "app")

    code, said = on_a_terminal(w, "delete", "sync", "app", "--yes", answer="")
    assert code == 0 and "[y/N]" not in said and f"pruned     ConfigMap/{w.ns}/goes" in said, said
    assert not w.exists("configmap", "goes") and w.exists("configmap", "stays")
    assert not w.exists(SYNC_RESOURCE, "app")


def test_uninstall_dry_run_names_what_goes_with_the_crds_and_a_no_keeps_everything(w: World) -> None:
    w.repo.write("apps/cm.yaml", docs(configmap("a")))
    w.repo.commit("apps")
    w.setup({"app": {"path": "apps"}})
    out = gitops("uninstall", "--dry-run", kubeconfig=w.kubeconfig).stdout
    assert "would-delete CustomResourceDefinition/syncs.kubectl-gitops.dev" in out, out
    assert f"{w.ns}/app" in out and "Sync(s)" in out and "(dry run)" in out
    assert "ValidatingWebhookConfiguration" not in out  # not installed here: not listed as a deletion

    code, said = on_a_terminal(w, "uninstall", answer="n\n")
    assert code != 0 and "Uninstall kubectl-gitops from" in said and "[y/N]" in said, said
    kubectl("get", "crd", "syncs.kubectl-gitops.dev", kubeconfig=w.kubeconfig)
    assert w.exists(SYNC_RESOURCE, "app")


def test_an_api_error_while_planning_is_recorded_as_plan_failed_with_the_api_servers_words(w: World) -> None:
    """The applier (a ServiceAccount with no rights at all) may not list ConfigMaps: the run stops at
    the plan, before anything is written, and says so under that step's reason."""
    w.repo.write("apps/cm.yaml", docs(configmap("a")))
    w.repo.commit("apps")
    w.setup({"app": {"path": "apps", "service_account": "nobody"}})
    run = w.sync("app")
    assert run.returncode == 1 and run.reason == "PlanFailed", run.output
    assert "forbidden" in run.message and "system:serviceaccount:" in run.message, run.message
    ready = w.condition("app", "Ready")
    assert ready["reason"] == "PlanFailed" and "forbidden" in ready["message"]
    assert w.sync_status("app")["history"][0]["result"] == "PlanFailed"
    assert not w.exists("configmap", "a")
