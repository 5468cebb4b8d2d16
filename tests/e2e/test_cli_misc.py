"""events, stats, wait, create secret git, export and completion, end to end on the dev control plane.

Real Git (file:// and a real HTTPS server with auth), the real API server, the real kubectl (at the
server's version for completion, since plugin completion is kubectl's own feature). Claims are
checked on the cluster, not only on exit codes.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubectl_gitops.devcluster.build import ensure_kubectl
from tests.e2e.syncworld import SOURCE_RESOURCE, SYNC_RESOURCE, World, configmap, docs
from tests.helpers import BIN, gitops, kubectl, plugin_env, run
from tests.unit.git_https_server import serve
from tests.unit.test_git_source import Upstream


def good_and_bad(w: World) -> None:
    """Sync `app` Ready, Sync `bad` failing (its path is missing), both synced once."""
    w.repo.write("apps/cm.yaml", docs(configmap("app")))
    w.repo.commit("v1")
    w.setup({"app": {"path": "apps", "prune": True}, "bad": {"path": "missing"}})
    w.sync_ok("app")
    assert w.sync("bad").reason == "BuildFailed"


# ---------------------------------------------------------------------------------- events


def test_events_lists_ours_sorted_and_filters_by_name(w: World) -> None:
    good_and_bad(w)
    w.kubectl("create", "configmap", "unrelated")  # its Events (none) and other kinds' never show
    table = w.gitops("events").stdout.splitlines()
    assert table[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    rows = [line.split(None, 4) for line in table[1:]]
    assert [(r[1], r[2], r[3]) for r in rows] == [("Normal", "ReconciliationSucceeded", "Sync/app"),
                                                  ("Warning", "BuildFailed", "Sync/bad")]
    only = w.gitops("events", "bad", "-o", "json").stdout
    items = json.loads(only)["items"]
    assert [(i["kind"], i["regarding"]["name"], i["reason"]) for i in items] == [("Event", "bad", "BuildFailed")]
    missing = w.gitops("events", "nope", check=False)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"error: no Sync or GitSource {w.ns}/nope"]


def test_events_watch_prints_new_events_as_they_happen(w: World) -> None:
    good_and_bad(w)
    args = ["kubectl", "gitops", "-n", w.ns, "events", "app", "--watch"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=plugin_env(w.kubeconfig))
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        lines.extend(iter(proc.stdout.readline, ""))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 30
        while len(lines) < 2 and time.monotonic() < deadline:  # the header and the first sync's Event
            time.sleep(0.1)
        assert len(lines) == 2, lines
        w.repo.write("apps/cm.yaml", docs(configmap("app", {"v": "2"})))
        second = w.repo.commit("v2")
        w.sync_ok("app")
        while not any(second in line for line in lines) and time.monotonic() < deadline + 30:
            time.sleep(0.1)
        assert any(second in line and "ReconciliationSucceeded" in line for line in lines), lines
        assert proc.poll() is None  # still watching
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# ---------------------------------------------------------------------------------- stats


def test_stats_counts_by_state(w: World) -> None:
    good_and_bad(w)
    w.gitops("suspend", "sync", "bad")
    w.setup({"never": {"path": "apps"}})
    w.kubectl("patch", SYNC_RESOURCE, "app", "--type=merge", "-p", json.dumps({"spec": {"revision": "a" * 40}}))
    data = json.loads(w.gitops("stats", "-o", "json").stdout)
    kinds = {k["kind"]: k for k in data["kinds"]}
    assert kinds["Sync"] == {"kind": "Sync", "total": 3, "ready": 1, "failing": 0, "pending": 1, "suspended": 1,
                             "pinned": 1}
    assert kinds["GitSource"]["ready"] == 1 and kinds["GitSource"]["total"] == 1
    table = w.gitops("stats").stdout.splitlines()
    assert table[0].split() == ["KIND", "TOTAL", "READY", "FAILING", "PENDING", "SUSPENDED", "PINNED"]
    assert table[2].split() == ["Sync", "3", "1", "0", "1", "1", "1"]


# ---------------------------------------------------------------------------------- wait


def test_wait_for_ready_needs_the_current_generation(w: World) -> None:
    good_and_bad(w)
    assert w.gitops("wait", "app", "--for", "ready", "--timeout", "10s").returncode == 0
    w.kubectl("patch", SYNC_RESOURCE, "app", "--type=merge", "-p", '{"spec":{"interval":"11m"}}')
    started = time.monotonic()
    late = w.gitops("wait", "app", "--timeout", "2s", check=False)
    assert late.returncode == 1 and 2 <= time.monotonic() - started < 30
    assert late.stderr.strip().splitlines() == [
        f"error: timed out after 2s waiting for Sync {w.ns}/app to be ready: generation 2 not reconciled yet "
        "(observed 1)"]
    waiting = subprocess.Popen(["kubectl", "gitops", "-n", w.ns, "wait", "app", "--timeout", "60s"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=plugin_env(w.kubeconfig))
    time.sleep(1)
    w.sync_ok("app")
    out, err = waiting.communicate(timeout=90)
    assert waiting.returncode == 0, err
    assert out.startswith(f"Sync {w.ns}/app is ready: Ready=True ReconciliationSucceeded")


def test_wait_fails_fast_with_the_reason(w: World) -> None:
    good_and_bad(w)
    healthy = w.gitops("wait", "app", "--for", "healthy", "--timeout", "1m", check=False)
    assert healthy.returncode == 1 and "has no health checks" in healthy.stderr
    w.setup({"loop": {"path": "apps", "depends_on": ["loop"]}})
    w.sync("loop")
    started = time.monotonic()
    stalled = w.gitops("wait", "loop", "--timeout", "1m", check=False)
    assert stalled.returncode == 1 and time.monotonic() - started < 30
    assert f"Sync {w.ns}/loop will not become ready: Stalled: DependencyCycle" in stalled.stderr
    missing = w.gitops("wait", "nope", check=False)
    assert missing.returncode == 1 and missing.stderr.strip() == f"error: Sync {w.ns}/nope not found"


# ---------------------------------------------------------------------------------- create secret git

USER, PASSWORD, TOKEN = "deploy", "e2e-basic-pass", "e2e-bearer-token"


def test_create_secret_git_is_what_an_https_source_consumes(installed: str, namespace: str, tmp_path: Path) -> None:
    repos = tmp_path / "repos"
    repos.mkdir()
    upstream = Upstream(repos / "app")
    sha = upstream.commit("app", {"apps/cm.yaml": docs(configmap("over-https", {"via": "https"}))})
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")

    def ns(*args: str, check: bool = True) -> str:
        return gitops("-n", namespace, *args, kubeconfig=installed, check=check).output

    with serve(repos, tmp_path, username=USER, password=PASSWORD, token=TOKEN) as host:
        url = f"{host.url_base}/app"
        ns("create", "secret", "git", "basic", "--url", url, "--username", USER, "--password", PASSWORD,
           "--ca-file", str(host.ca_file))
        ns("create", "secret", "git", "token", "--url", url, "--bearer-token-file", str(token_file),
           "--ca-file", str(host.ca_file))
        keys = json.loads(kubectl("-n", namespace, "get", "secret", "basic", "-o", "json", kubeconfig=installed).stdout)
        assert sorted(keys["data"]) == ["ca.crt", "password", "username"]
        for secret in ("basic", "token"):
            ns("create", "source", secret, "--url", url, "--secret", secret)
            ns("create", "sync", secret, "--source", secret, "--path", "apps")
            out = gitops("-n", namespace, "sync", secret, "-o", "json", kubeconfig=installed)
            assert json.loads(out.stdout)["revision"] == f"main@sha1:{sha}", out.output
        assert {"Basic", "Bearer"} <= set(host.requests)
        ns("create", "secret", "git", "basic", "--url", url, "--bearer-token-file", str(token_file))
        keys = json.loads(kubectl("-n", namespace, "get", "secret", "basic", "-o", "json", kubeconfig=installed).stdout)
        assert sorted(keys["data"]) == ["bearerToken"]  # switching methods leaves no stale credential behind
    got = kubectl("-n", namespace, "get", "configmap", "over-https", "-o", "jsonpath={.data.via}", kubeconfig=installed)
    assert got.stdout == "https"


# ---------------------------------------------------------------------------------- export


@pytest.fixture
def fresh_namespace(installed: str) -> Iterator[str]:
    name = f"export-copy-{uuid.uuid4().hex[:5]}"
    kubectl("create", "namespace", name, kubeconfig=installed)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", kubeconfig=installed, check=False)


def test_export_round_trip_recreates_equivalent_objects(w: World, fresh_namespace: str) -> None:
    w.repo.write("apps/cm.yaml", docs(configmap("app")))
    w.repo.commit("v1")
    w.create_source("src", "--branch", "main")
    w.create_sync("app", "--path", "apps", "--prune", "--substitute", "K=V", "--drift-guard", "warn")
    w.kubectl("label", SYNC_RESOURCE, "app", "team=a")
    w.sync_ok("app")
    exported = w.gitops("export", "source", "--all").stdout + w.gitops("export", "sync", "app").stdout
    objs = [d for d in yaml.safe_load_all(exported) if d]
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [("GitSource", "src"), ("Sync", "app")]
    for obj in objs:
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
        assert set(obj["metadata"]) <= {"name", "namespace", "labels", "annotations"}
        obj["metadata"]["namespace"] = fresh_namespace
    assert objs[1]["metadata"]["labels"] == {"team": "a"}
    kubectl("apply", "-f", "-", input=docs(*objs), kubeconfig=w.kubeconfig)
    for resource, name in ((SOURCE_RESOURCE, "src"), (SYNC_RESOURCE, "app")):
        old = w.get(resource, name)
        new = json.loads(kubectl("-n", fresh_namespace, "get", resource, name, "-o", "json",
                                 kubeconfig=w.kubeconfig).stdout)
        assert old is not None and new["spec"] == old["spec"]
        assert new["metadata"].get("labels") == old["metadata"].get("labels")
    again = gitops("-n", fresh_namespace, "export", "sync", "app", kubeconfig=w.kubeconfig).stdout
    assert again == w.gitops("export", "sync", "app").stdout.replace(f"namespace: {w.ns}\n",
                                                                     f"namespace: {fresh_namespace}\n")
    bad = w.gitops("export", "sync", "nope", check=False)
    assert bad.returncode == 1 and bad.stderr.strip() == f"error: Sync {w.ns}/nope not found"


# ---------------------------------------------------------------------------------- completion


def test_sync_names_complete_through_kubectl(w: World) -> None:
    good_and_bad(w)
    real = str(ensure_kubectl(lambda _line: None))
    out = run([real, "__complete", "gitops", "-n", w.ns, "get", "sync", ""], kubeconfig=w.kubeconfig)
    assert out.stdout.splitlines() == ["app", "bad", ":4"], out.output
    out = run([real, "__complete", "gitops", "-n", w.ns, "history", "a"], kubeconfig=w.kubeconfig)
    assert out.stdout.splitlines() == ["app", ":4"], out.output
    out = run([real, "__complete", "gitops", "-n", w.ns, "export", "source", ""], kubeconfig=w.kubeconfig)
    assert out.stdout.splitlines() == ["src", ":4"], out.output
    out = run([real, "__complete", "gitops", "-n", "test-sync-names"], kubeconfig=w.kubeconfig)
    lines = out.stdout.splitlines()  # -n completes the cluster's namespaces
    assert w.ns in lines and lines[-1] == ":4" and all(n.startswith("test-sync-names") for n in lines[:-1]), lines


def test_kubectl_bash_completion_reaches_the_plugin(w: World, tmp_path: Path) -> None:
    """kubectl's own bash script, run in bash: `kubectl gitops -n NS get sync <TAB>` lists the Syncs.
    bash-completion's `_get_comp_words_by_ref` (not installed here) and the `compopt` builtin (only
    usable inside a real completion) get minimal stand-ins; everything else is kubectl's script."""
    good_and_bad(w)
    real = ensure_kubectl(lambda _line: None)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "kubectl").symlink_to(real)
    stand_ins = ('_get_comp_words_by_ref() { cur="${COMP_WORDS[COMP_CWORD]}"; prev="${COMP_WORDS[COMP_CWORD-1]}"; '
                 'words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }; compopt() { :; }')

    def tab(*words: str) -> list[str]:
        quoted = " ".join(f"'{x}'" for x in ("kubectl", *words))
        program = (f"{stand_ins}\nsource <(kubectl completion bash)\nCOMP_WORDS=({quoted}); "
                   f"COMP_CWORD={len(words)}; COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}\n"
                   "__start_kubectl\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
        env = {"PATH": f"{bindir}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        done = run(["bash", "--norc", "--noprofile", "-c", program], kubeconfig=w.kubeconfig, **env)
        return [line for line in done.stdout.splitlines() if line]

    assert tab("gitops", "-n", w.ns, "get", "sync", "") == ["app", "bad"]
    assert tab("gitops", "rollb") == ["rollback"]
