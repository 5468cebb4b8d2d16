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
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubectl_gitops.adapters.git import (
    Credentials,
    GitCache,
    GitRef,
    Revision,
    SignedObject,
    SourcePolicy,
    commits_since,
    read_signed,
    redact,
    split_credentials,
    tag_object,
)
from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.adapters.paths import cache_root
from kubectl_gitops.constants import GROUP, KIND_TRUST_POLICY, VERSION
from kubectl_gitops.core.discovery import SECRETS, ResourceInfo
from kubectl_gitops.core.errors import GitOpsError, SourceFailed, VerificationFailed
from kubectl_gitops.core.history import pin_sha
from kubectl_gitops.core.spec import InvalidSpec, SourceSpec, parse_source
from kubectl_gitops.core.trust import TrustPolicy, parse_trust_policy
from kubectl_gitops.engine import record

if TYPE_CHECKING:  # cryptography (adapters/keys) is imported only when a signature is checked
    from kubectl_gitops.adapters import keys

JSON = dict[str, Any]
log = logging.getLogger(__name__)
TRUST_POLICIES = ResourceInfo(GROUP, VERSION, KIND_TRUST_POLICY, "trustpolicies", False)


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
        verification = self._verify(source, spec, revision, policy)
        self._record(source, spec, revision, None, verification)
        return spec, revision

    def _verify(self, source: JSON, spec: SourceSpec, revision: Revision, policy: SourcePolicy | None) -> JSON | None:
        """spec.verify: the signatures the mode asks for, checked before anything is exported.

        A failure is recorded on the GitSource (reason VerificationFailed, the artifact of the last
        good revision kept) and raised, so the Sync records it and nothing is built or applied."""
        if spec.verify is None:
            return None
        trust: TrustPolicy | None = None
        try:
            trust, raw = self._trust_policy(spec.verify.trust_policy)
            git_dir = self._cache_for(policy).path_for(split_credentials(spec.url)[0])
            verified = self._verify_objects(git_dir, spec, revision, trust, source)
        except (VerificationFailed, InvalidSpec) as err:
            failed = VerificationFailed(f"GitSource {spec.namespace}/{spec.name}: {err}")
            if trust is not None and trust.mode == "warn":
                log.warning("%s (TrustPolicy %s is in warn mode: syncing anyway)", failed, trust.name)
                return {"mode": spec.verify.mode, "trustPolicy": trust.name, "commit": revision.sha,
                        "warning": str(failed)[:1024]}
            self._record(source, spec, None, failed, fetched=revision)
            raise failed from None
        self._record_policy(raw, trust, spec, verified)
        return {"key": verified.key_name, "fingerprint": verified.fingerprint, "mode": spec.verify.mode,
                "trustPolicy": trust.name, "commit": revision.sha}

    def _record_policy(self, raw: JSON, trust: TrustPolicy, spec: SourceSpec, verified: keys.Verified) -> None:
        """TrustPolicy status: each key's fingerprint and the GitSources it last verified (best effort)."""
        old = {str(k.get("name")): k for k in (raw.get("status") or {}).get("keys") or []}
        user = f"{spec.namespace}/{spec.name}"
        entries = []
        for key in trust.keys:
            entry: JSON = {"name": key.name, "type": key.type,
                           "fingerprint": str(old.get(key.name, {}).get("fingerprint") or "")}
            if key.type == "ssh":
                from kubectl_gitops.adapters import keys

                entry["fingerprint"] = keys.parse_key(key.public_key, key.name).fingerprint
            if key.name == verified.key_name:
                entry["fingerprint"] = verified.fingerprint
            used = [u for u in old.get(key.name, {}).get("usedBy") or [] if u != user]
            entry["usedBy"] = sorted([*used, user] if key.name == verified.key_name else used)[:256]
            entries.append(entry)
        generation = int((raw.get("metadata") or {}).get("generation") or 0)
        try:
            self.kube.merge_patch(TRUST_POLICIES, trust.name, None,
                                  {"status": {"observedGeneration": generation, "keys": entries}}, subresource="status")
        except GitOpsError as err:
            log.info("cannot record the status of TrustPolicy %s: %s", trust.name, err)

    def _trust_policy(self, name: str) -> tuple[TrustPolicy, JSON]:
        try:
            found = self.kube.get(TRUST_POLICIES, name, None)
        except GitOpsError as err:
            raise VerificationFailed(f"cannot read TrustPolicy {name}: {err}") from None
        if found is None:
            raise VerificationFailed(f"TrustPolicy {name} (spec.verify.trustPolicy) not found")
        return parse_trust_policy(found), found

    def _verify_objects(self, git_dir: Path, spec: SourceSpec, revision: Revision, trust: TrustPolicy,
                        source: JSON) -> keys.Verified:
        assert spec.verify is not None
        if spec.verify.mode == "Tag":
            tag = spec.ref.tag or (revision.ref.split("@", 1)[0] if spec.ref.semver else "")
            if not tag or spec.ref.commit:
                raise VerificationFailed("spec.verify.mode Tag needs spec.ref.tag or spec.ref.semver")
            sha = tag_object(git_dir, tag)
            if sha is None:
                raise VerificationFailed(f"tag {tag!r} ({revision.sha[:12]}) is not an annotated tag, "
                                         "so it carries no signature")
            return _check(read_signed(git_dir, sha, "tag"), trust, f"tag {tag!r} ({sha[:12]})")
        commits = [revision.sha]
        if spec.verify.mode == "All":
            commits = commits_since(git_dir, _last_verified(source), revision.sha)
        verified: keys.Verified | None = None
        for sha in commits:
            verified = _check(read_signed(git_dir, sha, "commit"), trust, f"commit {sha}")
        assert verified is not None
        return verified

    @contextmanager
    def checkout(self, source: JSON, policy: SourcePolicy | None = None, pin: str = "") -> Iterator[Tree]:
        """The tree of the GitSource's revision, or of `pin` (a Sync's spec.revision, a rollback):
        the source is fetched and verified as always, then the pinned commit is checked out instead
        of the tip, provided it is in the tip's history (and signed, when the source verifies)."""
        spec, revision = self.fetch(source, policy)
        if pin:
            revision = self._pinned(source, spec, revision, pin, policy)
        ignore = [line for line in spec.ignore.splitlines() if line.strip()] or None
        with self._workdir(spec) as tmp:
            dest = tmp / "tree"
            try:
                self.cache.export(spec.url, revision.sha, dest, ignore, timeout=spec.timeout)
            except SourceFailed as err:
                raise SourceFailed(f"GitSource {spec.namespace}/{spec.name}: {err}") from None
            yield Tree(dest, revision.ref, revision.sha)

    def _pinned(self, source: JSON, spec: SourceSpec, tip: Revision, pin: str,
                policy: SourcePolicy | None) -> Revision:
        sha = pin_sha(pin)
        where = f"GitSource {spec.namespace}/{spec.name}"
        git_dir = self._cache_for(policy).path_for(split_credentials(spec.url)[0])
        try:
            outside = commits_since(git_dir, tip.sha, sha, limit=1)
        except GitOpsError:
            outside = [sha]  # not even in the cache: the ref's history never held it
        if outside:
            raise SourceFailed(f"{where}: the pinned revision {sha} (spec.revision) is not in the history of "
                               f"{spec.ref.describe()} (at {tip.ref}); `kubectl gitops rollback --cancel` "
                               "tracks the ref again")
        if spec.verify is not None:
            trust, _ = self._trust_policy(spec.verify.trust_policy)
            try:
                _check(read_signed(git_dir, sha, "commit"), trust, f"pinned commit {sha}")
            except VerificationFailed as err:
                if trust.mode != "warn":
                    raise VerificationFailed(f"{where}: {err}") from None
                log.warning("%s: %s (TrustPolicy %s is in warn mode: syncing anyway)", where, err, trust.name)
        label = tip.ref.split("@", 1)[0] + "@" if "@" in tip.ref else ""
        return replace(tip, sha=sha, ref=f"{label}sha1:{sha}", message="", author="")

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

    def _record(self, source: JSON, spec: SourceSpec, revision: Revision | None, err: GitOpsError | None,
                verification: JSON | None = None, fetched: Revision | None = None) -> None:
        """`fetched`: a revision fetched but refused (verification), recorded as lastFetchedRevision."""
        generation = int((source.get("metadata") or {}).get("generation") or 0)
        old = source.get("status") or {}
        at = record.now()
        status: JSON = {"observedGeneration": generation}
        seen = fetched or revision
        if seen is not None:
            status["lastFetchedRevision"] = seen.ref
        if revision is not None:
            message = f"stored artifact for revision '{revision.ref}'"
            status["conditions"] = record.conditions_for(old.get("conditions"), ready=True, reason="Succeeded",
                                                         message=message, generation=generation, at=at)
            previous = (old.get("artifact") or {}).get("revision")
            artifact = dict(old.get("artifact") or {})
            if previous != revision.ref or not artifact:
                artifact = {"revision": revision.ref, "lastUpdateTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
            if verification is not None or "verification" in artifact:
                artifact["verification"] = verification  # None (a JSON null) removes an old record
            status["artifact"] = artifact
        else:
            reason = err.reason if err else "SourceFailed"
            status["conditions"] = record.conditions_for(old.get("conditions"), ready=False, reason=reason,
                                                         message=str(err), generation=generation, at=at)
        try:
            record.patch_status(self.kube, record.SOURCES, spec.namespace, spec.name, status)
        except GitOpsError:
            if err is None:
                raise


def _last_verified(source: JSON) -> str:
    """The commit the GitSource status records as last verified ("" the first time)."""
    artifact = (source.get("status") or {}).get("artifact") or {}
    return str((artifact.get("verification") or {}).get("commit") or "")


def _check(obj: SignedObject, trust: TrustPolicy, what: str) -> keys.Verified:
    try:
        from kubectl_gitops.adapters import keys

        return keys.verify_with_policy(obj.signature, obj.payload, obj.time, trust)
    except VerificationFailed as err:
        raise VerificationFailed(f"{what} refused: {err}") from None
