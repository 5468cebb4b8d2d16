"""A stolen Git credential is not enough: on the real dev control plane, a GitSource with spec.verify
syncs only commits (or tags) signed by a key of its TrustPolicy.

Repositories are signed by the real git (gpg.format=ssh with ssh-keygen keys, and OpenPGP with a
gpg key made in the test). Each refused case must fail with VerificationFailed naming the commit
and the reason, apply nothing from it, and leave the last good revision on the Sync and GitSource.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.constants import FIELD_MANAGER
from kubectl_gitops.core import resources
from tests.e2e.gitrepo import GitRepo
from tests.e2e.syncworld import World, configmap, docs
from tests.helpers import gitops, kubectl

JSON = dict[str, Any]


@pytest.fixture(scope="module")
def installed(kubeconfig: str) -> str:
    gitops("install", "--no-webhook", kubeconfig=kubeconfig)
    return kubeconfig


@pytest.fixture
def w(installed: str, namespace: str, tmp_path: Path) -> Iterator[World]:
    world = World(installed, namespace, GitRepo(tmp_path / "repo"))
    yield world
    kubectl("delete", "trustpolicy", namespace, "--ignore-not-found", kubeconfig=installed, check=False)


def ssh_key(tmp: Path, name: str) -> tuple[Path, str]:
    path = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path, Path(f"{path}.pub").read_text().strip()


def fingerprint(public: str, tmp: Path) -> str:
    file = tmp / "fp.pub"
    file.write_text(public + "\n")
    return subprocess.run(["ssh-keygen", "-l", "-f", str(file)], capture_output=True, text=True,
                          check=True).stdout.split()[1]


def ssh_commit(repo: GitRepo, key: Path, message: str) -> str:
    repo.git("add", "-A")
    repo.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "commit", "-q", "-S", "--allow-empty",
             "-m", message)
    return repo.head()


def write_cm(w: World, name: str) -> None:
    w.repo.write(f"apps/{name}.yaml", docs(configmap(name)))


def trust(w: World, *keys: JSON) -> str:
    # No scope: the GitSource names the policy for its commits; a scope would also require signed
    # manifests in the namespace (test_manifest_signatures.py), which these repositories don't have.
    policy = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "TrustPolicy", "metadata": {"name": w.ns},
              "spec": {"keys": list(keys)}}
    kubectl("apply", "-f", "-", kubeconfig=w.kubeconfig, input=docs(policy))
    return w.ns


def setup(w: World, mode: str = "HEAD", **ref: str) -> None:
    source = resources.git_source("src", w.ns, w.repo.url, verify_mode=mode, trust_policy=w.ns,
                                  **(ref or {"branch": "main"}))
    sync = resources.sync("app", w.ns, "src", "apps", prune=True)
    kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}-cli", "-f", "-", kubeconfig=w.kubeconfig,
            input=docs(source, sync))


def assert_refused(w: World, good: str, bad: str, reason: str, new_object: str, what: str = "commit") -> None:
    run = w.sync("app")
    assert run.returncode != 0 and run.reason == "VerificationFailed", run.output
    assert f"{what}" in run.message and bad in run.message and reason in run.message, run.message
    status = w.sync_status("app")
    assert status["lastAppliedRevision"].endswith(good)
    ready = w.condition("app", "Ready")
    assert ready["reason"] == "VerificationFailed" and bad in ready["message"]
    source = w.source_status()
    assert source["artifact"]["revision"].endswith(good)
    assert source["lastFetchedRevision"].endswith(w.repo.head())  # seen, refused, recorded
    source_ready = next(c for c in source["conditions"] if c["type"] == "Ready")
    assert source_ready["reason"] == "VerificationFailed" and reason in source_ready["message"]
    assert not w.exists("configmap", new_object), f"{new_object} was applied from the refused {what}"


def test_ssh_signed_commits_sync_and_show_the_fingerprint(w: World, tmp_path: Path) -> None:
    key, public = ssh_key(tmp_path, "alice")
    write_cm(w, "one")
    sha = ssh_commit(w.repo, key, "one")
    trust(w, {"name": "alice", "type": "ssh", "publicKey": public})
    w.gitops("create", "source", "src", "--url", w.repo.url, "--branch", "main", "--verify-mode", "HEAD",
             "--trust-policy", w.ns)
    w.create_sync("app", "--path", "apps", "--prune", "true")
    assert (w.get("gitsources.kubectl-gitops.dev", "src") or {})["spec"]["verify"] == {"mode": "HEAD",
                                                                                      "trustPolicy": w.ns}
    w.sync_ok("app")
    assert w.exists("configmap", "one")
    verification = w.source_status()["artifact"]["verification"]
    assert verification == {"key": "alice", "fingerprint": fingerprint(public, tmp_path), "mode": "HEAD",
                            "trustPolicy": w.ns, "commit": sha}
    wide = w.gitops("get", "sources", "-o", "wide").stdout
    assert fingerprint(public, tmp_path) in wide
    policy = json.loads(kubectl("get", "trustpolicy", w.ns, "-o", "json", kubeconfig=w.kubeconfig).stdout)
    assert policy["status"]["keys"] == [{"name": "alice", "type": "ssh", "fingerprint": fingerprint(public, tmp_path),
                                         "usedBy": [f"{w.ns}/src"]}]


def test_unsigned_commit_on_the_branch_is_refused(w: World, tmp_path: Path) -> None:
    key, public = ssh_key(tmp_path, "alice")
    write_cm(w, "one")
    good = ssh_commit(w.repo, key, "one")
    trust(w, {"name": "alice", "type": "ssh", "publicKey": public})
    setup(w)
    w.sync_ok("app")
    write_cm(w, "evil")
    bad = w.repo.commit("pushed with a stolen token")
    assert_refused(w, good, bad, "it is not signed", "evil")


def test_commit_signed_by_an_untrusted_key_is_refused(w: World, tmp_path: Path) -> None:
    key, public = ssh_key(tmp_path, "alice")
    mallory, mallory_public = ssh_key(tmp_path, "mallory")
    write_cm(w, "one")
    good = ssh_commit(w.repo, key, "one")
    trust(w, {"name": "alice", "type": "ssh", "publicKey": public})
    setup(w)
    w.sync_ok("app")
    write_cm(w, "evil")
    bad = ssh_commit(w.repo, mallory, "signed by mallory")
    assert_refused(w, good, bad, f"{fingerprint(mallory_public, tmp_path)} which is not trusted", "evil")


def test_key_outside_its_validity_window_is_refused(w: World, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    key, public = ssh_key(tmp_path, "alice")
    write_cm(w, "one")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-01-10T00:00:00Z")
    good = ssh_commit(w.repo, key, "one")
    trust(w, {"name": "alice", "type": "ssh", "publicKey": public, "notAfter": "2026-02-01T00:00:00Z"})
    setup(w)
    w.sync_ok("app")
    write_cm(w, "late")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "2026-03-01T00:00:00Z")
    bad = ssh_commit(w.repo, key, "signed after the key was retired")
    assert_refused(w, good, bad, "outside its validity window", "late")


def test_all_mode_refuses_an_unsigned_commit_under_a_signed_head(w: World, tmp_path: Path) -> None:
    key, public = ssh_key(tmp_path, "alice")
    write_cm(w, "one")
    good = ssh_commit(w.repo, key, "one")
    trust(w, {"name": "alice", "type": "ssh", "publicKey": public})
    setup(w, "All")
    w.sync_ok("app")
    write_cm(w, "evil")
    sneaked = w.repo.commit("unsigned, hidden under a signed commit")
    ssh_commit(w.repo, key, "signed on top")
    assert_refused(w, good, sneaked, "it is not signed", "evil")


def test_signed_tag_moved_to_an_unsigned_commit_is_refused(w: World, tmp_path: Path) -> None:
    key, public = ssh_key(tmp_path, "alice")
    write_cm(w, "one")
    good = w.repo.commit("one")
    w.repo.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "tag", "-s", "v1", "-m", "release v1")
    trust(w, {"name": "alice", "type": "ssh", "publicKey": public})
    setup(w, "Tag", tag="v1")
    w.sync_ok("app")
    assert w.source_status()["artifact"]["verification"]["key"] == "alice"
    write_cm(w, "evil")
    w.repo.commit("unsigned")
    w.repo.git("tag", "-f", "-a", "v1", "-m", "moved")
    tag_object = w.repo.git("rev-parse", "v1")
    assert_refused(w, good, tag_object[:12], "it is not signed", "evil", what="tag 'v1'")


def test_garbage_signature_is_refused(w: World, tmp_path: Path) -> None:
    key, public = ssh_key(tmp_path, "alice")
    write_cm(w, "one")
    good = ssh_commit(w.repo, key, "one")
    trust(w, {"name": "alice", "type": "ssh", "publicKey": public})
    setup(w)
    w.sync_ok("app")
    write_cm(w, "evil")
    w.repo.git("add", "-A")
    tree = w.repo.git("write-tree")
    body = (f"tree {tree}\nparent {good}\nauthor e2e <e2e@example.com> 1780000000 +0000\n"
            f"committer e2e <e2e@example.com> 1780000000 +0000\n"
            "gpgsig -----BEGIN SSH SIGNATURE-----\n U1NIU0lHAAAAAWdhcmJhZ2U=\n"
            " -----END SSH SIGNATURE-----\n\ngarbage\n")
    bad = subprocess.run(["git", "hash-object", "-t", "commit", "-w", "--stdin"], cwd=w.repo.path, input=body,
                         capture_output=True, text=True, check=True).stdout.strip()
    w.repo.git("update-ref", "refs/heads/main", bad)
    assert_refused(w, good, bad, "malformed", "evil")


@pytest.fixture
def gnupg(tmp_path: Path) -> Iterator[tuple[dict[str, str], str, str]]:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "e2e <e2e@example.com>", "ed25519",
                    "sign", "never"], env=env, check=True, capture_output=True)
    listing = subprocess.run(["gpg", "--batch", "--with-colons", "--list-keys"], env=env, check=True,
                             capture_output=True, text=True).stdout
    fpr = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    armored = subprocess.run(["gpg", "--batch", "--armor", "--export", fpr], env=env, check=True,
                             capture_output=True, text=True).stdout
    yield {"GNUPGHOME": str(home)}, fpr, armored
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=env, check=False, capture_output=True)


def test_openpgp_signed_commits_sync(w: World, gnupg: tuple[dict[str, str], str, str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    env, fpr, armored = gnupg
    write_cm(w, "one")
    w.repo.git("add", "-A")
    monkeypatch.setenv("GNUPGHOME", env["GNUPGHOME"])
    w.repo.git("-c", "gpg.program=gpg", "-c", f"user.signingkey={fpr}", "commit", "-q", "-S", "-m", "one")
    monkeypatch.delenv("GNUPGHOME")
    sha = w.repo.head()
    trust(w, {"name": "release-pgp", "type": "pgp", "publicKey": armored})
    setup(w)
    w.sync_ok("app")
    assert w.exists("configmap", "one")
    verification = w.source_status()["artifact"]["verification"]
    assert (verification["key"], verification["fingerprint"], verification["commit"]) == ("release-pgp", fpr, sha)
    write_cm(w, "evil")
    bad = w.repo.commit("unsigned")
    assert_refused(w, sha, bad, "it is not signed", "evil")
