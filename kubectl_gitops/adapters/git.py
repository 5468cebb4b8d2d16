"""Fetch GitSource revisions into a local cache and export a revision's tree: the only module that talks Git.

Shape, and why:

* One bare repository per URL under the cache root (directory = sha256 of the URL without its
  credentials, `source.json` beside the objects records the URL with every credential removed).
  It is created once and then only ever `git fetch`ed: a sync costs the new objects, never a
  re-clone. A cache that git finds corrupted is re-cloned once, with a warning naming it.
* Fetches are targeted: a branch or tag ref fetches just that ref, a semver ref fetches all tags
  (pruned, so a deleted tag stops being a candidate), a commit is looked up locally first (a SHA
  never changes, so a cached one needs no network at all) and fetched by SHA only if missing.
  Asking git for exactly the ref also makes git itself say "couldn't find remote ref" when a
  branch or tag does not exist, which is the reason users want to read.
* Git runs as a subprocess in its own process group, killed (with its helpers: ssh,
  git-remote-https) when the timeout passes; every call has one, local calls included.
* No ambient authority. The repository belongs to whoever can push to it, and the machine that
  syncs it holds other people's credentials. So git runs with an environment we build, not the
  caller's: no system or global git config (credential helpers, `url.insteadOf`, `core.sshCommand`),
  HOME pointed at an empty directory, no SSH agent, ssh with `-F /dev/null` and only the key the
  GitSource names (or none), no askpass, no prompts, and only the protocols the source policy
  allows (`GIT_ALLOW_PROTOCOL`; `file` only while `SourcePolicy.allow_file_urls`). A GitSource
  without a secretRef therefore fetches anonymously, whatever this machine is logged in to.
* Secrets never reach argv or disk-in-the-cache: basic auth (from the secret, or a `user:password@`
  in the URL, which is taken out of the URL) is a credential helper defined in `GIT_CONFIG_*`
  environment variables that reads the password from the environment, a bearer token is an
  `http.extraHeader` set the same way, and an SSH key and known_hosts go to 0600 files in a private
  temporary directory removed after the call. Credentials are refused over plain http:// unless
  the GitSource says `insecure: true` (then sent, with a warning).
* A file lock per cached repository serialises fetch/export of the same URL across threads and
  processes (the controller and a person running `kubectl gitops sync` may share a cache).
* Every failure is a SourceFailed naming the URL (credentials redacted: passwords, tokens used as
  user names, query tokens), the ref, and git's own first useful line of stderr with every
  credential replaced by `***`.

Export writes the blobs of one commit (not any working tree) into a directory, honouring Flux's
ignore rules: the default exclusions (VCS and CI files, images, archives) unless `ignore` is given,
`.sourceignore` files anywhere in the tree, and `ignore` patterns last (so they can overrule).
Trees are read with `git cat-file --batch` and parsed here, so the checks below do not depend on
any library version: an entry named `.`, `..`, empty, or holding `/` or NUL is refused; `.git` is
never written; submodules are not exported. Regular files are written first (O_EXCL|O_NOFOLLOW,
no symlink exists yet), then symlinks, and a link is kept only if its full resolution (through
other links too) stays inside the export. Entries, bytes and time are bounded (core/limits.py).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from kubectl_gitops.core.errors import SourceFailed
from kubectl_gitops.core.limits import DEFAULT_LIMITS, Limits
from kubectl_gitops.core.semver import best_match

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "main"
DEFAULT_TIMEOUT = 60.0  # seconds, Flux's GitRepository default
SOURCE_FILE = "source.json"
SOURCEIGNORE = ".sourceignore"
ALLOW_FILE_URLS_ENV = "KUBECTL_GITOPS_ALLOW_FILE_URLS"
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
_URL_TOKEN_USER_RE = re.compile(r"(https?://)[^/@\s:]+@", re.IGNORECASE)
_URL_QUERY_RE = re.compile(r"(://[^\s?#]*\?)([^\s#'\"]*)")
_BEARER_RE = re.compile(r"(Authorization:\s*Bearer\s+)[^\s'\";,]+", re.IGNORECASE)
_SCP_LIKE_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:")
_ENV_USERNAME = "KUBECTL_GITOPS_GIT_USERNAME"
_ENV_PASSWORD = "KUBECTL_GITOPS_GIT_PASSWORD"
# A credential helper is a shell snippet when it starts with "!": it answers `get` from the
# environment, so the password exists only in the git process's environment, never in a file.
_CREDENTIAL_HELPER = (
    f'!f() {{ test "$1" = get && printf "username=%s\\npassword=%s\\n" "${_ENV_USERNAME}" "${_ENV_PASSWORD}"; }}; f'
)
# What git may see of this machine's environment: where programs are, locale, proxies and which
# CAs to trust. Nothing that grants access (HOME, SSH_AUTH_SOCK, GIT_*, credentials) is passed.
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "GIT_EXEC_PATH",
             "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
             "ALL_PROXY", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE")
_CORRUPTION_RE = re.compile(r"corrupt|bad object|unable to read|not a git repository|packfile|bad tree|"
                            r"broken link|invalid object|inflate|loose object|missing (blob|tree|commit)|"
                            r"HEAD|could not parse|bad config|unknown object type", re.IGNORECASE)


@dataclass(frozen=True)
class SourcePolicy:
    """What sources this machine may fetch, set by whoever runs the engine.

    `allow_file_urls`: file:// URLs (and plain local paths) read this machine's disk. Fine for a
    person syncing a repository of their own (local development, the demo, tests), so the CLI
    allows them; a shared controller or a tenant must not be able to point a GitSource at
    another tenant's checkout, so the future tenancy/controller code sets it to False (and so
    does KUBECTL_GITOPS_ALLOW_FILE_URLS=false). A file URL never resolves into the plugin's own
    cache, whatever the policy. `forbidden_dirs` are directories no file URL may point into.
    """

    allow_file_urls: bool = True
    forbidden_dirs: tuple[Path, ...] = ()
    limits: Limits = DEFAULT_LIMITS

    @classmethod
    def from_env(cls, env: Mapping[str, str], forbidden_dirs: tuple[Path, ...] = ()) -> SourcePolicy:
        raw = env.get(ALLOW_FILE_URLS_ENV, "true").strip().lower()
        if raw not in ("true", "false", "1", "0", "yes", "no", ""):
            raise SourceFailed(f"{ALLOW_FILE_URLS_ENV}={raw!r} is not true or false")
        try:
            limits = Limits.from_env(env)
        except ValueError as err:
            raise SourceFailed(str(err)) from None
        return cls(raw in ("true", "1", "yes", ""), forbidden_dirs, limits)


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
    label: str = ""  # the URL as the user wrote it, redacted

    @property
    def shown(self) -> str:
        return self.label or redact(self.url, self.secrets)


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Replace credentials in `text`: the given secrets, URL passwords, tokens given as a URL's user
    name (http/https), URL query values, and bearer headers."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_PASSWORD_RE.sub(r"\1:***@", text)
    text = _URL_TOKEN_USER_RE.sub(r"\1***@", text)
    text = _URL_QUERY_RE.sub(lambda m: m.group(1) + re.sub(r"=[^&]*", "=***", m.group(2)), text)
    return _BEARER_RE.sub(r"\1***", text)


def split_credentials(url: str) -> tuple[str, Credentials | None, tuple[str, ...]]:
    """(url without `user:password@`, the credentials it held, strings to redact) for http(s) URLs.

    A password in the URL becomes basic auth through the credential helper, so it never reaches
    argv, git's own messages or the cache. A user name alone on http(s) is kept (git needs it) but
    redacted everywhere, since hosts take tokens there."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url, None, ()
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, None, ()
    userinfo, host = parts.netloc.rsplit("@", 1)
    user, has_password, password = userinfo.partition(":")
    if not has_password:
        return url, None, (user, unquote(user)) if user else ()
    bare = parts._replace(netloc=host).geturl()
    creds = Credentials(username=unquote(user), password=unquote(password))
    return bare, creds, tuple(x for x in (password, unquote(password)) if x)


def _git_reason(stderr: str, secrets: Sequence[str]) -> str:
    """Git's own reason: the first fatal/error line of stderr, else its first non-empty line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    useful = [line for line in lines if line.startswith(("fatal:", "error:", "ERROR:"))]
    chosen = (useful or lines or ["git exited with an error and said nothing"])[0]
    return redact(chosen, secrets)


# --- running git -------------------------------------------------------------------------


@cache
def _empty_home() -> str:
    """An empty directory for HOME when no per-call one exists (removed at exit)."""
    home = tempfile.mkdtemp(prefix="kubectl-gitops-home-")
    atexit.register(shutil.rmtree, home, True)
    return home


def base_env(home: str | None = None, *, allow_file: bool = True) -> dict[str, str]:
    """The environment every git call starts from: nothing of this machine's Git or SSH identity."""
    env = {key: os.environ[key] for key in _KEEP_ENV if key in os.environ}
    home = home or _empty_home()
    env.update({
        "HOME": home, "XDG_CONFIG_HOME": os.path.join(home, ".config"),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "", "SSH_ASKPASS": "",  # empty (not unset) makes git skip every askpass program
        "SSH_AUTH_SOCK": "",
        "GIT_ALLOW_PROTOCOL": "http:https:ssh:git" + (":file" if allow_file else ""),
        "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": "",
    })
    return env


def _run(git_dir: Path, args: Sequence[str], env: Mapping[str, str] | None = None,
         timeout: float | None = None) -> tuple[int, str, str]:
    """Run `git --git-dir=<git_dir> args...`; returns (status, stdout, stderr) and never raises on status.

    Killed with its whole process group after `timeout` (stderr then starts with "Timeout:")."""
    git_dir = git_dir.absolute()
    return _git([f"--git-dir={git_dir}", *args], git_dir.parent, env, timeout)


def _git(args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None,
         timeout: float | None = None) -> tuple[int, str, str]:
    command = ["git", *args]
    limit = DEFAULT_TIMEOUT if timeout is None else timeout
    try:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(env) if env is not None else base_env(), cwd=cwd,
                                start_new_session=True)
    except OSError as failed:
        return 127, "", f"fatal: cannot run git: {failed.strerror}"
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        return -9, "", f"Timeout: git took more than {limit:g}s"
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _local(git_dir: Path, *args: str, timeout: float = DEFAULT_TIMEOUT) -> str:
    """A local git query that must succeed (the cache is ours, so failure is a bug or corruption)."""
    status, out, err = _run(git_dir, args, timeout=timeout)
    if status != 0:
        raise _CacheBroken(f"git {args[0]} failed in cache {git_dir}: {_git_reason(err, ())}")
    return out


class _CacheBroken(SourceFailed):
    """A local git command failed on a cached repository: the cache may be corrupted."""


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
    """ssh that never prompts, reads no ssh_config, uses no agent; with a key, only that key and only
    the given known_hosts (strict); without one, no public-key authentication at all."""
    parts = ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={max(1, int(timeout))}",
             "-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes", "-o", "ForwardAgent=no",
             "-o", "GSSAPIAuthentication=no", "-o", "HostbasedAuthentication=no"]
    if creds and creds.ssh_identity:
        key = _write_private(tmp / "identity", creds.ssh_identity)
        parts += ["-i", str(key)]
    else:
        parts += ["-o", "PubkeyAuthentication=no"]  # ~/.ssh/id_* of this machine are not ours to use
    if creds and (creds.ssh_identity or creds.ssh_known_hosts):
        known = _write_private(tmp / "known_hosts", creds.ssh_known_hosts)
        parts += ["-o", f"UserKnownHostsFile={known}", "-o", "GlobalKnownHostsFile=/dev/null",
                  "-o", "StrictHostKeyChecking=yes"]
    return " ".join(shlex.quote(part) for part in parts)


def _https_auth(creds: Credentials) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Config pairs and environment for HTTPS auth."""
    config: list[tuple[str, str]] = []
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
def _auth_env(creds: Credentials | None, timeout: float, *, allow_file: bool = True) -> Iterator[dict[str, str]]:
    """The environment for one network call; HOME and key files live in a 0700 temp dir removed on exit."""
    with tempfile.TemporaryDirectory(prefix="kubectl-gitops-git-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = base_env(str(home), allow_file=allow_file)
        env.update({
            "GIT_HTTP_LOW_SPEED_LIMIT": "1000",
            "GIT_HTTP_LOW_SPEED_TIME": str(max(1, int(timeout))),
            "GIT_SSH_COMMAND": _ssh_command(Path(tmp), creds, timeout),
        })
        # The machine's credential helpers are off: an empty helper resets the list git builds.
        config: list[tuple[str, str]] = [("credential.helper", "")]
        if creds:
            extra_config, extra = _https_auth(creds)
            config += extra_config
            env.update(extra)
        env.update(_config_env(config))
        yield env


# --- resolving refs ----------------------------------------------------------------------


def _check_ref_name(kind: str, name: str) -> None:
    if _BAD_REF_RE.search(name):
        raise SourceFailed(f"invalid {kind} name {name!r}")


def _peel(git_dir: Path, ref: str) -> str | None:
    """The commit a ref points to (annotated tags peeled), or None when it does not exist."""
    status, out, err = _run(git_dir, ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
    if status != 0 and err.strip():
        raise _CacheBroken(f"git rev-parse failed in cache {git_dir}: {_git_reason(err, ())}")
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
    # `log -1 --no-walk`, not `show -s`: show takes minutes on a "git bomb" commit (it walks the tree).
    out = _local(git_dir, "log", "-1", "--no-walk", "--format=%an <%ae>%x00%cI%x00%B", sha, "--")
    author, when, message = out.split("\x00", 2)
    return Revision(sha, ref, message.strip(), author, datetime.fromisoformat(when))


# --- the cache ---------------------------------------------------------------------------


class GitCache:
    """Bare repositories, one per URL, under `root`; fetched incrementally and exported by SHA."""

    def __init__(self, root: Path, policy: SourcePolicy | None = None) -> None:
        self.root = Path(root).absolute()  # git runs with the repository as cwd
        self.policy = policy or SourcePolicy()

    def path_for(self, url: str) -> Path:
        """The cached repository of `url` (it may not exist yet); credentials are not part of the key."""
        return self.root / hashlib.sha256(split_credentials(url)[0].encode()).hexdigest()

    def fetch(self, url: str, ref: GitRef, creds: Credentials | None = None,
              timeout: float = DEFAULT_TIMEOUT, *, insecure: bool = False) -> Revision:
        """Bring the cache of `url` up to date for `ref` and return the commit it resolves to."""
        bare, url_creds, url_secrets = split_credentials(url)
        if url_creds and not (creds and (creds.password or creds.bearer_token)):
            creds = replace(url_creds, ca_file=creds.ca_file) if creds else url_creds  # the secret's CA stays
        secrets = (creds.secrets() if creds else ()) + url_secrets
        shown = redact(url, secrets)
        self._check_url(url, ref, creds, insecure, shown)
        try:
            with self._locked(bare, timeout):
                return self._fetch_repairing(bare, ref, creds, timeout, secrets, shown)
        except OSError as err:
            raise SourceFailed(f"the Git cache {self.root} is not usable for {shown}: "
                               f"{err.strerror or err} ({err.filename or self.root})") from None

    def _check_url(self, url: str, ref: GitRef, creds: Credentials | None, insecure: bool, shown: str) -> None:
        for what, value in (("URL", url), ("branch", ref.branch), ("tag", ref.tag), ("semver range", ref.semver),
                            ("commit", ref.commit)):
            if "\x00" in value:
                raise SourceFailed(f"the {what} of {shown!r} contains a NUL byte")
        if not url or url.startswith("-") or any(c in url for c in "\r\n"):
            raise SourceFailed(f"invalid Git URL {shown!r}")
        local = _local_path(url)
        if local is not None:
            self._check_local(local, shown)
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme == "http" and creds and (creds.password or creds.bearer_token):
            if not insecure:
                raise SourceFailed(f"refusing to send credentials to {shown} over plain http://: use https://, "
                                   "or set spec.insecure: true on the GitSource to allow it")
            log.warning("warning: sending credentials to %s over plain http:// (spec.insecure: true)", shown)

    def _check_local(self, local: Path, shown: str) -> None:
        if not self.policy.allow_file_urls:
            raise SourceFailed(f"{shown}: file:// URLs and local paths are not allowed on this machine "
                               f"(source policy; {ALLOW_FILE_URLS_ENV}=false)")
        real = Path(os.path.realpath(local))
        for forbidden in (self.root, *self.policy.forbidden_dirs):
            top = Path(os.path.realpath(forbidden))
            if real == top or top in real.parents:
                raise SourceFailed(f"{shown} points into kubectl-gitops' own cache ({top}); refusing it")

    def _fetch_repairing(self, url: str, ref: GitRef, creds: Credentials | None, timeout: float,
                         secrets: tuple[str, ...], shown: str) -> Revision:
        """Fetch; if the cached repository turns out corrupted, re-clone it once (with a warning)."""
        git_dir = self._ensure(url, timeout)
        try:
            return self._fetch_into(git_dir, _Remote(url, {}, timeout, secrets, shown), ref, creds)
        except SourceFailed as err:
            damage = _damage(git_dir, err, timeout)
            if damage is None:
                raise
        log.warning("warning: the Git cache %s of %s was corrupted (%s); re-cloning it", git_dir, shown, damage)
        shutil.rmtree(git_dir, ignore_errors=True)
        git_dir = self._ensure(url, timeout)
        try:
            return self._fetch_into(git_dir, _Remote(url, {}, timeout, secrets, shown), ref, creds)
        except SourceFailed as err:
            raise SourceFailed(f"{err} (after re-cloning the corrupted cache {git_dir})") from None

    def _fetch_into(self, git_dir: Path, remote: _Remote, ref: GitRef, creds: Credentials | None) -> Revision:
        with _auth_env(creds, remote.timeout, allow_file=self.policy.allow_file_urls) as env:
            sha, label = _resolve(git_dir, replace(remote, env=env), ref)
        return _revision(git_dir, sha, label)

    def export(self, url: str, revision_sha: str, dest: Path, ignore: list[str] | None = None,
               timeout: float = DEFAULT_TIMEOUT) -> list[str]:
        """Write the tree of commit `revision_sha` (already fetched) into the empty or new `dest`.

        `ignore` holds gitignore-style patterns (GitSource spec.ignore); when None, Flux's default
        exclusions apply. Returns the written paths, relative and sorted.
        """
        bare = split_credentials(url)[0]
        shown = redact(url)
        if not _SHA_RE.match(revision_sha):
            raise SourceFailed(f"cannot export {revision_sha!r} from {shown}: not a full commit SHA")
        dest = Path(dest)
        try:
            if dest.exists() and any(dest.iterdir()):
                raise SourceFailed(f"cannot export {shown}@{revision_sha} into {dest}: it is not empty")
            with self._locked(bare, timeout):
                git_dir = self.path_for(bare)
                if not _is_repository(git_dir) or not _has_commit(git_dir, revision_sha):
                    raise SourceFailed(f"commit {revision_sha} of {shown} is not in the cache; fetch it first")
                dest.mkdir(parents=True, exist_ok=True)
                return _export_commit(git_dir, revision_sha, dest, ignore, self.policy.limits, timeout)
        except OSError as err:
            raise SourceFailed(f"cannot export {shown}@{revision_sha[:12]} into {dest}: "
                               f"{err.strerror or err} ({err.filename or dest})") from None

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

    def _ensure(self, url: str, timeout: float) -> Path:
        """The cached repository, created (once) if missing or left half-made by a crash."""
        git_dir = self.path_for(url)
        if _is_repository(git_dir):
            return git_dir
        shutil.rmtree(git_dir, ignore_errors=True)
        status, _, err = _git(["init", "--quiet", "--bare", "--", str(git_dir)], self.root, timeout=timeout)
        if status != 0:
            raise SourceFailed(f"cannot create the Git cache {git_dir}: {_git_reason(err, ())}")
        _local(git_dir, "config", "gc.autoDetach", "false")  # no gc left running after we return
        (git_dir / SOURCE_FILE).write_text(json.dumps({"url": redact(url)}) + "\n")
        return git_dir


def _local_path(url: str) -> Path | None:
    """The directory a file:// URL or a plain local path names; None for network URLs."""
    if url.lower().startswith("file://"):
        return Path(unquote(urlsplit(url).path) or "/")
    if "://" in url or _SCP_LIKE_RE.match(url):
        return None
    return Path(url).absolute()


def _damage(git_dir: Path, err: SourceFailed, timeout: float) -> str | None:
    """Why the cached repository is unusable, or None when it is sound (the failure was elsewhere)."""
    if isinstance(err, _CacheBroken) and _CORRUPTION_RE.search(str(err)):
        return str(err).split(": ", 1)[-1]
    if "Timeout:" in str(err) or "timed out" in str(err):
        return None  # slow is not broken: never throw away a cache for it
    status, _, stderr = _run(git_dir, ["fsck", "--connectivity-only", "--no-dangling", "--no-progress"],
                             timeout=timeout)
    if status == 0 or stderr.startswith("Timeout:"):
        return None
    return _git_reason(stderr, ()) if stderr.strip() else f"git fsck exited with {status}"


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


class _Batch:
    """`git cat-file --batch` on the cached repository: objects by SHA, killed at the deadline."""

    def __init__(self, git_dir: Path, deadline: float) -> None:
        self.proc = subprocess.Popen(["git", f"--git-dir={git_dir}", "cat-file", "--batch"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=base_env(),
                                     cwd=git_dir.parent, start_new_session=True)
        self.timer = threading.Timer(max(0.0, deadline - time.monotonic()), _kill_group, (self.proc,))
        self.timer.daemon = True
        self.timer.start()

    def header(self, sha: str) -> tuple[str, int]:
        """Ask for `sha`; returns (type, size) with the content waiting on stdout."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(sha.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError as err:  # killed at the deadline, or died
            raise _CacheBroken(f"git cat-file stopped answering ({err.strerror})") from None
        line = self.proc.stdout.readline().decode(errors="replace").split()
        if len(line) != 3:
            raise _CacheBroken(f"object {sha} is missing from the cache ({' '.join(line) or 'no answer'})")
        return line[1], int(line[2])

    def read(self, sha: str, kind: str) -> bytes:
        found, size = self.header(sha)
        if found != kind:
            raise SourceFailed(f"object {sha} is a {found}, expected a {kind}")
        return self._content(size)

    def copy(self, size: int, out: IO[bytes]) -> None:
        assert self.proc.stdout is not None
        left = size
        while left:
            chunk = self.proc.stdout.read(min(left, 1 << 20))
            if not chunk:
                raise _CacheBroken("git cat-file stopped mid-object (killed at the timeout?)")
            out.write(chunk)
            left -= len(chunk)
        self.proc.stdout.read(1)  # the newline after each object

    def _content(self, size: int) -> bytes:
        assert self.proc.stdout is not None
        data = self.proc.stdout.read(size)
        self.proc.stdout.read(1)
        if len(data) != size:
            raise _CacheBroken("git cat-file stopped mid-object (killed at the timeout?)")
        return data

    def close(self) -> None:
        self.timer.cancel()
        _kill_group(self.proc)
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with suppress(OSError):  # stdin's buffer cannot be flushed into a killed process
                    stream.close()


def _tree_entries(data: bytes, where: str) -> Iterator[tuple[int, str, str]]:
    """(mode, name, sha) of a raw tree object, refusing names that would leave the export."""
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        nul = data.find(b"\x00", space + 1)
        if space < 0 or nul < 0 or nul + 21 > len(data):
            raise SourceFailed(f"tree {where or '/'} is malformed")
        try:
            mode = int(data[pos:space], 8)
        except ValueError:
            raise SourceFailed(f"tree {where or '/'} is malformed (mode {data[pos:space]!r})") from None
        raw = data[space + 1:nul]
        sha = data[nul + 1:nul + 21].hex()
        pos = nul + 21
        name = os.fsdecode(raw)
        if raw in (b"", b".", b"..") or b"/" in raw or b"\x00" in raw:
            raise SourceFailed(f"the revision holds a tree entry {name!r} in {where or '/'} that would "
                               "escape the export (refused)")
        yield mode, name, sha


@dataclass
class _Exporter:
    dest: Path
    head: list[_Pattern]  # defaults (or nothing when spec.ignore is set)
    tail: list[_Pattern]  # spec.ignore: last, so it may overrule .sourceignore
    batch: _Batch
    limits: Limits
    deadline: float
    timeout: float
    written: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    entries: int = 0
    bytes: int = 0

    def walk(self, root_tree: str) -> None:
        """Depth-first over the trees (iteratively: depth is bounded by max_files, not the stack)."""
        todo: list[tuple[str, str, list[_Pattern]]] = [(root_tree, "", [])]
        while todo:
            sha, prefix, nested = todo.pop()
            entries = list(_tree_entries(self.batch.read(sha, "tree"), prefix))
            nested = nested + self._sourceignore(entries, prefix)
            patterns = [*self.head, *nested, *self.tail]
            for mode, name, child in entries:
                self._count()
                path = f"{prefix}{name}"
                kind = mode & 0o170000
                if kind == 0o160000 or name.lower() == ".git":
                    continue  # submodules are not exported; .git is never written
                if _ignored(path, kind == 0o040000, patterns):
                    continue
                if kind == 0o040000:
                    (self.dest / path).mkdir()
                    todo.append((child, path + "/", nested))
                elif kind == 0o120000:
                    target = self.batch.read(child, "blob")
                    self.links.append((path, os.fsdecode(target)))
                else:
                    self._blob(child, path, mode)

    def _count(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_files:
            raise SourceFailed(f"the revision has more than {self.limits.max_files} files and directories "
                               f"({self.limits.hint('max_files')})")
        if self.entries % 256 == 0 and time.monotonic() > self.deadline:
            raise SourceFailed(f"exporting the revision took more than {self.timeout:g}s (spec.timeout)")

    def _sourceignore(self, entries: list[tuple[int, str, str]], prefix: str) -> list[_Pattern]:
        for mode, name, sha in entries:
            if name == SOURCEIGNORE and mode & 0o170000 == 0o100000:
                text = self.batch.read(sha, "blob").decode("utf-8", "replace")
                return compile_ignore(text.splitlines(), prefix.rstrip("/"))
        return []

    def _blob(self, sha: str, path: str, mode: int) -> None:
        kind, size = self.batch.header(sha)
        if kind != "blob":
            raise SourceFailed(f"{path}: object {sha} is a {kind}, expected a blob")
        self.bytes += size
        if self.bytes > self.limits.max_bytes:
            self.batch.close()
            raise SourceFailed(f"{path}: the revision holds more than {self.limits.max_bytes} bytes "
                               f"({self.limits.hint('max_bytes')})")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(self.dest / path, flags, 0o755 if mode & 0o111 else 0o644)
        with os.fdopen(fd, "wb") as handle:
            self.batch.copy(size, handle)
        self.written.append(path)

    def make_links(self) -> None:
        """Symlinks last, then keep only those whose whole resolution exists inside the export."""
        for path, target in self.links:
            if "\x00" in target or os.path.isabs(target):
                continue
            lexical = os.path.normpath(os.path.join(os.path.dirname(path), target))
            if lexical == ".." or lexical.startswith("../"):
                continue
            os.symlink(target, self.dest / path)
        root = os.path.realpath(self.dest)
        kept = {path for path, _ in self.links if os.path.islink(self.dest / path)}
        changed = True
        while changed:  # removing one link can change where another resolves
            changed = False
            for path in sorted(kept):
                try:  # strict: a dangling or looping link is dropped too (nothing may complete it later)
                    real = os.path.realpath(self.dest / path, strict=True)
                except OSError:
                    real = ""
                if real != root and not real.startswith(root + os.sep):
                    os.unlink(self.dest / path)
                    kept.discard(path)
                    changed = True
        self.written += kept


def _export_commit(git_dir: Path, sha: str, dest: Path, ignore: list[str] | None, limits: Limits,
                   timeout: float) -> list[str]:
    head = compile_ignore(DEFAULT_IGNORE) if ignore is None else []
    deadline = time.monotonic() + timeout
    batch = _Batch(git_dir, deadline)
    try:
        exporter = _Exporter(dest, head, compile_ignore(ignore or []), batch, limits, deadline, timeout)
        commit = batch.read(sha, "commit").decode(errors="replace")
        tree = commit.split("\n", 1)[0].removeprefix("tree ").strip()
        if not _SHA_RE.match(tree):
            raise SourceFailed(f"commit {sha} has no readable tree")
        exporter.walk(tree)
        exporter.make_links()
    except FileExistsError as err:
        raise SourceFailed(f"the revision names {Path(str(err.filename)).relative_to(dest)} twice "
                           "(a malformed tree; refused)") from None
    except _CacheBroken:
        if time.monotonic() > deadline:
            raise SourceFailed(f"exporting the revision took more than {timeout:g}s (spec.timeout)") from None
        raise
    finally:
        batch.close()
    return sorted(exporter.written)


# --- signatures (read here, verified by adapters/keys.py) ----------------------------------

_SIG_HEADERS = (b"gpgsig ", b"gpgsig-sha256 ")
_SIG_MARKERS = (b"-----BEGIN PGP SIGNATURE-----", b"-----BEGIN SSH SIGNATURE-----",
                b"-----BEGIN SIGNED MESSAGE-----")


@dataclass(frozen=True)
class SignedObject:
    """A commit or tag object split as git splits it: the signed `payload`, the `signature` (b"" when
    unsigned), and the committer (or tagger) time the signature is judged at."""

    sha: str
    kind: str
    payload: bytes
    signature: bytes
    time: datetime


def _object_time(headers: bytes, field: bytes) -> datetime:
    for line in headers.split(b"\n"):
        if line.startswith(field + b" "):
            words = line.rsplit(b" ", 2)
            try:
                seconds, offset = int(words[1]), words[2].decode()
                sign = -1 if offset.startswith("-") else 1
                delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])) * sign
                return datetime.fromtimestamp(seconds, timezone(delta))
            except (ValueError, IndexError):
                break
    return datetime.fromtimestamp(0, UTC)


def split_commit(sha: str, raw: bytes) -> SignedObject:
    """Strip the gpgsig header lines (and their continuation lines) exactly as git's
    `remove_signature` does; what is left is what the signer signed."""
    head, sep, body = raw.partition(b"\n\n")
    kept: list[bytes] = []
    signatures: list[list[bytes]] = []
    current: list[bytes] | None = None
    for line in head.split(b"\n"):
        if current is not None and line.startswith(b" "):
            current.append(line[1:])
            continue
        current = None
        if line.startswith(_SIG_HEADERS):
            current = [line.split(b" ", 1)[1]]
            signatures.append(current)
            continue
        kept.append(line)
    signature = b"\n".join(signatures[0]) + b"\n" if signatures else b""
    payload = b"\n".join(kept) + sep + body
    return SignedObject(sha, "commit", payload, signature, _object_time(head, b"committer"))


def split_tag(sha: str, raw: bytes) -> SignedObject:
    """An annotated tag carries its signature at the end of the message: payload is what precedes it."""
    start = -1
    for marker in _SIG_MARKERS:
        at = raw.find(b"\n" + marker)
        found = at + 1 if at >= 0 else (0 if raw.startswith(marker) else -1)
        if found >= 0 and (start < 0 or found < start):
            start = found
    head = raw.partition(b"\n\n")[0]
    if start < 0:
        return SignedObject(sha, "tag", raw, b"", _object_time(head, b"tagger"))
    return SignedObject(sha, "tag", raw[:start], raw[start:], _object_time(head, b"tagger"))


def read_signed(git_dir: Path, sha: str, kind: str) -> SignedObject:
    """The commit or tag object `sha` of a cached repository, split into payload and signature."""
    status, out, err = _run_bytes(git_dir, ["cat-file", kind, sha])
    if status != 0:
        raise _CacheBroken(f"git cat-file {kind} {sha} failed in cache {git_dir}: {_git_reason(err, ())}")
    return split_commit(sha, out) if kind == "commit" else split_tag(sha, out)


def _run_bytes(git_dir: Path, args: Sequence[str]) -> tuple[int, bytes, str]:
    try:
        proc = subprocess.run(["git", f"--git-dir={git_dir.absolute()}", *args], stdin=subprocess.DEVNULL,
                              capture_output=True, env=base_env(), timeout=DEFAULT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return -9, b"", f"Timeout: git took more than {DEFAULT_TIMEOUT:g}s"
    except OSError as failed:
        return 127, b"", f"fatal: cannot run git: {failed.strerror}"
    return proc.returncode, proc.stdout, proc.stderr.decode(errors="replace")


def tag_object(git_dir: Path, tag: str) -> str | None:
    """The annotated tag object `refs/tags/<tag>` points to, or None for a lightweight tag."""
    status, out, _ = _run(git_dir, ["rev-parse", "--verify", "--quiet", f"refs/tags/{tag}"])
    if status != 0:
        return None
    sha = out.strip()
    kind = _run(git_dir, ["cat-file", "-t", sha])[1].strip()
    return sha if kind == "tag" else None


def commits_since(git_dir: Path, old: str, new: str, limit: int = 10000) -> list[str]:
    """Commits reachable from `new` but not from `old`, oldest first (after a force-push: every commit
    not in the old history); just [new] when `old` is not in this cache (first verification)."""
    if not old or not _has_commit(git_dir, old):
        return [new]
    out = _local(git_dir, "rev-list", "--reverse", f"--max-count={limit}", new, f"^{old}")
    return out.split()
