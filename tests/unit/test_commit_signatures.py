"""Commit and tag signatures: real repositories signed by real git (SSH and OpenPGP), read by the git
adapter, checked against a TrustPolicy by the keys adapter and by the source step of the engine.

Each refusal (unsigned, untrusted, outside the validity window, garbage, moved tag) is an attack
that must stop the source step with VerificationFailed naming the commit and the reason, and
leave the GitSource's last good artifact in place.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.adapters import keys
from kubectl_gitops.adapters.git import GitCache, GitRef, read_signed, split_commit
from kubectl_gitops.core.discovery import ResourceInfo
from kubectl_gitops.core.errors import VerificationFailed
from kubectl_gitops.core.spec import InvalidSpec, parse_source
from kubectl_gitops.core.trust import TrustPolicy, parse_trust_policy
from kubectl_gitops.engine.source import SourceFetcher

JSON = dict[str, Any]
BASE = ["-c", "user.name=Ada", "-c", "user.email=ada@example.com", "-c", "init.defaultBranch=main",
        "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"]


class Repo:
    def __init__(self, path: Path, env: dict[str, str] | None = None) -> None:
        self.path = path
        self.env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
        path.mkdir(parents=True)
        self.git("init", "-q")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        return subprocess.run(["git", *BASE, *args], cwd=self.path, env={**self.env, **(env or {})}, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit(self, message: str, *sign: str, env: dict[str, str] | None = None) -> str:
        (self.path / "file.txt").write_text(message)
        self.git("add", "-A")
        self.git(*sign, "commit", "-q", *(["-S"] if sign else []), "-m", message, env=env)
        return self.git("rev-parse", "HEAD")

    @property
    def url(self) -> str:
        return self.path.as_uri()


def ssh_key(tmp: Path, name: str) -> tuple[Path, str]:
    path = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path, Path(f"{path}.pub").read_text().strip()


def ssh_sign(key: Path) -> tuple[str, ...]:
    return ("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}")


@pytest.fixture
def gnupg(tmp_path: Path) -> Iterator[tuple[dict[str, str], str, str]]:
    """A gpg key made in a temporary GNUPGHOME: (env, fingerprint, armored public key)."""
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "Ada <ada@example.com>", "ed25519",
                    "sign", "never"], env=env, check=True, capture_output=True)
    listing = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys"], env=env, check=True,
                             capture_output=True, text=True).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    armored = subprocess.run(["gpg", "--batch", "--armor", "--export", fpr], env=env, check=True,
                             capture_output=True, text=True).stdout
    yield {"GNUPGHOME": str(home)}, fpr, armored
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, capture_output=True)


def policy(*keys_: JSON) -> TrustPolicy:
    return parse_trust_policy({"metadata": {"name": "release"}, "spec": {"keys": list(keys_)}})


def cache_dir(cache: GitCache, repo: Repo, ref: str) -> Path:
    git_dir = cache.path_for(repo.url)
    cache.fetch(repo.url, GitRef(branch=ref))
    return git_dir


# --- the git adapter splits objects exactly as git verifies them -----------------------------


def test_ssh_signed_commit_verifies_and_payload_matches_git(tmp_path: Path) -> None:
    key, pub = ssh_key(tmp_path, "alice")
    repo = Repo(tmp_path / "repo")
    sha = repo.commit("signed", *ssh_sign(key))
    raw = subprocess.run(["git", "cat-file", "commit", sha], cwd=repo.path, capture_output=True, check=True).stdout
    obj = split_commit(sha, raw)
    assert obj.signature.startswith(b"-----BEGIN SSH SIGNATURE-----")
    assert b"gpgsig" not in obj.payload and obj.payload.endswith(b"\n\nsigned\n")
    trust = policy({"name": "alice", "type": "ssh", "publicKey": pub})
    verified = keys.verify_with_policy(obj.signature, obj.payload, obj.time, trust)
    assert verified.key_name == "alice" and verified.fingerprint.startswith("SHA256:")
    # and `git verify-commit` with an allowed signers file agrees on the same commit
    allowed = tmp_path / "allowed"
    allowed.write_text(f"ada@example.com {pub}\n")
    repo.git("-c", f"gpg.ssh.allowedSignersFile={allowed}", "verify-commit", sha)


def test_pgp_signed_commit_verifies(tmp_path: Path, gnupg: tuple[dict[str, str], str, str]) -> None:
    env, fpr, armored = gnupg
    repo = Repo(tmp_path / "repo")
    sha = repo.commit("signed", "-c", "gpg.program=gpg", "-c", f"user.signingkey={fpr}", env=env)
    raw = subprocess.run(["git", "cat-file", "commit", sha], cwd=repo.path, capture_output=True, check=True).stdout
    obj = split_commit(sha, raw)
    trust = policy({"name": "ada-pgp", "type": "pgp", "publicKey": armored})
    assert keys.verify_with_policy(obj.signature, obj.payload, obj.time, trust) == keys.Verified("ada-pgp", fpr)
    with pytest.raises(VerificationFailed, match=r"BADSIG|does not match"):
        keys.verify_with_policy(obj.signature, obj.payload + b"x", obj.time, trust)


def test_pgp_untrusted_key_is_refused(tmp_path: Path, gnupg: tuple[dict[str, str], str, str]) -> None:
    env, fpr, _ = gnupg
    repo = Repo(tmp_path / "repo")
    sha = repo.commit("signed", "-c", "gpg.program=gpg", "-c", f"user.signingkey={fpr}", env=env)
    raw = subprocess.run(["git", "cat-file", "commit", sha], cwd=repo.path, capture_output=True, check=True).stdout
    obj = split_commit(sha, raw)
    _, other = ssh_key(tmp_path, "bob")
    with pytest.raises(VerificationFailed, match=r"has no pgp key"):
        keys.verify_with_policy(obj.signature, obj.payload, obj.time, policy({"name": "b", "type": "ssh",
                                                                              "publicKey": other}))


def test_unsigned_untrusted_window_and_garbage_are_refused(tmp_path: Path) -> None:
    key, pub = ssh_key(tmp_path, "alice")
    _, other = ssh_key(tmp_path, "mallory")
    repo = Repo(tmp_path / "repo")
    when = {"GIT_COMMITTER_DATE": "2026-03-01T12:00:00Z"}
    signed = repo.commit("signed", *ssh_sign(key), env=when)
    unsigned = repo.commit("unsigned")
    read = {sha: split_commit(sha, subprocess.run(["git", "cat-file", "commit", sha], cwd=repo.path,
                                                  capture_output=True, check=True).stdout)
            for sha in (signed, unsigned)}
    alice = {"name": "alice", "type": "ssh", "publicKey": pub}
    with pytest.raises(VerificationFailed, match=r"not signed"):
        keys.verify_with_policy(read[unsigned].signature, read[unsigned].payload, read[unsigned].time, policy(alice))
    obj = read[signed]
    assert obj.time == datetime(2026, 3, 1, 12, tzinfo=UTC)
    with pytest.raises(VerificationFailed, match=r"not trusted"):
        keys.verify_with_policy(obj.signature, obj.payload, obj.time,
                                policy({"name": "m", "type": "ssh", "publicKey": other}))
    expired = {**alice, "notAfter": "2026-02-01T00:00:00Z"}
    with pytest.raises(VerificationFailed, match=r"outside its validity window"):
        keys.verify_with_policy(obj.signature, obj.payload, obj.time, policy(expired))
    early = {**alice, "notBefore": "2026-04-01T00:00:00Z"}
    with pytest.raises(VerificationFailed, match=r"outside its validity window"):
        keys.verify_with_policy(obj.signature, obj.payload, obj.time, policy(early))
    with pytest.raises(VerificationFailed, match=r"malformed"):
        keys.verify_with_policy(b"-----BEGIN NONSENSE-----", obj.payload, obj.time, policy(alice))


def test_commit_with_garbage_gpgsig_header_is_refused() -> None:
    raw = (b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1700000000 +0000\n"
           b"committer A <a@b> 1700000000 +0100\ngpgsig -----BEGIN SSH SIGNATURE-----\n AAAAgarbage\n"
           b" -----END SSH SIGNATURE-----\n\nmsg\n")
    obj = split_commit("c" * 40, raw)
    assert obj.payload == (b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1700000000 +0000\n"
                           b"committer A <a@b> 1700000000 +0100\n\nmsg\n")
    assert obj.time.utcoffset() is not None and obj.time.timestamp() == 1700000000
    with pytest.raises(VerificationFailed):
        keys.verify_with_policy(obj.signature, obj.payload, obj.time,
                                policy({"name": "x", "type": "ssh",
                                        "publicKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFyT0S8o1jvKZ2uYuRD7rGZ"
                                                     "V0rOCHJ2Pe+O5sUcoxnvl x"}))


# --- the TrustPolicy model ------------------------------------------------------------------


def test_trust_policy_parsing_names_the_bad_part() -> None:
    good = parse_trust_policy({"metadata": {"name": "p"}, "spec": {
        "keys": [{"name": "k", "type": "ssh", "publicKey": "ssh-ed25519 AAAA", "notAfter": "2027-01-01T00:00:00Z"}],
        "scope": {"namespaces": ["apps"], "syncs": ["apps/web"], "tenants": ["team-a"]}, "mode": "warn"}})
    assert good.mode == "warn" and good.scope.syncs == ("apps/web",) and good.keys[0].not_after is not None
    bad: list[tuple[JSON, str]] = [
        ({}, "spec.keys must list at least one key"),
        ({"keys": [{"name": "k", "type": "x509", "publicKey": "a"}]}, "key 'k': type must be one of ssh, pgp"),
        ({"keys": [{"name": "k", "type": "pgp", "publicKey": "ssh-ed25519 AAAA"}]}, "key 'k': a pgp key must be"),
        ({"keys": [{"name": "k", "type": "ssh", "publicKey": "a", "notBefore": "yesterday"}]}, "notBefore"),
        ({"keys": [{"name": "k", "type": "ssh", "publicKey": "a", "notAfter": "2026-01-01T00:00:00"}]}, "timezone"),
        ({"keys": [{"name": "k", "type": "ssh", "publicKey": "a"}] * 2}, "unique"),
        ({"keys": [{"name": "k", "type": "ssh", "publicKey": "a"}], "scope": {"syncs": ["web"]}}, "NAMESPACE/NAME"),
        ({"keys": [{"name": "k", "type": "ssh", "publicKey": "a"}], "mode": "audit"}, "enforce or warn"),
    ]
    for spec, message in bad:
        with pytest.raises(InvalidSpec, match=message):
            parse_trust_policy({"metadata": {"name": "p"}, "spec": spec})
    with pytest.raises(InvalidSpec, match=r"TrustPolicy p: key 'k': algorithm 'ssh-dss' is not supported"):
        keys.policy_ssh_keys(parse_trust_policy({"metadata": {"name": "p"}, "spec": {
            "keys": [{"name": "k", "type": "ssh", "publicKey": "ssh-dss AAAAB3NzaC1kc3M="}]}}))


def test_source_spec_verify() -> None:
    base: JSON = {"metadata": {"name": "s", "namespace": "n"}, "spec": {"url": "https://x/y"}}
    assert parse_source(base).verify is None
    spec = parse_source({**base, "spec": {"url": "https://x/y", "verify": {"mode": "All", "trustPolicy": "p"}}})
    assert spec.verify is not None and (spec.verify.mode, spec.verify.trust_policy) == ("All", "p")
    with pytest.raises(InvalidSpec, match=r"spec.verify.mode must be one of HEAD, Tag, All"):
        parse_source({**base, "spec": {"url": "https://x/y", "verify": {"mode": "head", "trustPolicy": "p"}}})
    with pytest.raises(InvalidSpec, match=r"spec.verify.trustPolicy is required"):
        parse_source({**base, "spec": {"url": "https://x/y", "verify": {"mode": "HEAD"}}})


# --- the source step ---------------------------------------------------------------------------


class FakeKube:
    """Just what the source step calls: get and a status merge patch (recorded)."""

    def __init__(self, objects: dict[tuple[str, str], JSON]) -> None:
        self.objects = objects
        self.patches: list[JSON] = []

    def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> JSON | None:
        return self.objects.get((info.plural, name))

    def merge_patch(self, info: ResourceInfo, name: str, namespace: str | None, body: JSON,
                    subresource: str | None = None) -> JSON:
        self.patches.append(body)
        return body


def source(url: str, verify: JSON, status: JSON | None = None, **ref: str) -> JSON:
    return {"metadata": {"name": "app", "namespace": "apps", "generation": 1},
            "spec": {"url": url, "ref": ref or {"branch": "main"}, "verify": verify}, "status": status or {}}


def fetcher(tmp_path: Path, pub: str) -> tuple[SourceFetcher, FakeKube]:
    kube = FakeKube({("trustpolicies", "release"): {"metadata": {"name": "release"}, "spec": {
        "keys": [{"name": "alice", "type": "ssh", "publicKey": pub}]}}})
    return SourceFetcher(kube, GitCache(tmp_path / "cache")), kube  # type: ignore[arg-type]


def test_source_step_records_the_verifying_key(tmp_path: Path) -> None:
    key, pub = ssh_key(tmp_path, "alice")
    repo = Repo(tmp_path / "repo")
    sha = repo.commit("one", *ssh_sign(key))
    fetch, kube = fetcher(tmp_path, pub)
    _, revision = fetch.fetch(source(repo.url, {"mode": "HEAD", "trustPolicy": "release"}))
    assert revision.sha == sha
    verification = kube.patches[-1]["status"]["artifact"]["verification"]
    assert verification["key"] == "alice" and verification["commit"] == sha
    assert verification["fingerprint"] == keys.parse_key(pub).fingerprint


def test_source_step_refuses_unsigned_head_and_keeps_the_artifact(tmp_path: Path) -> None:
    key, pub = ssh_key(tmp_path, "alice")
    repo = Repo(tmp_path / "repo")
    repo.commit("one", *ssh_sign(key))
    bad = repo.commit("two, unsigned")
    fetch, kube = fetcher(tmp_path, pub)
    with pytest.raises(VerificationFailed, match=f"GitSource apps/app: commit {bad} refused: it is not signed"):
        fetch.fetch(source(repo.url, {"mode": "HEAD", "trustPolicy": "release"}))
    status = kube.patches[-1]["status"]
    assert "artifact" not in status and status["conditions"][0]["reason"] == "VerificationFailed"


def test_all_mode_checks_every_new_commit(tmp_path: Path) -> None:
    key, pub = ssh_key(tmp_path, "alice")
    repo = Repo(tmp_path / "repo")
    first = repo.commit("one", *ssh_sign(key))
    sneaked = repo.commit("two, unsigned")
    repo.commit("three", *ssh_sign(key))
    fetch, _ = fetcher(tmp_path, pub)
    verify = {"mode": "All", "trustPolicy": "release"}
    fetch.fetch(source(repo.url, {"mode": "HEAD", "trustPolicy": "release"}))  # HEAD alone is signed
    last = {"artifact": {"verification": {"commit": first}}}
    with pytest.raises(VerificationFailed, match=f"commit {sneaked} refused: it is not signed"):
        fetch.fetch(source(repo.url, verify, last))


def test_tag_mode_needs_a_signed_annotated_tag(tmp_path: Path) -> None:
    key, pub = ssh_key(tmp_path, "alice")
    repo = Repo(tmp_path / "repo")
    repo.commit("one", *ssh_sign(key))
    repo.git(*ssh_sign(key), "tag", "-s", "v1", "-m", "release v1")
    fetch, kube = fetcher(tmp_path, pub)
    verify = {"mode": "Tag", "trustPolicy": "release"}
    fetch.fetch(source(repo.url, verify, tag="v1"))
    assert kube.patches[-1]["status"]["artifact"]["verification"]["key"] == "alice"
    repo.commit("two, unsigned")
    repo.git("tag", "-f", "-a", "v1", "-m", "moved")
    with pytest.raises(VerificationFailed, match=r"tag 'v1' .* refused: it is not signed"):
        fetch.fetch(source(repo.url, verify, tag="v1"))
    repo.git("tag", "-f", "v1")
    with pytest.raises(VerificationFailed, match=r"not an annotated tag"):
        fetch.fetch(source(repo.url, verify, tag="v1"))


def test_missing_trust_policy_is_a_verification_failure(tmp_path: Path) -> None:
    key, pub = ssh_key(tmp_path, "alice")
    repo = Repo(tmp_path / "repo")
    repo.commit("one", *ssh_sign(key))
    fetch, _ = fetcher(tmp_path, pub)
    with pytest.raises(VerificationFailed, match=r"TrustPolicy nope .* not found"):
        fetch.fetch(source(repo.url, {"mode": "HEAD", "trustPolicy": "nope"}))


def test_read_signed_reads_from_the_cache(tmp_path: Path) -> None:
    key, _ = ssh_key(tmp_path, "alice")
    repo = Repo(tmp_path / "repo")
    sha = repo.commit("one", *ssh_sign(key))
    git_dir = cache_dir(GitCache(tmp_path / "cache"), repo, "main")
    assert read_signed(git_dir, sha, "commit").signature.startswith(b"-----BEGIN SSH SIGNATURE-----")


# --- the CLI: create flags and the wide column ----------------------------------------------------


def test_create_source_verify_flags() -> None:
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.core.resources import git_source

    obj = git_source("s", "n", "https://x/y", verify_mode="All", trust_policy="release")
    assert obj["spec"]["verify"] == {"mode": "All", "trustPolicy": "release"}
    assert git_source("s", "n", "https://x/y", trust_policy="p")["spec"]["verify"]["mode"] == "HEAD"
    assert "verify" not in git_source("s", "n", "https://x/y")["spec"]
    with pytest.raises(UsageError, match="needs --trust-policy"):
        git_source("s", "n", "https://x/y", verify_mode="HEAD")
    with pytest.raises(UsageError, match="needs --tag or --semver"):
        git_source("s", "n", "https://x/y", verify_mode="Tag", trust_policy="p")
    assert git_source("s", "n", "https://x/y", tag="v1", verify_mode="Tag", trust_policy="p")["spec"]["verify"]


def test_get_sources_wide_shows_the_fingerprint() -> None:
    from kubectl_gitops.cli.get_cmd import HEADERS, source_row

    obj: JSON = {"metadata": {"name": "s", "namespace": "n"}, "spec": {"url": "u", "verify": {"trustPolicy": "p"}},
                 "status": {"artifact": {"revision": "main@sha1:1", "verification": {
                     "key": "alice", "fingerprint": "SHA256:abc", "mode": "HEAD"}}}}
    base, extra = HEADERS["sources"]
    row = source_row(obj, wide=True)
    assert dict(zip(extra, row[len(base):-1], strict=True))["SIGNED-BY"] == "SHA256:abc"
    del obj["status"]
    assert source_row(obj, wide=True)[len(base) + extra.index("SIGNED-BY")] == "unverified"


def test_warn_mode_records_the_failure_and_goes_on(tmp_path: Path) -> None:
    key, pub = ssh_key(tmp_path, "alice")
    repo = Repo(tmp_path / "repo")
    repo.commit("one", *ssh_sign(key))
    bad = repo.commit("two, unsigned")
    kube = FakeKube({("trustpolicies", "release"): {"metadata": {"name": "release"}, "spec": {
        "mode": "warn", "keys": [{"name": "alice", "type": "ssh", "publicKey": pub}]}}})
    fetch = SourceFetcher(kube, GitCache(tmp_path / "cache"))  # type: ignore[arg-type]
    _, revision = fetch.fetch(source(repo.url, {"mode": "HEAD", "trustPolicy": "release"}))
    assert revision.sha == bad
    verification = kube.patches[-1]["status"]["artifact"]["verification"]
    assert "key" not in verification and f"commit {bad} refused: it is not signed" in verification["warning"]


def test_trust_policy_status_lists_fingerprints_and_users(tmp_path: Path) -> None:
    key, pub = ssh_key(tmp_path, "alice")
    _, other = ssh_key(tmp_path, "bob")
    repo = Repo(tmp_path / "repo")
    repo.commit("one", *ssh_sign(key))
    kube = FakeKube({("trustpolicies", "release"): {"metadata": {"name": "release", "generation": 2}, "spec": {
        "keys": [{"name": "alice", "type": "ssh", "publicKey": pub}, {"name": "bob", "type": "ssh",
                                                                       "publicKey": other}]}}})
    SourceFetcher(kube, GitCache(tmp_path / "cache")).fetch(  # type: ignore[arg-type]
        source(repo.url, {"mode": "HEAD", "trustPolicy": "release"}))
    policy_status = next(p["status"] for p in kube.patches if "keys" in p["status"])
    assert policy_status == {"observedGeneration": 2, "keys": [
        {"name": "alice", "type": "ssh", "fingerprint": keys.parse_key(pub).fingerprint, "usedBy": ["apps/app"]},
        {"name": "bob", "type": "ssh", "fingerprint": keys.parse_key(other).fingerprint, "usedBy": []}]}


def test_operator_may_read_trust_policies_and_record_their_status() -> None:
    import yaml

    root = Path(__file__).resolve().parents[2] / "manifests"
    roles = [d for d in yaml.safe_load_all((root / "install" / "rbac.yaml").read_text())
             if d and d["kind"] == "ClusterRole" and d["metadata"]["name"] == "kubectl-gitops-operator"]
    rules = roles[0]["rules"]
    assert any("trustpolicies" in r["resources"] and "get" in r["verbs"] for r in rules)
    assert any("trustpolicies/status" in r["resources"] and "patch" in r["verbs"] for r in rules)
    assert "trustpolicies.yaml" in (root / "crds" / "kustomization.yaml").read_text()


def test_trust_policy_scope() -> None:
    scoped = parse_trust_policy({"metadata": {"name": "p"}, "spec": {
        "keys": [{"name": "k", "type": "ssh", "publicKey": "ssh-ed25519 AAAA"}],
        "scope": {"namespaces": ["apps"], "syncs": ["web/front"], "tenants": ["team-a"]}}})
    assert scoped.covers("apps")
    assert scoped.covers("web", sync="front") and not scoped.covers("web", sync="back")
    assert scoped.covers("team-a-dev", tenant="team-a") and not scoped.covers("other", tenant="team-b")
    assert not scoped.covers("other")
