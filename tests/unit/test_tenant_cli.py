"""`create tenant` / `get tenants` / `delete tenant` without a cluster: registration, usage errors first."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from kubectl_gitops.cli.main import cli


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubectl_gitops.cli.main", *args], capture_output=True, text=True,
                          check=False, timeout=60, env={"KUBECONFIG": "/nonexistent/kubeconfig", "PATH": ""})


def test_the_tenant_commands_are_registered() -> None:
    assert "tenant" in CliRunner().invoke(cli, ["create", "--help"]).output
    out = CliRunner().invoke(cli, ["create", "tenant", "--help"]).output
    for flag in ("--namespace", "--user", "--group", "--allow-kind", "--deny-kind", "--cluster-kind",
                 "--source-url", "--role", "--export"):
        assert flag in out, flag
    assert "tenants" in CliRunner().invoke(cli, ["get", "--help"]).output
    assert "--cascade" in CliRunner().invoke(cli, ["delete", "--help"]).output


def test_a_bad_tenant_is_refused_before_any_connection() -> None:
    # The kubeconfig does not exist: these errors can only come before connecting.
    for args, text in ((["--namespace", "kube-system"], "system namespace"),
                       (["--namespace", "a", "--role", "cluster-admin"], "never be granted"),
                       (["--namespace", "a", "--allow-kind", "x/y/z"], "GROUP/KIND")):
        proc = run("create", "tenant", "t", *args)
        assert proc.returncode == 2 and text in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    missing = run("create", "tenant", "t")
    assert missing.returncode == 2 and "--namespace" in missing.stderr
