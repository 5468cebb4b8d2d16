"""A repository, and a GitSource, are untrusted input to the machine that syncs them.

Real Git repositories in tmp_path (crafted with `git hash-object --literally` where git itself
would refuse to write such trees), served as file:// or by a real `git http-backend` over TLS on
127.0.0.1; the fetcher runs the real git. Each test is an attack that worked before.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubectl_gitops.adapters import git as gitmod
from kubectl_gitops.adapters.git import GitCache, GitRef, SourcePolicy, redact
from kubectl_gitops.core.errors import SourceFailed
from kubectl_gitops.core.limits import Limits
from tests.unit.git_https_server import GitHttps, serve
from tests.unit.test_git_source import ENV, Upstream

USER, PASSWORD = "deploy", "machine-stored-pa55word"


def git(repo: Path, *args: str, data: bytes | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **ENV}, input=data, check=True,
                          capture_output=True)
    return done.stdout.decode().strip()


def raw_tree(repo: Path, entries: list[tuple[str, bytes, str]]) -> str:
    """Write a tree object exactly as given (names unchecked, order as given); returns its SHA."""
    body = b"".join(mode.encode() + b" " + name + b"\0" + bytes.fromhex(sha) for mode, name, sha in entries)
    return git(repo, "hash-object", "-t", "tree", "--literally", "-w", "--stdin", data=body)


def blob(repo: Path, text: bytes) -> str:
    return git(repo, "hash-object", "-w", "--stdin", data=text)


def commit_tree(upstream: Upstream, tree: str) -> str:
    sha = git(upstream.path, "commit-tree", tree, "-m", "crafted")
    git(upstream.path, "update-ref", "refs/heads/main", sha)
    return sha


def export(cache: GitCache, upstream: Upstream, dest: Path) -> list[str]:
    revision = cache.fetch(upstream.url, GitRef())
    return cache.export(upstream.url, revision.sha, dest)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path / "upstream")
    repo.commit("first", {"app/cm.yaml": "v: 1\n"})
    return repo


@pytest.fixture
def cache(tmp_path: Path) -> GitCache:
    return GitCache(tmp_path / "cache")


# --- 1. nothing from outside the repository ----------------------------------------------------


def test_a_link_through_other_links_cannot_climb_out(upstream: Upstream, cache: GitCache, tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text("stolen: true\n")
    (upstream.path / "a").symlink_to(".")          # harmless alone
    (upstream.path / "b").symlink_to("a/..")       # lexically "." ; really the parent of the export
    (upstream.path / "c").symlink_to("b/outside.yaml")
    (upstream.path / "ok").symlink_to("app/cm.yaml")
    upstream.commit("links", {})
    dest = tmp_path / "out" / "tree"
    written = export(cache, upstream, dest)
    assert "ok" in written and (dest / "ok").read_text() == "v: 1\n"
    for escaping in ("b", "c"):
        assert escaping not in written and not os.path.lexists(dest / escaping)
    root = os.path.realpath(dest)
    for path in written:
        real = os.path.realpath(dest / path)
        assert real == root or real.startswith(root + os.sep)


@pytest.mark.parametrize("name", [b"..", b".", b"a/../../escaped", b"/etc", b""])
def test_tree_entries_that_would_escape_the_export_are_refused(upstream: Upstream, cache: GitCache,
                                                               tmp_path: Path, name: bytes) -> None:
    evil = blob(upstream.path, b"kind: Evil\n")
    inner = raw_tree(upstream.path, [("100644", b"escaped.yaml", evil)])
    mode = "40000" if name in (b"..", b".", b"") else "100644"
    tree = raw_tree(upstream.path, [(mode, name, inner if mode == "40000" else evil)])
    commit_tree(upstream, tree)
    dest = tmp_path / "out" / "deep" / "tree"
    with pytest.raises(SourceFailed, match="escape the export" if name else "failed"):
        export(cache, upstream, dest)  # an empty name: git's own pack-objects refuses to send it
    assert not list((tmp_path / "out").rglob("escaped*"))
    assert not (tmp_path / "etc").exists()


def test_a_name_given_twice_is_refused(upstream: Upstream, cache: GitCache, tmp_path: Path) -> None:
    one, two = blob(upstream.path, b"a: 1\n"), blob(upstream.path, b"a: 2\n")
    commit_tree(upstream, raw_tree(upstream.path, [("100644", b"x.yaml", one), ("100644", b"x.yaml", two)]))
    with pytest.raises(SourceFailed, match="twice"):
        export(cache, upstream, tmp_path / "out")


def test_a_dot_git_entry_is_never_written(upstream: Upstream, cache: GitCache, tmp_path: Path) -> None:
    hook = blob(upstream.path, b"#!/bin/sh\necho pwned\n")
    hooks = raw_tree(upstream.path, [("100755", b"post-checkout", hook)])
    dot_git = raw_tree(upstream.path, [("40000", b"hooks", hooks)])
    cm = blob(upstream.path, b"v: 1\n")
    commit_tree(upstream, raw_tree(upstream.path, [("40000", b".GIT", dot_git), ("100644", b"cm.yaml", cm)]))
    written = cache.export(upstream.url, cache.fetch(upstream.url, GitRef()).sha, tmp_path / "out", ignore=[])
    assert written == ["cm.yaml"]


# --- 4. bounded: a git bomb, bytes, time ---------------------------------------------------------


def git_bomb(upstream: Upstream, levels: int = 9, fan: int = 10, suffix: str = "") -> str:
    """A few KB of objects whose tree has fan**levels files."""
    leaf = blob(upstream.path, b"x\n")
    tree = raw_tree(upstream.path, [("100644", f"f{i}{suffix}".encode(), leaf) for i in range(fan)])
    for _ in range(levels - 1):
        tree = raw_tree(upstream.path, [("40000", f"d{i}".encode(), tree) for i in range(fan)])
    return commit_tree(upstream, tree)


def test_a_git_bomb_stops_at_the_file_limit(upstream: Upstream, tmp_path: Path) -> None:
    git_bomb(upstream)  # 10**9 files
    cache = GitCache(tmp_path / "cache", SourcePolicy(limits=Limits(max_files=2000)))
    started = time.monotonic()
    with pytest.raises(SourceFailed) as err:
        export(cache, upstream, tmp_path / "out")
    assert "max_files=2000" in str(err.value) and "KUBECTL_GITOPS_MAX_FILES" in str(err.value)
    assert time.monotonic() - started < 30
    assert sum(1 for _ in (tmp_path / "out").rglob("*")) <= 2000


def test_a_git_bomb_stops_at_the_default_limit_too(upstream: Upstream, cache: GitCache, tmp_path: Path) -> None:
    # 10**6 files, over the default of 100000; ignored ones (*.png) count too, and cost no disk here.
    git_bomb(upstream, levels=6, fan=10, suffix=".png")
    with pytest.raises(SourceFailed, match="max_files=100000"):
        export(cache, upstream, tmp_path / "out")


def test_the_export_is_bounded_by_the_timeout(upstream: Upstream, tmp_path: Path) -> None:
    git_bomb(upstream)
    cache = GitCache(tmp_path / "cache", SourcePolicy(limits=Limits(max_files=10**9)))
    revision = cache.fetch(upstream.url, GitRef())
    started = time.monotonic()
    with pytest.raises(SourceFailed, match="took more than 1s"):
        cache.export(upstream.url, revision.sha, tmp_path / "out", timeout=1)
    assert time.monotonic() - started < 10


def test_bytes_per_export_are_bounded_and_the_file_named(upstream: Upstream, tmp_path: Path) -> None:
    upstream.commit("big", {"big/blob.yaml": "x" * 300_000})
    cache = GitCache(tmp_path / "cache", SourcePolicy(limits=Limits(max_bytes=100_000)))
    with pytest.raises(SourceFailed, match=r"big/blob.yaml: .*max_bytes=100000.*KUBECTL_GITOPS_MAX_BYTES"):
        export(cache, upstream, tmp_path / "out")


def test_limits_come_from_the_environment() -> None:
    policy = SourcePolicy.from_env({"KUBECTL_GITOPS_MAX_FILES": "7", "KUBECTL_GITOPS_ALLOW_FILE_URLS": "false"})
    assert policy.limits.max_files == 7 and policy.allow_file_urls is False
    with pytest.raises(SourceFailed, match="KUBECTL_GITOPS_MAX_BYTES"):
        SourcePolicy.from_env({"KUBECTL_GITOPS_MAX_BYTES": "lots"})


# --- 2. no ambient authority --------------------------------------------------------------------


@pytest.fixture
def private_host(tmp_path: Path) -> Iterator[GitHttps]:
    repos = tmp_path / "repos"
    repos.mkdir()
    Upstream(repos / "app").commit("first", {"cm.yaml": "v: 1\n"})
    with serve(repos, tmp_path, username=USER, password=PASSWORD, token="unused-token") as server:
        yield server


@pytest.fixture
def logged_in_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, private_host: GitHttps) -> Path:
    """This machine's user is logged in to the host: a credential store in ~/.gitconfig and an SSH agent."""
    home = tmp_path / "operator-home"
    home.mkdir()
    host = private_host.url_base.removeprefix("https://")
    (home / ".git-credentials").write_text(f"https://{USER}:{PASSWORD}@{host}\n")
    (home / ".gitconfig").write_text("[credential]\n\thelper = store\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_SSL_CAINFO", str(private_host.ca_file))  # trust is passed on; identity is not
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    return home


def test_the_machines_stored_credentials_are_not_used(logged_in_machine: Path, private_host: GitHttps,
                                                      cache: GitCache) -> None:
    url = f"{private_host.url_base}/app"
    # Control: plain git on this machine does get in with the stored credentials.
    control = subprocess.run(["git", "ls-remote", url], capture_output=True, text=True, check=False,
                             env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    assert control.returncode == 0 and "refs/heads/main" in control.stdout, control.stderr
    assert "Basic" in private_host.requests
    private_host.requests.clear()
    with pytest.raises(SourceFailed) as err:
        cache.fetch(url, GitRef())  # a GitSource without secretRef
    assert "Basic" not in private_host.requests
    assert PASSWORD not in str(err.value)


def test_ssh_gets_no_agent_no_config_and_no_keys_of_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 cache: GitCache) -> None:
    bin_dir, record = tmp_path / "bin", tmp_path / "ssh-call.json"
    bin_dir.mkdir()
    fake = bin_dir / "ssh"
    fake.write_text("#!/usr/bin/env python3\nimport json, os, sys\n"
                    f"json.dump({{'argv': sys.argv[1:], 'env': dict(os.environ)}}, open({str(record)!r}, 'w'))\n"
                    "sys.exit(255)\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(tmp_path / "agent.sock"))
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i /root/.ssh/id_ed25519")
    with pytest.raises(SourceFailed):
        cache.fetch("ssh://git@127.0.0.1:1/org/repo.git", GitRef(), timeout=10)
    call = json.loads(record.read_text())
    argv, env = call["argv"], call["env"]
    assert argv[argv.index("-F") + 1] == "/dev/null"
    for option in ("IdentityAgent=none", "IdentitiesOnly=yes", "PubkeyAuthentication=no", "BatchMode=yes"):
        assert option in argv
    assert "/root/.ssh/id_ed25519" not in argv
    assert not env.get("SSH_AUTH_SOCK")
    assert env["HOME"] != os.path.expanduser("~") and "kubectl-gitops-git-" in env["HOME"]  # emptied, removed
    assert env["GIT_CONFIG_GLOBAL"] == os.devnull and env["GIT_CONFIG_NOSYSTEM"] == "1"


def test_file_urls_can_be_refused_by_policy(upstream: Upstream, tmp_path: Path) -> None:
    cache = GitCache(tmp_path / "cache", SourcePolicy(allow_file_urls=False))
    for url in (upstream.url, str(upstream.path)):
        with pytest.raises(SourceFailed, match="not allowed on this machine"):
            cache.fetch(url, GitRef())
    assert GitCache(tmp_path / "cache2").fetch(upstream.url, GitRef()).sha  # the CLI default allows them


def test_a_file_url_never_points_into_the_cache(upstream: Upstream, cache: GitCache, tmp_path: Path) -> None:
    cache.fetch(upstream.url, GitRef())
    cached = cache.path_for(upstream.url)
    with pytest.raises(SourceFailed, match="own cache"):
        cache.fetch(cached.as_uri(), GitRef())
    outer = GitCache(tmp_path / "other-cache", SourcePolicy(forbidden_dirs=(tmp_path / "cache",)))
    with pytest.raises(SourceFailed, match="own cache"):
        outer.fetch(cached.as_uri(), GitRef())


def test_credentials_are_not_sent_over_plain_http(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/repo.git"
    cache = GitCache(tmp_path / "cache")
    try:
        with pytest.raises(SourceFailed, match=r"plain http://.*spec\.insecure"):
            cache.fetch(url, GitRef(), gitmod.Credentials(username="u", password="pw-12345"))
        with pytest.raises(SourceFailed, match="plain http://"):
            cache.fetch(url.replace("http://", "http://u:pw-12345@"), GitRef())
        assert listener.accept  # nothing connected: the refusal came first
        listener.settimeout(0.1)
        with pytest.raises(TimeoutError):
            listener.accept()
        with caplog.at_level(logging.WARNING), pytest.raises(SourceFailed):
            cache.fetch(url, GitRef(), gitmod.Credentials(username="u", password="pw-12345"), timeout=1,
                        insecure=True)
        assert any("plain http://" in r.getMessage() for r in caplog.records)
    finally:
        listener.close()


# --- 5. credentials redacted in every form, on disk too ----------------------------------------


@pytest.mark.parametrize(("url", "secret"), [
    ("https://ghp_T0KENvalue123@127.0.0.1:{port}/o/r.git", "ghp_T0KENvalue123"),
    ("https://user:pa55-w0rd-x@127.0.0.1:{port}/o/r.git", "pa55-w0rd-x"),
    ("https://127.0.0.1:{port}/o/r.git?private_token=qu3ry-t0ken-x", "qu3ry-t0ken-x"),
])
def test_url_credentials_are_redacted_in_messages_and_the_cache(tmp_path: Path, url: str, secret: str) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: the fetch fails fast
    url = url.format(port=port)
    cache = GitCache(tmp_path / "cache")
    with pytest.raises(SourceFailed) as err:
        cache.fetch(url, GitRef(), timeout=5)
    assert secret not in str(err.value) and "***" in str(err.value)
    for file in (tmp_path / "cache").rglob("*"):
        if file.is_file():
            assert secret.encode() not in file.read_bytes(), file
        assert secret not in file.name
    assert secret not in redact(f"fatal: unable to access '{url}/'")


# --- 6. every failure is a clean SourceFailed -------------------------------------------------


@pytest.mark.parametrize("ref", [GitRef(branch="ma\x00in"), GitRef(tag="v1\x00"), GitRef(commit="a" * 39 + "\x00")])
def test_nul_bytes_in_refs_are_a_clean_failure(upstream: Upstream, cache: GitCache, ref: GitRef) -> None:
    with pytest.raises(SourceFailed, match="NUL"):
        cache.fetch(upstream.url, ref)


def test_nul_byte_in_the_url_is_a_clean_failure(upstream: Upstream, cache: GitCache) -> None:
    with pytest.raises(SourceFailed, match="NUL"):
        cache.fetch(upstream.url + "\x00x", GitRef())


def test_an_unusable_cache_directory_is_a_clean_failure(upstream: Upstream, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    cache = GitCache(blocker / "cache")
    with pytest.raises(SourceFailed) as err:
        cache.fetch(upstream.url, GitRef())
    assert str(blocker / "cache") in str(err.value)


def test_a_corrupted_cache_is_recloned_with_a_warning(upstream: Upstream, cache: GitCache,
                                                      caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    first = cache.fetch(upstream.url, GitRef())
    git_dir = cache.path_for(upstream.url)
    for obj in (git_dir / "objects").rglob("*"):
        if obj.is_file():
            obj.chmod(0o644)
            obj.write_bytes(b"garbage")
    newer = upstream.commit("second", {"app/cm.yaml": "v: 2\n"})
    with caplog.at_level(logging.WARNING):
        again = cache.fetch(upstream.url, GitRef())
    assert again.sha == newer and first.sha != newer
    assert any("corrupted" in r.getMessage() and str(git_dir) in r.getMessage() for r in caplog.records)
    assert cache.export(upstream.url, again.sha, tmp_path / "out") == ["app/cm.yaml"]


def test_a_cache_with_a_broken_head_is_recloned(upstream: Upstream, cache: GitCache) -> None:
    cache.fetch(upstream.url, GitRef())
    (cache.path_for(upstream.url) / "HEAD").write_text("not a ref at all\n")
    assert cache.fetch(upstream.url, GitRef()).sha == upstream.git("rev-parse", "HEAD")
