"""The API server dies or freezes in the middle of a sync: the sync fails clearly, in bounded time,
prunes nothing, and the next sync after recovery completes with nothing lost.

These tests stop and kill kube-apiserver, so they run on a PRIVATE dev control plane ("apidown"),
never on the session's shared one. Every process they stop is continued again, whatever happens.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.gitrepo import GitRepo
from tests.e2e.syncworld import World, configmap, docs
from tests.helpers import gitops, kubectl, plugin_env

CLUSTER = "apidown"
OBJECTS = 300
REQUEST_TIMEOUT = 3.0
# A frozen API server must fail the sync in a small multiple of the request timeout (a few requests
# in flight, then the status write), not once per object in the change set.
FROZEN_BOUND = 20.0


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[str]:
    up = gitops("dev", "up", "--name", CLUSTER, check=False, timeout=900)
    if up.returncode != 0:
        pytest.fail(f"the private dev control plane did not start:\n{up.output}", pytrace=False)
    try:
        config = gitops("dev", "kubeconfig", "--name", CLUSTER, "--path").stdout.strip()
        gitops("install", "--no-webhook", kubeconfig=config)
        yield config
    finally:
        gitops("dev", "down", "--name", CLUSTER, check=False)


@pytest.fixture
def w(private_cluster: str, tmp_path: Path) -> World:
    ns = f"apidown-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns, kubeconfig=private_cluster)
    return World(private_cluster, ns, GitRepo(tmp_path / "repo"))


def components() -> dict[str, int]:
    out = gitops("dev", "status", "--name", CLUSTER, "-o", "json", check=False)
    return {c["name"]: int(c["pid"]) for c in json.loads(out.stdout)["components"]}


def write_configmaps(repo: GitRepo, prefix: str, count: int, version: str) -> None:
    for i in range(count):
        repo.write(f"apps/{prefix}-{i:03}.yaml", docs(configmap(f"{prefix}-{i:03}", {"version": version})))


class BackgroundSync:
    """`kubectl gitops sync NAME --request-timeout 3s` running in the background.

    Its stderr is a pseudo-terminal, so the CLI draws its progress bar ("[###...] 10/300 objects",
    every ten objects applied): the test can strike while objects are being written, not at a
    guessed moment that a faster machine (or a faster applier) would turn into "before" or "after".
    """

    def __init__(self, w: World, name: str) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            ["kubectl", "gitops", "-n", w.ns, "sync", name, "--request-timeout", f"{REQUEST_TIMEOUT:.0f}s"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
            env=plugin_env(w.kubeconfig, PYTHONFAULTHANDLER="1"))  # SIGABRT then prints every stack
        os.close(slave)
        self.stderr = bytearray()
        # Drain the terminal all the time: a full pty buffer would block the CLI on a write.
        self.reader = threading.Thread(target=self._drain, args=(master,), daemon=True)
        self.reader.start()

    def _drain(self, master: int) -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the CLI exited and closed the terminal
                break
            if not chunk:
                break
            self.stderr += chunk
        os.close(master)

    def wait_until_applying(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while b" objects" not in self.stderr:
            assert self.proc.poll() is None, f"the sync ended before it applied anything: {self.stderr!r}"
            assert time.monotonic() < deadline, f"the sync did not start applying: {self.stderr!r}"
            time.sleep(0.01)

    def finish(self, timeout: float) -> tuple[int, str]:
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as err:
            self.proc.send_signal(signal.SIGABRT)  # faulthandler: where did it hang?
            try:
                out, _ = self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
            self.reader.join(5)
            said = (out + bytes(self.stderr)).decode(errors="replace")[-6000:]
            raise AssertionError(f"the sync did not give up within {timeout:.0f}s:\n{said}") from err
        self.reader.join(5)
        return self.proc.returncode, (out + bytes(self.stderr)).decode(errors="replace")


def error_line(output: str) -> str:
    """The CLI's one-line verdict ("error: ..."), without the progress bar around it."""
    at = output.rfind("error: ")
    return output[at:].splitlines()[0] if at >= 0 else output[-1500:]


def names_with(w: World, prefix: str) -> set[str]:
    return {n for n in w.names("configmap") if n.startswith(prefix)}


def test_frozen_api_server_fails_the_sync_in_bounded_time_and_prunes_nothing(w: World) -> None:
    write_configmaps(w.repo, "old", 5, "1")
    w.repo.commit("five old objects")
    w.setup({"app": {"path": "apps", "prune": True}})
    w.sync_ok("app")

    for i in range(5):
        w.repo.remove(f"apps/old-{i:03}.yaml")
    write_configmaps(w.repo, "cm", OBJECTS, "2")
    new_commit = w.repo.commit(f"drop the old ones, add {OBJECTS}")

    apiserver = components()["kube-apiserver"]
    sync = BackgroundSync(w, "app")
    sync.wait_until_applying()
    started = time.monotonic()
    os.kill(apiserver, signal.SIGSTOP)
    try:
        code, output = sync.finish(timeout=120)
        elapsed = time.monotonic() - started
    finally:
        os.kill(apiserver, signal.SIGCONT)

    assert code != 0, f"the sync finished before the API server froze (raise OBJECTS):\n{output[-1000:]}"
    assert code == 1, f"the sync should fail while the API server is frozen:\n{output[-3000:]}"
    assert "unreachable" in error_line(output) and "timed out" in error_line(output), output[-3000:]
    assert "Traceback" not in output

    kubectl("get", "--raw", "/readyz", kubeconfig=w.kubeconfig)
    assert names_with(w, "old") == {f"old-{i:03}" for i in range(5)}, "nothing may be pruned after a failed apply"

    run = w.sync_ok("app")
    assert run.data["revision"] == f"main@sha1:{new_commit}"
    assert names_with(w, "cm") == {f"cm-{i:03}" for i in range(OBJECTS)}
    assert names_with(w, "old") == set()
    assert w.inventory("app") == {w.cm_id(f"cm-{i:03}") for i in range(OBJECTS)}
    assert w.sync_status("app")["lastAppliedRevision"] == f"main@sha1:{new_commit}"
    # Checked last, so a slow give-up does not hide whether recovery works.
    assert elapsed < FROZEN_BOUND, (f"a sync against a frozen API server with --request-timeout "
                                    f"{REQUEST_TIMEOUT:.0f}s took {elapsed:.1f}s to give up "
                                    f"(bound {FROZEN_BOUND:.0f}s):\n{error_line(output)[:1500]}")


def test_killed_api_server_fails_the_sync_and_dev_up_heals_without_losing_data(w: World) -> None:
    write_configmaps(w.repo, "first", OBJECTS, "1")
    first_commit = w.repo.commit(f"{OBJECTS} objects")
    w.setup({"app": {"path": "apps", "prune": True}})
    w.sync_ok("app")

    write_configmaps(w.repo, "second", OBJECTS, "1")
    second_commit = w.repo.commit(f"{OBJECTS} more")

    before = components()
    sync = BackgroundSync(w, "app")
    sync.wait_until_applying()
    os.kill(before["kube-apiserver"], signal.SIGKILL)
    code, output = sync.finish(timeout=60)
    assert code != 0, f"the sync finished before the API server died (raise OBJECTS):\n{output[-1000:]}"
    assert code == 1, f"the sync should fail when the API server dies:\n{output[-3000:]}"
    assert "unreachable" in error_line(output), output[-3000:]
    assert "Traceback" not in output

    dead = gitops("dev", "status", "--name", CLUSTER, check=False)
    assert dead.returncode == 1 and "DEAD" in dead.stdout, dead.output

    healed = gitops("dev", "up", "--name", CLUSTER, timeout=300)
    after = components()
    assert after["etcd"] == before["etcd"], "healing must keep etcd (and its data) running"
    assert after["kube-apiserver"] != before["kube-apiserver"], healed.output
    assert {k: v for k, v in after.items() if k != "kube-apiserver"} == \
        {k: v for k, v in before.items() if k != "kube-apiserver"}, "only the dead component is restarted"
    gitops("dev", "status", "--name", CLUSTER)

    # Nothing applied before the crash was lost: the objects, the Sync and its record survive.
    assert names_with(w, "first") == {f"first-{i:03}" for i in range(OBJECTS)}
    assert w.sync_status("app")["lastAppliedRevision"] == f"main@sha1:{first_commit}"

    run = w.sync_ok("app")
    assert run.data["revision"] == f"main@sha1:{second_commit}"
    assert names_with(w, "first") == {f"first-{i:03}" for i in range(OBJECTS)}
    assert names_with(w, "second") == {f"second-{i:03}" for i in range(OBJECTS)}
    assert w.inventory("app") == {w.cm_id(f"{p}-{i:03}") for p in ("first", "second") for i in range(OBJECTS)}
