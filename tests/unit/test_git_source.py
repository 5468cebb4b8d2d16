"""The git adapter against real repositories made in tmp_path and served as file:// (and a local HTTP stub).

No cluster and no network beyond 127.0.0.1; every test runs in well under a second except the
timeout test, which waits for its one-second bound.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.adapters import git as gitmod
from kubectl_gitops.adapters.git import Credentials, GitCache, GitRef, Revision, compile_ignore
from kubectl_gitops.core.errors import SourceFailed

ENV = {
    "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


class Upstream:
    """A real non-bare repository standing in for the remote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = path.as_uri()
        self.git("init", "-q", "-b", "main", str(path), cwd=path.parent)

    def git(self, *args: str, cwd: Path | None = None) -> str:
        env = {**os.environ, **ENV}
        done = subprocess.run(["git", *args], cwd=cwd or self.path, env=env, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def commit(self, message: str, files: dict[str, str]) -> str:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path / "upstream")
    repo.commit("first", {"app/deploy.yaml": "v: 1\n"})
    return repo


@pytest.fixture
def cache(tmp_path: Path) -> GitCache:
    return GitCache(tmp_path / "cache")


def commit_in_cache(cache: GitCache, url: str, sha: str) -> bool:
    done = subprocess.run(["git", f"--git-dir={cache.path_for(url)}", "cat-file", "-e", f"{sha}^{{commit}}"],
                          capture_output=True, check=False)
    return done.returncode == 0


def object_files(git_dir: Path) -> dict[str, int]:
    """Every object file (loose or pack) by path, with its inode: a re-clone would give new ones."""
    return {str(p.relative_to(git_dir)): p.stat().st_ino for p in (git_dir / "objects").rglob("*")
            if p.is_file() and p.name != "marker" and "info" not in p.parts}


# --- ref kinds ----------------------------------------------------------------------------


def test_branch_resolves_to_its_tip_in_flux_revision_format(upstream: Upstream, cache: GitCache) -> None:
    sha = upstream.commit("second", {"app/deploy.yaml": "v: 2\n"})
    revision = cache.fetch(upstream.url, GitRef(branch="main"))
    assert isinstance(revision, Revision)
    assert revision.sha == sha and len(revision.sha) == 40
    assert revision.ref == f"main@sha1:{sha}" == str(revision)
    assert revision.message == "second"
    assert revision.author == "Ada <ada@example.com>"
    assert revision.time.tzinfo is not None


def test_no_ref_means_branch_main(upstream: Upstream, cache: GitCache) -> None:
    assert cache.fetch(upstream.url, GitRef()).ref.startswith("main@sha1:")


def test_other_branch(upstream: Upstream, cache: GitCache) -> None:
    upstream.git("checkout", "-q", "-b", "staging")
    sha = upstream.commit("on staging", {"x.yaml": "a: 1\n"})
    upstream.git("checkout", "-q", "main")
    revision = cache.fetch(upstream.url, GitRef(branch="staging"))
    assert revision.ref == f"staging@sha1:{sha}"
    assert cache.fetch(upstream.url, GitRef(branch="main")).sha != sha


def test_lightweight_and_annotated_tags_resolve_to_the_commit(upstream: Upstream, cache: GitCache) -> None:
    first = upstream.git("rev-parse", "HEAD")
    upstream.git("tag", "light")
    upstream.commit("second", {"b.yaml": "b: 1\n"})
    second = upstream.git("rev-parse", "HEAD")
    upstream.git("tag", "-a", "annotated", "-m", "release notes")
    tag_object = upstream.git("rev-parse", "annotated")
    assert tag_object != second  # an annotated tag is its own object: it must be peeled
    assert cache.fetch(upstream.url, GitRef(tag="light")).ref == f"light@sha1:{first}"
    annotated = cache.fetch(upstream.url, GitRef(tag="annotated"))
    assert annotated.sha == second
    assert annotated.ref == f"annotated@sha1:{second}"
    assert annotated.message == "second"


def test_semver_picks_the_highest_matching_tag_and_skips_prereleases(upstream: Upstream, cache: GitCache) -> None:
    shas = {}
    for tag in ["v1.0.0", "v1.2.0", "v1.10.0", "v2.0.0-rc.1", "not-a-version"]:
        shas[tag] = upstream.commit(tag, {"version.txt": tag})
        annotated = ["-a", "-m", tag] if tag.endswith("0") else []  # both tag kinds take part
        upstream.git("tag", *annotated, tag)
    revision = cache.fetch(upstream.url, GitRef(semver=">=1.0.0 <3.0.0"))
    assert revision.ref == f"v1.10.0@sha1:{shas['v1.10.0']}"
    pre = cache.fetch(upstream.url, GitRef(semver=">=2.0.0-0"))
    assert pre.ref == f"v2.0.0-rc.1@sha1:{shas['v2.0.0-rc.1']}"
    assert cache.fetch(upstream.url, GitRef(semver="~1.2")).sha == shas["v1.2.0"]


def test_semver_follows_new_and_deleted_tags(upstream: Upstream, cache: GitCache) -> None:
    upstream.git("tag", "v1.0.0")
    upstream.commit("next", {"n": "1"})
    upstream.git("tag", "v1.1.0")
    assert cache.fetch(upstream.url, GitRef(semver="^1")).ref.startswith("v1.1.0@")
    upstream.git("tag", "-d", "v1.1.0")
    assert cache.fetch(upstream.url, GitRef(semver="^1")).ref.startswith("v1.0.0@")


def test_commit_alone_and_commit_wins_over_branch(upstream: Upstream, cache: GitCache) -> None:
    first = upstream.git("rev-parse", "HEAD")
    upstream.commit("second", {"b.yaml": "b: 1\n"})
    alone = cache.fetch(upstream.url, GitRef(commit=first))
    assert alone.ref == f"sha1:{first}"
    assert alone.message == "first"
    with_branch = cache.fetch(upstream.url, GitRef(branch="main", commit=first))
    assert with_branch.ref == f"main@sha1:{first}"


def test_commit_only_reachable_from_an_unfetched_branch_is_fetched_by_sha(upstream: Upstream, cache: GitCache) -> None:
    cache.fetch(upstream.url, GitRef(branch="main"))
    upstream.git("checkout", "-q", "-b", "hidden")
    hidden = upstream.commit("hidden", {"h": "1"})
    upstream.git("checkout", "-q", "main")
    assert not commit_in_cache(cache, upstream.url, hidden)
    assert cache.fetch(upstream.url, GitRef(commit=hidden)).sha == hidden
    assert commit_in_cache(cache, upstream.url, hidden)


def test_cached_commit_needs_no_network(upstream: Upstream, cache: GitCache, tmp_path: Path) -> None:
    sha = cache.fetch(upstream.url, GitRef()).sha
    upstream.path.rename(tmp_path / "gone")  # the remote is unreachable now
    assert cache.fetch(upstream.url, GitRef(commit=sha)).sha == sha


# --- the cache is fetched incrementally, never re-cloned --------------------------------


def test_new_commit_is_picked_up_by_incremental_fetch_without_reclone(upstream: Upstream, cache: GitCache) -> None:
    first = cache.fetch(upstream.url, GitRef(branch="main"))
    git_dir = cache.path_for(upstream.url)
    marker = git_dir / "objects" / "marker"
    marker.write_text("kept")
    objects = object_files(git_dir)
    assert len(objects) >= 3, "the first fetch brings commit, trees and blob"
    second_sha = upstream.commit("second", {"app/deploy.yaml": "v: 2\n"})

    second = cache.fetch(upstream.url, GitRef(branch="main"))

    assert second.sha == second_sha != first.sha
    assert marker.read_text() == "kept"  # a re-clone would have replaced the directory
    after = object_files(git_dir)
    assert all(after.get(name) == inode for name, inode in objects.items())  # old objects untouched
    assert len(after) > len(objects)  # only the new objects were added
    assert sorted(p.name for p in cache.root.iterdir() if p.is_dir()) == [git_dir.name]


def test_cache_layout_one_repo_per_url_with_its_url_on_record(upstream: Upstream, cache: GitCache,
                                                               tmp_path: Path) -> None:
    other = Upstream(tmp_path / "other")
    other.commit("o", {"o": "1"})
    cache.fetch(upstream.url, GitRef())
    cache.fetch(other.url, GitRef())
    for url in (upstream.url, other.url):
        git_dir = cache.path_for(url)
        assert git_dir.name == hashlib.sha256(url.encode()).hexdigest()
        assert json.loads((git_dir / "source.json").read_text()) == {"url": url}
        assert (git_dir / "HEAD").is_file() and not (git_dir / ".git").exists()  # bare


def test_concurrent_fetches_of_one_url_both_succeed(upstream: Upstream, cache: GitCache) -> None:
    sha = upstream.git("rev-parse", "HEAD")
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(cache.fetch(upstream.url, GitRef(branch="main")).sha)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == [sha] * 4


def test_a_held_lock_bounds_the_wait(upstream: Upstream, cache: GitCache) -> None:
    cache.root.mkdir(parents=True)
    lock = cache.path_for(upstream.url).with_suffix(".lock")
    with lock.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(SourceFailed, match="locked"):
            cache.fetch(upstream.url, GitRef(), timeout=0.3)
        assert time.monotonic() - started < 3


def test_a_half_made_cache_directory_is_rebuilt(upstream: Upstream, cache: GitCache) -> None:
    git_dir = cache.path_for(upstream.url)
    git_dir.mkdir(parents=True)
    (git_dir / "junk").write_text("left by a crash")
    assert cache.fetch(upstream.url, GitRef()).message == "first"
    assert not (git_dir / "junk").exists()


# --- failures -----------------------------------------------------------------------------


def test_unreachable_url_names_the_url_and_gits_reason(cache: GitCache, tmp_path: Path) -> None:
    url = (tmp_path / "nowhere").as_uri()
    with pytest.raises(SourceFailed) as info:
        cache.fetch(url, GitRef(branch="main"))
    message = str(info.value)
    assert url in message
    assert "branch 'main'" in message
    assert "does not appear to be a git repository" in message


def test_missing_branch(upstream: Upstream, cache: GitCache) -> None:
    with pytest.raises(SourceFailed) as info:
        cache.fetch(upstream.url, GitRef(branch="nope"))
    assert str(info.value).startswith(f"branch 'nope' not found in {upstream.url}: ")
    assert "couldn't find remote ref refs/heads/nope" in str(info.value)


def test_missing_tag(upstream: Upstream, cache: GitCache) -> None:
    with pytest.raises(SourceFailed, match=r"tag 'v9' not found in file://.*refs/tags/v9"):
        cache.fetch(upstream.url, GitRef(tag="v9"))


def test_no_semver_match_and_invalid_range(upstream: Upstream, cache: GitCache) -> None:
    upstream.git("tag", "v1.0.0")
    with pytest.raises(SourceFailed, match=r"no tag in file://.* matches semver range '>=2.0.0' \(1 tags seen\)"):
        cache.fetch(upstream.url, GitRef(semver=">=2.0.0"))
    with pytest.raises(SourceFailed, match="invalid semver range 'banana'"):
        cache.fetch(upstream.url, GitRef(semver="banana"))


def test_commit_that_does_not_exist(upstream: Upstream, cache: GitCache) -> None:
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(SourceFailed) as info:
        cache.fetch(upstream.url, GitRef(commit=missing))
    assert f"commit {missing} not found in {upstream.url}" in str(info.value)
    with pytest.raises(SourceFailed, match="not a full 40-character SHA-1"):
        cache.fetch(upstream.url, GitRef(commit="abc123"))


@pytest.mark.parametrize("ref", [GitRef(branch="-x"), GitRef(branch="a..b"), GitRef(tag="a b"), GitRef(branch="x:y")])
def test_bad_ref_names_are_refused_before_git_sees_them(upstream: Upstream, cache: GitCache, ref: GitRef) -> None:
    with pytest.raises(SourceFailed, match=r"invalid (branch|tag) name"):
        cache.fetch(upstream.url, ref)


def test_option_like_url_is_refused(cache: GitCache) -> None:
    with pytest.raises(SourceFailed, match="invalid Git URL"):
        cache.fetch("--upload-pack=touch /tmp/pwned", GitRef())


# --- export -------------------------------------------------------------------------------


def test_export_writes_that_revision_not_the_working_tree(upstream: Upstream, cache: GitCache, tmp_path: Path) -> None:
    old = cache.fetch(upstream.url, GitRef()).sha
    upstream.commit("second", {"app/deploy.yaml": "v: 2\n", "app/new.yaml": "n: 1\n"})
    cache.fetch(upstream.url, GitRef())
    (upstream.path / "app" / "deploy.yaml").write_text("uncommitted\n")

    written = cache.export(upstream.url, old, tmp_path / "out")

    assert written == ["app/deploy.yaml"]
    assert (tmp_path / "out" / "app" / "deploy.yaml").read_text() == "v: 1\n"
    assert not (tmp_path / "out" / "app" / "new.yaml").exists()
    assert not (tmp_path / "out" / ".git").exists()


def test_export_keeps_executable_bit_and_safe_symlinks_only(upstream: Upstream, cache: GitCache,
                                                             tmp_path: Path) -> None:
    script = upstream.path / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    os.symlink("app/deploy.yaml", upstream.path / "inside.yaml")
    os.symlink("/etc/passwd", upstream.path / "outside.yaml")
    os.symlink("../../secret", upstream.path / "app" / "escape.yaml")
    sha = upstream.commit("links", {})
    cache.fetch(upstream.url, GitRef())
    out = tmp_path / "out"
    written = cache.export(upstream.url, sha, out)
    assert written == ["app/deploy.yaml", "inside.yaml", "run.sh"]
    assert os.readlink(out / "inside.yaml") == "app/deploy.yaml"
    assert (out / "inside.yaml").read_text() == "v: 1\n"
    assert (out / "run.sh").stat().st_mode & stat.S_IXUSR


def test_export_applies_default_exclusions_and_sourceignore(upstream: Upstream, cache: GitCache,
                                                            tmp_path: Path) -> None:
    sha = upstream.commit("noise", {
        ".github/workflows/ci.yml": "x", "logo.png": "png", "docs/readme.md": "r",
        ".sourceignore": "docs/\n*.md\n", "app/.sourceignore": "/local.yaml\n",
        "app/local.yaml": "l", "app/sub/local.yaml": "s", "README.md": "r",
    })
    cache.fetch(upstream.url, GitRef())
    written = cache.export(upstream.url, sha, tmp_path / "out")
    assert written == [".sourceignore", "app/.sourceignore", "app/deploy.yaml", "app/sub/local.yaml"]


def test_spec_ignore_replaces_defaults_and_overrules_sourceignore(upstream: Upstream, cache: GitCache,
                                                                  tmp_path: Path) -> None:
    sha = upstream.commit("noise", {"logo.png": "png", ".sourceignore": "*.md\n", "README.md": "r",
                                    "app/test/t.yaml": "t"})
    cache.fetch(upstream.url, GitRef())
    written = cache.export(upstream.url, sha, tmp_path / "out", ignore=["/*", "!/app/", "app/**/test/", "!README.md"])
    assert written == ["README.md", "app/deploy.yaml"]


def test_export_refuses_unknown_revision_and_non_empty_destination(upstream: Upstream, cache: GitCache,
                                                                   tmp_path: Path) -> None:
    sha = cache.fetch(upstream.url, GitRef()).sha
    with pytest.raises(SourceFailed, match="not in the cache"):
        cache.export(upstream.url, "f" * 40, tmp_path / "a")
    with pytest.raises(SourceFailed, match="not a full commit SHA"):
        cache.export(upstream.url, "main", tmp_path / "b")
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    with pytest.raises(SourceFailed, match="not empty"):
        cache.export(upstream.url, sha, full)


@pytest.mark.parametrize(("pattern", "path", "is_dir", "ignored"), [
    ("*.md", "a/b/c.md", False, True),
    ("/top.md", "a/top.md", False, False),
    ("/top.md", "top.md", False, True),
    ("build/", "x/build", True, True),
    ("build/", "x/build", False, False),
    ("a/**/z.yaml", "a/z.yaml", False, True),
    ("a/**/z.yaml", "a/b/c/z.yaml", False, True),
    ("**/foo", "deep/er/foo", False, True),
    ("f[!o]o", "fao", False, True),
    ("f[!o]o", "foo", False, False),
    ("?.y", "a.y", False, True),
    ("?.y", "ab.y", False, False),
])
def test_ignore_pattern_semantics(pattern: str, path: str, is_dir: bool, ignored: bool) -> None:
    assert gitmod._ignored(path, is_dir, compile_ignore([pattern])) is ignored


# --- credentials --------------------------------------------------------------------------


class AuthStub(BaseHTTPRequestHandler):
    """Answers every request with 401 and records the Authorization headers it was offered."""

    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def auth_server() -> Iterator[str]:
    AuthStub.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), AuthStub)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/org/repo.git"
    server.shutdown()
    server.server_close()


@pytest.fixture
def recorded_argv(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    calls: list[list[str]] = []
    real = gitmod._run

    def spy(git_dir: Path, args: Any, env: Any = None, timeout: float | None = None) -> tuple[int, str, str]:
        calls.append([str(a) for a in args])
        return real(git_dir, args, env, timeout)

    monkeypatch.setattr(gitmod, "_run", spy)
    return calls


def test_basic_auth_reaches_the_server_but_never_argv_disk_or_messages(
        cache: GitCache, auth_server: str, recorded_argv: list[list[str]]) -> None:
    creds = Credentials(username="bot", password="s3cr3t-pa55")
    with pytest.raises(SourceFailed) as info:
        cache.fetch(auth_server, GitRef(), creds, timeout=10, insecure=True)  # a plain-http stub
    expected = "Basic " + base64.b64encode(b"bot:s3cr3t-pa55").decode()
    assert expected in AuthStub.seen  # the credential helper answered from the environment
    message = str(info.value)
    assert auth_server in message and "s3cr3t-pa55" not in message
    assert all("s3cr3t" not in arg for call in recorded_argv for arg in call)
    for file in cache.root.rglob("*"):
        if file.is_file():
            assert b"s3cr3t" not in file.read_bytes(), file
    assert "s3cr3t" not in repr(creds)


def test_bearer_token_is_sent_as_a_header(cache: GitCache, auth_server: str, recorded_argv: list[list[str]]) -> None:
    with pytest.raises(SourceFailed) as info:
        cache.fetch(auth_server, GitRef(), Credentials(bearer_token="tok-123456"), timeout=10, insecure=True)
    assert "Bearer tok-123456" in AuthStub.seen
    assert "tok-123456" not in str(info.value)
    assert all("tok-123456" not in arg for call in recorded_argv for arg in call)


def test_password_in_the_url_is_redacted_everywhere(cache: GitCache, auth_server: str) -> None:
    url = auth_server.replace("http://", "http://me:hunter22@")
    with pytest.raises(SourceFailed) as info:
        cache.fetch(url, GitRef(), timeout=10, insecure=True)
    assert "hunter22" not in str(info.value)
    assert "me:***@" in str(info.value)
    assert b"hunter22" not in (cache.path_for(url) / "source.json").read_bytes()


def test_ssh_environment_uses_private_key_files_with_strict_host_checking() -> None:
    creds = Credentials(ssh_identity="-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----",
                        ssh_known_hosts="github.com ssh-ed25519 AAAA")
    with gitmod._auth_env(creds, timeout=5) as env:
        command = env["GIT_SSH_COMMAND"]
        parts = command.split()
        key = Path(parts[parts.index("-i") + 1])
        known = Path(next(p for p in parts if p.startswith("UserKnownHostsFile=")).split("=", 1)[1])
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
        assert key.read_text().endswith("END OPENSSH PRIVATE KEY-----\n")
        assert known.read_text() == "github.com ssh-ed25519 AAAA\n"
        for option in ("IdentitiesOnly=yes", "StrictHostKeyChecking=yes", "BatchMode=yes"):
            assert option in command
        assert "abc" not in command
    assert not key.exists() and not key.parent.exists()


def test_redact_removes_secrets_url_passwords_and_bearer_headers() -> None:
    text = "fatal: https://u:pw@host/x failed; Authorization: Bearer abc.def; key=XYZ"
    assert gitmod.redact(text, ["XYZ"]) == "fatal: https://u:***@host/x failed; Authorization: Bearer ***; key=***"


def test_network_operations_are_bounded_by_the_timeout(cache: GitCache) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow.git"
    try:
        started = time.monotonic()
        with pytest.raises(SourceFailed) as info:
            cache.fetch(url, GitRef(), timeout=1)
        assert time.monotonic() - started < 10
        assert str(info.value) == f"fetching branch 'main' from {url} failed: timed out after 1s"
    finally:
        listener.close()
