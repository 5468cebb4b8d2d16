"""`kubectl gitops sign PATH` and `verify PATH`, offline: signatures a reviewer can check with the real
ssh-keygen, exit codes naming each failing object and why, a broken signatures file named."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kubectl_gitops.core import manifest_sig as ms

PLUGIN = str(Path(sys.executable).parent / "kubectl-gitops")

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:${TAG}"}]
---
apiVersion: v1
kind: Namespace
metadata: {name: team}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: other}
data: {a: "1"}
"""


def plugin(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLUGIN, *args], capture_output=True, text=True, timeout=120, check=False)


def keygen(tmp: Path, name: str) -> Path:
    path = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "repo" / "apps").mkdir(parents=True)
    (tmp_path / "repo" / "apps" / "app.yaml").write_text(APP)
    return tmp_path / "repo" / "apps"


def allowed(tmp: Path, key: Path, who: str = "alice") -> Path:
    path = tmp / "allowed_signers"
    path.write_text(f"{who} {Path(f'{key}.pub').read_text()}")
    return path


def test_sign_then_verify_then_ssh_keygen(tmp_path: Path, repo: Path) -> None:
    key = keygen(tmp_path, "alice")
    out = plugin("sign", str(repo), "--key", str(key), "-n", "team", "--substitute", "TAG=1")
    assert out.returncode == 0, out.stderr
    assert "signed 3 object(s)" in out.stdout
    text = (repo / ms.SIGNATURES_FILE).read_text()
    for ident in ("team_web_apps_Deployment", "_team__Namespace", "other_cfg__ConfigMap"):
        assert f"  {ident}:" in text  # default namespace for namespaced kinds only, as the sync does
    signers = allowed(tmp_path, key)
    ok = plugin("verify", str(repo), "-n", "team", "--substitute", "TAG=1", "--trust", str(signers))
    assert ok.returncode == 0 and "3 object(s) signed" in ok.stdout, ok.stdout + ok.stderr

    canonical = plugin("verify", str(repo), "-n", "team", "--substitute", "TAG=1", "--print-canonical",
                       "Deployment/team/web")
    signature = plugin("verify", str(repo), "-n", "team", "--substitute", "TAG=1", "--print-signature",
                       "team_web_apps_Deployment")
    (tmp_path / "web.sig").write_text(signature.stdout)
    checked = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signers), "-I", "alice", "-n",
                              ms.SSHSIG_NAMESPACE, "-s", str(tmp_path / "web.sig")], input=canonical.stdout,
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "Good \"kubectl-gitops-manifest\" signature for alice" in checked.stdout


def test_verify_names_each_failing_object(tmp_path: Path, repo: Path) -> None:
    key, other = keygen(tmp_path, "alice"), keygen(tmp_path, "eve")
    assert plugin("sign", str(repo), "--key", str(key), "-n", "team", "--substitute", "TAG=1").returncode == 0
    changed = plugin("verify", str(repo), "-n", "team", "--substitute", "TAG=2", "--trust",
                     str(allowed(tmp_path, key)))
    assert changed.returncode == 1
    assert changed.stdout.splitlines() == [
        next(line for line in changed.stdout.splitlines() if line.startswith("✗ Deployment/team/web: changed since"))]
    untrusted = plugin("verify", str(repo), "-n", "team", "--substitute", "TAG=1",
                       "--trust", str(allowed(tmp_path, other, "eve")))
    assert untrusted.returncode == 1 and untrusted.stdout.count("which is not trusted") == 3, untrusted.stdout
    (repo / "more.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: new}\n")
    signers = str(allowed(tmp_path, key))
    unsigned = plugin("verify", str(repo), "-n", "team", "--substitute", "TAG=1", "--trust", signers)
    assert unsigned.returncode == 1
    assert ("✗ ConfigMap/team/new: not signed (no entry team_new__ConfigMap in .gitops-signatures.yaml)"
            in unsigned.stdout)


def test_a_trust_policy_file_and_its_validity_window(tmp_path: Path, repo: Path) -> None:
    key = keygen(tmp_path, "alice")
    assert plugin("sign", str(repo), "--key", str(key), "-n", "team", "--substitute", "TAG=1").returncode == 0
    public = Path(f"{key}.pub").read_text().strip()
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"""apiVersion: kubectl-gitops.dev/v1alpha1
kind: TrustPolicy
metadata: {{name: release}}
spec:
  keys: [{{name: alice, type: ssh, publicKey: "{public}", notAfter: "2020-01-01T00:00:00Z"}}]
""")
    out = plugin("verify", str(repo), "-n", "team", "--substitute", "TAG=1", "--trust", str(policy))
    assert out.returncode == 1 and out.stdout.count("outside its validity window") == 3, out.stdout


def test_a_signatures_file_that_does_not_parse_is_named(tmp_path: Path, repo: Path) -> None:
    key = keygen(tmp_path, "alice")
    (repo / ms.SIGNATURES_FILE).write_text("signatures: [unclosed\n")
    out = plugin("verify", str(repo), "-n", "team", "--substitute", "TAG=1", "--trust", str(allowed(tmp_path, key)))
    assert out.returncode == 1
    assert f"apps/{ms.SIGNATURES_FILE}: not valid YAML" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
