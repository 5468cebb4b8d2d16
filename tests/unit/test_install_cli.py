"""`kubectl gitops install` hardening flags, through the CLI with --dry-run (no cluster)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from kubectl_gitops.adapters import pki
from kubectl_gitops.cli.main import cli
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.install import CLIENT_CA_CONFIGMAP, FAIL_CLOSED_ENTRIES, GUARD_ENTRY

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl on PATH")


def dry_run(*flags: str) -> tuple[int, str]:
    """Exit code and output (stdout and the error line) of `kubectl gitops install --dry-run FLAGS`."""
    result = CliRunner().invoke(cli, ["install", "--dry-run", *flags])
    if isinstance(result.exception, GitOpsError):  # main() turns these into `error: …` and the code
        return result.exception.exit_code, f"error: {result.exception}"
    return result.exit_code, result.output


def items(output: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load(output)["items"])


def test_fail_closed_dry_run_shows_fail_on_the_guard_and_tenancy_entries_only() -> None:
    code, out = dry_run("--fail-closed")
    assert code == 0, out
    policies = {h["name"]: h["failurePolicy"] for o in items(out) for h in o.get("webhooks") or []}
    assert policies[GUARD_ENTRY] == "Fail"
    assert {policies[n] for n in FAIL_CLOSED_ENTRIES} == {"Fail"}
    assert {p for n, p in policies.items() if n not in FAIL_CLOSED_ENTRIES} == {"Ignore"}


def test_client_ca_file_makes_the_configmap_and_wires_the_deployment(tmp_path: Path) -> None:
    ca = pki.make_ca("api server client CA")
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    code, out = dry_run("--client-ca-file", str(tmp_path / "ca.pem"), "--client-name", "kube-apiserver")
    assert code == 0, out
    objs = items(out)
    cm = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == CLIENT_CA_CONFIGMAP)
    assert cm["data"]["ca.crt"] == ca.cert_pem.decode()
    deploy = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "kubectl-gitops-webhook")
    assert "--client-ca-file" in deploy["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize("flags, message", [
    (["--no-webhook", "--fail-closed"], "--fail-closed needs the webhook"),
    (["--client-name", "x"], "--client-name needs"),
    (["--webhook-url", "https://127.0.0.1:9443", "--client-ca-configmap", "x"], "not with --webhook-url"),
    (["--no-webhook", "--client-ca-configmap", "x"], "or --no-webhook"),
])
def test_contradictory_flags_are_refused(flags: list[str], message: str) -> None:
    code, out = dry_run(*flags)
    assert code == 2 and message in out, out


def test_a_client_ca_file_that_is_not_a_certificate_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    code, out = dry_run("--client-ca-file", str(tmp_path / "notes.txt"))
    assert code == 2 and "holds no PEM certificate" in out, out
