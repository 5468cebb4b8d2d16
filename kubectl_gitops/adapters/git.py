"""Fetch GitSource revisions into a local cache and export a revision's tree: the only module that talks Git.

Shape, and why:

* One bare repository per URL under the cache root (directory = sha256 of the URL, `source.json`
  beside the objects records the URL with any password removed). It is created once and then only
  ever `git fetch`ed: a sync costs the new objects, never a re-clone.
* Fetches are targeted: a branch or tag ref fetches just that ref, a semver ref fetches all tags
  (pruned, so a deleted tag stops being a candidate), a commit is looked up locally first (a SHA
  never changes, so a cached one needs no network at all) and fetched by SHA only if missing.
  Asking git for exactly the ref also makes git itself say "couldn't find remote ref" when a
  branch or tag does not exist, which is the reason users want to read.
* Git runs as a subprocess through GitPython (`Git.execute`), which gives us a kill-after-timeout
  for every network operation. Secrets never reach argv or disk-in-the-cache: basic auth is a
  credential helper defined in `GIT_CONFIG_*` environment variables that reads the password from
  the environment, a bearer token is an `http.extraHeader` set the same way, and an SSH key and
  known_hosts go to 0600 files in a private temporary directory removed after the call.
* A file lock per cached repository serialises fetch/export of the same URL across threads and
  processes (the controller and a person running `kubectl gitops sync` may share a cache).
* Every failure is a SourceFailed naming the URL (password redacted), the ref, and git's own first
  useful line of stderr with every credential replaced by `***`.

Export writes the blobs of one commit (not any working tree) into a directory, honouring Flux's
ignore rules: the default exclusions (VCS and CI files, images, archives) unless `ignore` is given,
`.sourceignore` files anywhere in the tree, and `ignore` patterns last (so they can overrule).
Submodules are not exported; symlinks are kept only when they point inside the exported tree.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import git

from kubectl_gitops.core.errors import SourceFailed
from kubectl_gitops.core.semver import best_match

DEFAULT_BRANCH = "main"
DEFAULT_TIMEOUT = 60.0  # seconds, Flux's GitRepository default
SOURCE_FILE = "source.json"
SOURCEIGNORE = ".sourceignore"
# Flux source-controller's default exclusions, applied when spec.ignore is not set.
DEFAULT_IGNORE = (
    ".git/", ".gitignore", ".gitmodules", ".gitattributes",
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
    ".github/", ".circleci/", ".travis.yml", ".gitlab-ci.yml", "appveyor.yml", ".drone.yml",
    "cloudbuild.yaml", "codeship-services.yml", "codeship-steps.yml",
    "**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml",
)

_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_BAD_REF_RE = re.compile(r"(^-)|(\.\.)|[\s~^:?*\[\\]|(@\{)|(\.lock$)|(/$)|(^/)")
_URL_PASSWORD_RE = re.compile(r"(://[^/@\s:]*):[^@\s/]*@")
_BEARER_RE = re.compile(r"(Authorization:\s*Bearer\s+)[^\s'\";,]+", re.IGNORECASE)
_ENV_USERNAME = "KUBECTL_GITOPS_GIT_USERNAME"
_ENV_PASSWORD = "KUBECTL_GITOPS_GIT_PASSWORD"
# A credential helper is a shell snippet when it starts with "!": it answers `get` from the
# environment, so the password exists only in the git process's environment, never in a file.
_CREDENTIAL_HELPER = (
    f'!f() {{ test "$1" = get && printf "username=%s\\npassword=%s\\n" "${_ENV_USERNAME}" "${_ENV_PASSWORD}"; }}; f'
)


@dataclass(frozen=True)
class GitRef:
    """What to check out. Precedence as in Flux: commit, then semver, then tag, then branch.

    A commit together with a branch fetches that branch first and reports `<branch>@sha1:<sha>`.
    No field set means the branch `main`.
    """

    branch: str = ""
    tag: str = ""
    semver: str = ""
    commit: str = ""

    @property
    def kind(self) -> str:
        if self.commit:
            return "commit"
        if self.semver:
            return "semver"
        return "tag" if self.tag else "branch"

    def describe(self) -> str:
        if self.commit:
            return f"commit {self.commit}" + (f" on branch {self.branch!r}" if self.branch else "")
        if self.semver:
            return f"semver range {self.semver!r}"
        return f"tag {self.tag!r}" if self.tag else f"branch {self.branch or DEFAULT_BRANCH!r}"


@dataclass(frozen=True)
class Credentials:
    """Flux's GitRepository secret, decoded: basic auth or bearer token for HTTPS, key + known_hosts for SSH.

    The secret fields are left out of repr so a logged Credentials shows no secret. A password
    without a username is sent as user `git` (hosts that take a token as password ignore the name).
    A bearer token wins over username/password. SSH keys must not have a passphrase.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    bearer_token: str = field(default="", repr=False)
    ssh_identity: str = field(default="", repr=False)  # PEM or OpenSSH private key text (no passphrase)
    ssh_known_hosts: str = ""
    ca_file: Path | None = None

    def secrets(self) -> tuple[str, ...]:
        """Every string that must never appear in a message."""
        return tuple(s for s in (self.password, self.bearer_token, self.ssh_identity.strip()) if s)


@dataclass(frozen=True)
class Revision:
    """A resolved commit: `ref` is Flux's revision string, `<branch|tag>@sha1:<sha>` or `sha1:<sha>`."""

    sha: str
    ref: str
    message: str
    author: str
    time: datetime  # committer time, with its offset

    def __str__(self) -> str:
        return self.ref


@dataclass(frozen=True)
class _Remote:
    """Everything a network git call needs: where, how (environment), how long, what to redact."""

    url: str
    env: Mapping[str, str]
    timeout: float
    secrets: tuple[str, ...]

    @property
    def shown(self) -> str:
        return redact(self.url, self.secrets)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Replace credentials in `text`: the given secrets, URL passwords and bearer headers."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_PASSWORD_RE.sub(r"\1:***@", text)
    return _BEARER_RE.sub(r"\1***", text)


def _git_reason(stderr: str, secrets: Sequence[str]) -> str:
    """Git's own reason: the first fatal/error line of stderr, else its first non-empty line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    useful = [line for line in lines if line.startswith(("fatal:", "error:", "ERROR:"))]
    chosen = (useful or lines or ["git exited with an error and said nothing"])[0]
    return redact(chosen, secrets)


# --- running git -------------------------------------------------------------------------


def _run(git_dir: Path, args: Sequence[str], env: Mapping[str, str] | None = None,
         timeout: float | None = None) -> tuple[int, str, str]:
    """Run `git --git-dir=<git_dir> args...`; returns (status, stdout, stderr) and never raises on status."""
    git_dir = git_dir.absolute()
    command = [str(git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git"), f"--git-dir={git_dir}", *args]
    status, out, err = git.Git(str(git_dir)).execute(
        command, with_extended_output=True, with_exceptions=False, kill_after_timeout=timeout,
        env=dict(env or {}), stdout_as_string=True,
    )
    return status, out.decode() if isinstance(out, bytes) else (out or ""), err


def _local(git_dir: Path, *args: str) -> str:
    """A local git query that must succeed (the cache is ours, so failure is a bug or corruption)."""
    status, out, err = _run(git_dir, args)
    if status != 0:
        raise SourceFailed(f"git {' '.join(args)} failed in cache {git_dir}: {_git_reason(err, ())}")
    return out


def _network(git_dir: Path, remote: _Remote, args: Sequence[str]) -> str | None:
    """A fetch against the remote; returns None on success or git's reason (redacted) on failure."""
    status, _, err = _run(git_dir, args, remote.env, remote.timeout)
    if status == 0:
        return None
    if err.startswith("Timeout:"):
        return f"timed out after {remote.timeout:g}s"
    return _git_reason(err, remote.secrets)


def _fetch(git_dir: Path, remote: _Remote, refspecs: Sequence[str], *, prune: bool = False) -> str | None:
    args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", *(["--prune"] if prune else []),
            "--end-of-options", remote.url, *refspecs]
    return _network(git_dir, remote, args)


# --- credentials in the environment ----------------------------------------------------


def _config_env(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Git config passed as GIT_CONFIG_COUNT/KEY/VALUE: visible to git only, never in argv."""
    env = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def _write_private(path: Path, text: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")  # OpenSSH rejects a key without it
    return path


def _ssh_command(tmp: Path, creds: Credentials | None, timeout: float) -> str:
    """ssh that never prompts; with a key, only that key and only the given known_hosts (strict)."""
    parts = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(timeout))}"]
    if creds and creds.ssh_identity:
        key = _write_private(tmp / "identity", creds.ssh_identity)
        parts += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
    if creds and (creds.ssh_identity or creds.ssh_known_hosts):
        known = _write_private(tmp / "known_hosts", creds.ssh_known_hosts)
        parts += ["-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                  "-o", "StrictHostKeyChecking=yes"]
    return " ".join(shlex.quote(part) for part in parts)


def _https_auth(creds: Credentials) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Config pairs and environment for HTTPS auth; the user's own credential helpers are switched off."""
    config: list[tuple[str, str]] = [("credential.helper", "")]
    env: dict[str, str] = {}
    if creds.ca_file:
        config.append(("http.sslCAInfo", str(creds.ca_file)))
        # GIT_SSL_CAINFO in the environment wins over any config (and many machines set it to the
        # system bundle), so the GitSource's own CA has to be put there too.
        env["GIT_SSL_CAINFO"] = str(creds.ca_file)
    if creds.bearer_token:
        config.append(("http.extraHeader", f"Authorization: Bearer {creds.bearer_token}"))
    elif creds.password:
        config.append(("credential.helper", _CREDENTIAL_HELPER))
        env.update({_ENV_USERNAME: creds.username or "git", _ENV_PASSWORD: creds.password})
    return config, env


@contextmanager
def _auth_env(creds: Credentials | None, timeout: float) -> Iterator[dict[str, str]]:
    """The environment for one network call; key files live in a 0700 temp dir removed on exit."""
    with tempfile.TemporaryDirectory(prefix="kubectl-gitops-git-") as tmp:
        env = {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",  # empty (not unset) makes git skip every askpass program
            "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
            "GIT_HTTP_LOW_SPEED_TIME": str(max(1, int(timeout))),
            "GIT_SSH_COMMAND": _ssh_command(Path(tmp), creds, timeout),
        }
        config: list[tuple[str, str]] = []
        if creds:
            config, extra = _https_auth(creds)
            env.update(extra)
        env.update(_config_env(config))
        yield env


# --- resolving refs ----------------------------------------------------------------------


def _check_ref_name(kind: str, name: str) -> None:
    if _BAD_REF_RE.search(name):
        raise SourceFailed(f"invalid {kind} name {name!r}")


def _peel(git_dir: Path, ref: str) -> str | None:
    """The commit a ref points to (annotated tags peeled), or None when it does not exist."""
    status, out, _ = _run(git_dir, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    return out.strip() if status == 0 else None


def _fetch_ref(git_dir: Path, remote: _Remote, kind: str, name: str) -> str:
    """Fetch one branch or tag and return its commit; SourceFailed if the remote lacks it."""
    _check_ref_name(kind, name)
    local = f"refs/{'heads' if kind == 'branch' else 'tags'}/{name}"
    reason = _fetch(git_dir, remote, [f"+{local}:{local}"])
    if reason and "couldn't find remote ref" in reason:
        raise SourceFailed(f"{kind} {name!r} not found in {remote.shown}: {reason}")
    if reason:
        raise SourceFailed(f"fetching {kind} {name!r} from {remote.shown} failed: {reason}")
    sha = _peel(git_dir, local)
    if sha is None:
        raise SourceFailed(f"{kind} {name!r} in {remote.shown} does not point to a commit")
    return sha


def _resolve_semver(git_dir: Path, remote: _Remote, constraint: str) -> tuple[str, str]:
    best_match([], constraint)  # a bad range fails before any network call
    reason = _fetch(git_dir, remote, ["+refs/tags/*:refs/tags/*"], prune=True)
    if reason:
        raise SourceFailed(f"fetching tags from {remote.shown} for semver range {constraint!r} failed: {reason}")
    tags = _local(git_dir, "for-each-ref", "--format=%(refname:strip=2)", "refs/tags").split()
    tag = best_match(tags, constraint)
    if tag is None:
        raise SourceFailed(f"no tag in {remote.shown} matches semver range {constraint!r} ({len(tags)} tags seen)")
    sha = _peel(git_dir, f"refs/tags/{tag}")
    if sha is None:
        raise SourceFailed(f"tag {tag!r} in {remote.shown} does not point to a commit")
    return tag, sha


def _has_commit(git_dir: Path, sha: str) -> bool:
    return _run(git_dir, ["cat-file", "-e", f"{sha}^{{commit}}"])[0] == 0


def _resolve_commit(git_dir: Path, remote: _Remote, ref: GitRef) -> str:
    sha = ref.commit.lower()
    if not _SHA_RE.match(sha):
        raise SourceFailed(f"commit {ref.commit!r} for {remote.shown} is not a full 40-character SHA-1")
    if ref.branch:
        _fetch_ref(git_dir, remote, "branch", ref.branch)
    if _has_commit(git_dir, sha):
        return sha
    # Keep what we fetch under a ref of our own so gc never drops it.
    reason = _fetch(git_dir, remote, [f"+{sha}:refs/kubectl-gitops/commits/{sha}"])
    if reason is None and _has_commit(git_dir, sha):
        return sha
    why = reason or "the object is not a commit"
    raise SourceFailed(f"commit {sha} not found in {remote.shown}: {why}")


def _resolve(git_dir: Path, remote: _Remote, ref: GitRef) -> tuple[str, str]:
    """Fetch what `ref` needs and return (sha, Flux revision string)."""
    if ref.kind == "commit":
        sha = _resolve_commit(git_dir, remote, ref)
        return sha, (f"{ref.branch}@sha1:{sha}" if ref.branch else f"sha1:{sha}")
    if ref.kind == "semver":
        tag, sha = _resolve_semver(git_dir, remote, ref.semver)
        return sha, f"{tag}@sha1:{sha}"
    if ref.kind == "tag":
        sha = _fetch_ref(git_dir, remote, "tag", ref.tag)
        return sha, f"{ref.tag}@sha1:{sha}"
    branch = ref.branch or DEFAULT_BRANCH
    sha = _fetch_ref(git_dir, remote, "branch", branch)
    return sha, f"{branch}@sha1:{sha}"


def _revision(git_dir: Path, sha: str, ref: str) -> Revision:
    out = _local(git_dir, "show", "-s", "--format=%an <%ae>%x00%cI%x00%B", sha, "--")
    author, when, message = out.split("\x00", 2)
    return Revision(sha, ref, message.strip(), author, datetime.fromisoformat(when))


# --- the cache ---------------------------------------------------------------------------


class GitCache:
    """Bare repositories, one per URL, under `root`; fetched incrementally and exported by SHA."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()  # git runs with the repository as cwd

    def path_for(self, url: str) -> Path:
        """The cached repository of `url` (it may not exist yet)."""
        return self.root / hashlib.sha256(url.encode()).hexdigest()

    def fetch(self, url: str, ref: GitRef, creds: Credentials | None = None,
              timeout: float = DEFAULT_TIMEOUT) -> Revision:
        """Bring the cache of `url` up to date for `ref` and return the commit it resolves to."""
        secrets = creds.secrets() if creds else ()
        if not url or url.startswith("-"):
            raise SourceFailed(f"invalid Git URL {redact(url, secrets)!r}")
        with self._locked(url, timeout):
            git_dir = self._ensure(url)
            with _auth_env(creds, timeout) as env:
                sha, label = _resolve(git_dir, _Remote(url, env, timeout, secrets), ref)
            return _revision(git_dir, sha, label)

    def export(self, url: str, revision_sha: str, dest: Path, ignore: list[str] | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> list[str]:
        """Write the tree of commit `revision_sha` (already fetched) into the empty or new `dest`.

        `ignore` holds gitignore-style patterns (GitSource spec.ignore); when None, Flux's default
        exclusions apply. Returns the written paths, relative and sorted.
        """
        if not _SHA_RE.match(revision_sha):
            raise SourceFailed(f"cannot export {revision_sha!r} from {redact(url)}: not a full commit SHA")
        dest = Path(dest)
        if dest.exists() and any(dest.iterdir()):
            raise SourceFailed(f"cannot export {redact(url)}@{revision_sha} into {dest}: it is not empty")
        with self._locked(url, timeout):
            git_dir = self.path_for(url)
            if not _is_repository(git_dir) or not _has_commit(git_dir, revision_sha):
                raise SourceFailed(f"commit {revision_sha} of {redact(url)} is not in the cache; fetch it first")
            dest.mkdir(parents=True, exist_ok=True)
            return _export_commit(git_dir, revision_sha, dest, ignore)

    @contextmanager
    def _locked(self, url: str, timeout: float) -> Iterator[None]:
        """An exclusive flock on `<digest>.lock`, waited for at most `timeout` seconds."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path_for(url).with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            _acquire(fd, timeout, url)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _ensure(self, url: str) -> Path:
        """The cached repository, created (once) if missing or left half-made by a crash."""
        git_dir = self.path_for(url)
        if _is_repository(git_dir):
            return git_dir
        shutil.rmtree(git_dir, ignore_errors=True)
        git.Repo.init(str(git_dir), bare=True).close()
        _local(git_dir, "config", "gc.autoDetach", "false")  # no gc left running after we return
        (git_dir / SOURCE_FILE).write_text(json.dumps({"url": redact(url)}) + "\n")
        return git_dir


def _is_repository(git_dir: Path) -> bool:
    return (git_dir / "HEAD").is_file() and (git_dir / "objects").is_dir() and (git_dir / SOURCE_FILE).is_file()


def _acquire(fd: int, timeout: float, url: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                busy = f"the cache of {redact(url)} stayed locked by another sync for {timeout:g}s"
                raise SourceFailed(busy) from None
            time.sleep(0.05)


# --- export and ignore rules -------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    """One gitignore line compiled to a regex over paths relative to the exported root."""

    regex: re.Pattern[str]
    negate: bool
    dir_only: bool

    def matches(self, path: str, is_dir: bool) -> bool:
        return (is_dir or not self.dir_only) and bool(self.regex.match(path))


def _glob_to_regex(glob: str) -> str:
    """gitignore globbing: `*` and `?` stay within a path segment, `**` crosses segments."""
    out, index = [], 0
    while index < len(glob):
        piece, used = _glob_piece(glob, index)
        out.append(piece)
        index += used
    return "".join(out)


def _glob_piece(glob: str, index: int) -> tuple[str, int]:
    """The regex for the glob element at `index` and how many characters it used."""
    if glob.startswith("**/", index):
        return "(?:.*/)?", 3
    if glob.startswith("**", index):
        return ".*", 2
    char = glob[index]
    if char == "*":
        return "[^/]*", 1
    if char == "?":
        return "[^/]", 1
    end = glob.find("]", index + 2) if char == "[" else -1
    if end != -1:
        body = glob[index + 1:end]
        return "[" + ("^" + body[1:] if body.startswith("!") else body) + "]", end - index + 1
    return re.escape(char), 1


def compile_ignore(lines: Sequence[str], base: str = "") -> list[_Pattern]:
    """Compile gitignore-style lines; patterns from `<base>/.sourceignore` only match under base."""
    patterns = []
    prefix = re.escape(base.strip("/") + "/") if base.strip("/") else ""
    for raw in lines:
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        line = line[1:] if negate else line.removeprefix("\\")
        dir_only = line.endswith("/")
        line = line.rstrip("/")
        anchored = "/" in line
        body = _glob_to_regex(line.lstrip("/"))
        regex = f"^{prefix}{body}$" if anchored else f"^{prefix}(?:.*/)?{body}$"
        patterns.append(_Pattern(re.compile(regex), negate, dir_only))
    return patterns


def _ignored(path: str, is_dir: bool, patterns: Sequence[_Pattern]) -> bool:
    """Last matching pattern wins, as in git."""
    result = False
    for pattern in patterns:
        if pattern.matches(path, is_dir):
            result = not pattern.negate
    return result


@dataclass
class _Exporter:
    dest: Path
    head: list[_Pattern]  # defaults (or nothing when spec.ignore is set)
    tail: list[_Pattern]  # spec.ignore: last, so it may overrule .sourceignore
    written: list[str] = field(default_factory=list)

    def tree(self, tree: Any, nested: list[_Pattern]) -> None:
        nested = nested + self._sourceignore(tree)
        for item in tree:
            path = cast(str, item.path)
            is_dir = item.type == "tree"
            if item.type == "commit" or _ignored(path, is_dir, [*self.head, *nested, *self.tail]):
                continue  # submodules are not exported
            if is_dir:
                self.tree(item, nested)
            else:
                self.blob(item, path)

    def _sourceignore(self, tree: Any) -> list[_Pattern]:
        for item in tree.blobs:
            if item.name == SOURCEIGNORE:
                text = cast(bytes, item.data_stream.read()).decode("utf-8", "replace")
                return compile_ignore(text.splitlines(), cast(str, tree.path))
        return []

    def blob(self, blob: Any, path: str) -> None:
        target = self.dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        mode = cast(int, blob.mode)
        if mode & 0o170000 == 0o120000:
            self._symlink(blob, path, target)
            return
        with target.open("wb") as handle:
            blob.stream_data(handle)
        target.chmod(0o755 if mode & 0o111 else 0o644)
        self.written.append(path)

    def _symlink(self, blob: Any, path: str, target: Path) -> None:
        """Keep a link only if it stays inside the tree: a link to /etc must not be rendered from."""
        link = cast(bytes, blob.data_stream.read()).decode()
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), link))
        if os.path.isabs(link) or resolved == ".." or resolved.startswith("../"):
            return
        os.symlink(link, target)
        self.written.append(path)


def _export_commit(git_dir: Path, sha: str, dest: Path, ignore: list[str] | None) -> list[str]:
    head = compile_ignore(DEFAULT_IGNORE) if ignore is None else []
    exporter = _Exporter(dest, head, compile_ignore(ignore or []))
    repo = git.Repo(str(git_dir))
    try:
        exporter.tree(repo.commit(sha).tree, [])
    finally:
        repo.close()
    return sorted(exporter.written)
