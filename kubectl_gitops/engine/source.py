"""Resolve a GitSource to a revision and a checked-out tree, recording the GitSource's status.

The Git cache lives on this machine (one bare repository per URL, fetched incrementally); the
tree handed to the build is an export of exactly the resolved commit in a temporary directory
that is removed afterwards. A fetch that fails leaves the last good artifact in the status.

The source policy (what this machine may fetch: file:// URLs or not, and the size limits of
core/limits.py) is decided by whoever builds the fetcher: the CLI takes it from the environment
(`SourcePolicy.from_env`: file URLs allowed unless KUBECTL_GITOPS_ALLOW_FILE_URLS=false); the
future controller code passes `SourcePolicy(allow_file_urls=False)`. A tenant's Sync is fetched
under a narrower policy still (`tenant_policy`): no file URL unless its Tenant's sourceURLs list a
file:// glob (docs/tenancy.md). No file URL may point into this plugin's own cache directory,
whatever the policy.
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kubectl_gitops.adapters.git import Credentials, GitCache, GitRef, Revision, SourcePolicy, redact
from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.adapters.paths import cache_root
from kubectl_gitops.core.discovery import SECRETS
from kubectl_gitops.core.errors import GitOpsError, SourceFailed
from kubectl_gitops.core.spec import SourceSpec, parse_source
from kubectl_gitops.engine import record

JSON = dict[str, Any]


@dataclass(frozen=True)
class Tree:
    """An exported revision: `path` holds the files of commit `sha`; `revision` is Flux's string."""

    path: Path
    revision: str
    sha: str


class SourceFetcher:
    def __init__(self, kube: Kube, cache: GitCache | None = None, policy: SourcePolicy | None = None) -> None:
        self.kube = kube
        self._policy = policy
        self._cache = cache
        self.secrets: tuple[str, ...] = ()
        """Credential values seen by the last fetch: to mask in any message of the build after it."""

    @property
    def policy(self) -> SourcePolicy:
        if self._policy is None:
            self._policy = SourcePolicy.from_env(os.environ, (cache_root(),))
        return self._policy

    @property
    def cache(self) -> GitCache:
        if self._cache is None:
            self._cache = GitCache(cache_root() / "git", self.policy)
        return self._cache

    def get_source(self, namespace: str, name: str) -> JSON:
        found = self.kube.get(record.SOURCES, name, namespace)
        if found is None:
            raise SourceFailed(f"GitSource {namespace}/{name} not found")
        return found

    def tenant_policy(self, allow_file_urls: bool) -> SourcePolicy:
        """This machine's policy, narrowed for a tenant's Sync (never widened)."""
        return replace(self.policy, allow_file_urls=self.policy.allow_file_urls and allow_file_urls)

    def _cache_for(self, policy: SourcePolicy | None) -> GitCache:
        if policy is None or policy == self.policy:
            return self.cache
        return GitCache(self.cache.root, policy)

    def fetch(self, source: JSON, policy: SourcePolicy | None = None) -> tuple[SourceSpec, Revision]:
        """Fetch the GitSource under `policy` (default this machine's)."""
        spec = parse_source(source)
        if spec.suspend:
            last = str(((source.get("status") or {}).get("artifact") or {}).get("revision") or "")
            raise SourceFailed(f"GitSource {spec.namespace}/{spec.name} is suspended"
                               + (f" (last revision {last})" if last else " and was never fetched"))
        try:
            ref = GitRef(spec.ref.branch, spec.ref.tag, spec.ref.semver, spec.ref.commit)
            with self._credentials(spec) as creds:
                self.secrets = creds.secrets() if creds else ()
                revision = self._cache_for(policy).fetch(spec.url, ref, creds, timeout=spec.timeout,
                                                         insecure=spec.insecure)
        except GitOpsError as err:
            message = redact(str(err), self.secrets)
            self._record(source, spec, None, SourceFailed(message))
            raise SourceFailed(f"GitSource {spec.namespace}/{spec.name}: {message}") from None
        self._record(source, spec, revision, None)
        return spec, revision

    @contextmanager
    def checkout(self, source: JSON, policy: SourcePolicy | None = None) -> Iterator[Tree]:
        spec, revision = self.fetch(source, policy)
        ignore = [line for line in spec.ignore.splitlines() if line.strip()] or None
        with self._workdir(spec) as tmp:
            dest = tmp / "tree"
            try:
                self.cache.export(spec.url, revision.sha, dest, ignore, timeout=spec.timeout)
            except SourceFailed as err:
                raise SourceFailed(f"GitSource {spec.namespace}/{spec.name}: {err}") from None
            yield Tree(dest, revision.ref, revision.sha)

    @contextmanager
    def _workdir(self, spec: SourceSpec) -> Iterator[Path]:
        try:
            handle = tempfile.TemporaryDirectory(prefix="kubectl-gitops-")
        except OSError as err:
            raise SourceFailed(f"GitSource {spec.namespace}/{spec.name}: cannot create a temporary directory "
                               f"to export into ({err.strerror}; set TMPDIR to a writable directory)") from None
        with handle as tmp:
            yield Path(tmp)

    @contextmanager
    def _credentials(self, spec: SourceSpec) -> Iterator[Credentials | None]:
        """Flux's secret keys: username/password, bearerToken, identity/known_hosts, ca.crt.

        A `ca.crt` is written to a private temporary file for the duration of the fetch only."""
        if not spec.secret_name:
            yield None
            return
        secret = self.kube.get(SECRETS, spec.secret_name, spec.namespace)
        if secret is None:
            raise SourceFailed(f"secret {spec.namespace}/{spec.secret_name} (spec.secretRef) not found")
        try:
            data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()}
        except ValueError as err:
            raise SourceFailed(f"secret {spec.namespace}/{spec.secret_name} (spec.secretRef) holds data that "
                               f"is not base64: {err}") from None
        with tempfile.TemporaryDirectory(prefix="kubectl-gitops-ca-") as tmp:
            ca_file = None
            if data.get("ca.crt"):
                ca_file = Path(tmp) / "ca.crt"
                ca_file.write_text(data["ca.crt"])
            yield Credentials(username=data.get("username", ""), password=data.get("password", ""),
                              bearer_token=data.get("bearerToken", ""), ssh_identity=data.get("identity", ""),
                              ssh_known_hosts=data.get("known_hosts", ""), ca_file=ca_file)

    def _record(self, source: JSON, spec: SourceSpec, revision: Revision | None, err: GitOpsError | None) -> None:
        generation = int((source.get("metadata") or {}).get("generation") or 0)
        old = source.get("status") or {}
        at = record.now()
        status: JSON = {"observedGeneration": generation}
        if revision is not None:
            message = f"stored artifact for revision '{revision.ref}'"
            status["conditions"] = record.conditions_for(old.get("conditions"), ready=True, reason="Succeeded",
                                                         message=message, generation=generation, at=at)
            previous = (old.get("artifact") or {}).get("revision")
            artifact = dict(old.get("artifact") or {})
            if previous != revision.ref or not artifact:
                artifact = {"revision": revision.ref, "lastUpdateTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
            status["artifact"] = artifact
        else:
            status["conditions"] = record.conditions_for(old.get("conditions"), ready=False, reason="SourceFailed",
                                                         message=str(err), generation=generation, at=at)
        try:
            record.patch_status(self.kube, record.SOURCES, spec.namespace, spec.name, status)
        except GitOpsError:
            if err is None:
                raise
