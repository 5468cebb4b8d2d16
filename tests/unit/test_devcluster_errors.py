"""Bad input for the dev control plane that needs no cluster: no Go, a failing module download,
a stale state file, a port in use. Each must say what happened and what to do."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kubectl_gitops.core.errors import DevClusterError
from kubectl_gitops.devcluster import build, cluster, processes


def test_no_go_toolchain_says_how_to_get_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(build.shutil, "which", lambda _name: None)
    with pytest.raises(DevClusterError, match=r"`go` is not on PATH: install Go 1\.26"):
        build.ensure_built(lambda _m: None, root=tmp_path)


def test_failing_module_download_is_named_with_a_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # GOPROXY=off and an empty module cache: the download fails at once, as with no network.
    monkeypatch.setenv("GOPROXY", "off")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "modcache"))
    monkeypatch.setenv("GOFLAGS", "-mod=mod")
    progress: list[str] = []
    with pytest.raises(DevClusterError) as err:
        build.ensure_built(progress.append, root=tmp_path / "cache")
    text = str(err.value)
    assert "resolving etcd modules failed" in text
    assert "Go module proxy is reachable" in text
    assert progress and progress[0].startswith("building etcd")
    assert not build.binaries(tmp_path / "cache").etcd.exists(), "no half-built binary is cached"


def test_stale_state_without_processes_reports_not_running(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECTL_GITOPS_DEV_HOME", str(tmp_path))
    home = tmp_path / "old"
    home.mkdir()
    dead = {"name": "etcd", "pid": 999_999_999, "binary": "/nonexistent/etcd", "log": str(home / "etcd.log")}
    (home / "state.json").write_text(json.dumps({"name": "old", "ports": {"apiserver": 1}, "procs": [dead]}))
    st = cluster.status("old")
    assert st.exists and not st.healthy
    assert [c.running for c in st.components] == [False]


def test_garbage_state_file_is_treated_as_absent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECTL_GITOPS_DEV_HOME", str(tmp_path))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "state.json").write_text("{not json")
    assert cluster.load("junk") is None
    assert not cluster.status("junk").exists


def test_port_in_use_is_refused_before_anything_starts() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        with pytest.raises(DevClusterError, match=f"port {port} on 127.0.0.1 is in use"):
            cluster._allocate_ports(port)


def test_a_recycled_pid_is_never_ours(tmp_path: Path) -> None:
    import os

    me = processes.Proc("etcd", os.getpid(), "/some/other/binary", str(tmp_path / "log"))
    assert processes.alive(me) is False  # this pid runs python, not the recorded binary
    argv0 = Path(f"/proc/{os.getpid()}/cmdline").read_bytes().split(b"\0")[0].decode()
    assert processes.alive(processes.Proc("python", os.getpid(), argv0, str(tmp_path / "log"))) is True


def test_exit_message_points_at_the_error_lines(tmp_path: Path) -> None:
    log = tmp_path / "kube-apiserver.log"
    log.write_text("I0001 starting\nW0001 noise\nE0001 run.go:72] \"command failed\" err=\"bind: address already "
                   "in use\"\nI0001 exiting\n")
    proc = processes.Proc("kube-apiserver", 1, "/x", str(log))
    message = cluster._exit_message(proc)
    assert "command failed" in message and "I0001 starting" not in message
    assert "a port it needs is taken" in message
