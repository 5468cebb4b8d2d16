"""The CLI entry point without a cluster: lazy help, client version, --export, GitOpsError -> 'error: ...'."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
import yaml
from click.testing import CliRunner

from kubectl_gitops import __version__
from kubectl_gitops.cli.main import COMMANDS, cli, main
from kubectl_gitops.constants import API_VERSION

EXPECTED = ("version", "check", "dev", "install", "create", "sync", "get", "delete", "suspend", "resume",
            "webhook")
HEAVY = ("kubernetes", "git", "flask", "gunicorn", "urllib3", "cryptography", "prometheus_client")


def commands_in_help(text: str) -> list[str]:
    section = text.split("Commands:", 1)[1]
    return [line.split()[0] for line in section.splitlines() if line.startswith("  ") and line.strip()]


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = commands_in_help(result.output)
    for name in EXPECTED:
        assert name in listed
    assert listed == sorted(COMMANDS)
    assert "Run the admission webhook" in result.output
    assert "-n, --namespace" in result.output


def test_short_help_flag() -> None:
    result = CliRunner().invoke(cli, ["-h"])
    assert result.exit_code == 0
    assert "Commands:" in result.output


def loaded_after(code: str) -> tuple[str, set[str]]:
    script = ("import sys, io, contextlib\n"
              "from kubectl_gitops.cli.main import main\n"
              "buf = io.StringIO()\n"
              "with contextlib.redirect_stdout(buf):\n"
              f"    {code}\n"
              "print('OUTPUT', repr(buf.getvalue()))\n"
              "print('LOADED', ' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    return lines["OUTPUT"], set(lines["LOADED"].split())


def test_help_imports_no_kubernetes_git_or_flask() -> None:
    output, loaded = loaded_after("rc = main(['--help'])")
    assert "webhook" in output  # the help really ran
    assert "sync" in output
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "click" in loaded  # the check can see modules at all


def test_client_version_imports_no_kubernetes() -> None:
    output, loaded = loaded_after("rc = main(['version', '--client'])")
    assert f"Client Version: v{__version__}" in output
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_version_client() -> None:
    result = CliRunner().invoke(cli, ["version", "--client"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Client Version: v")
    assert result.output.strip() == f"Client Version: v{__version__}"
    assert "Server Version" not in result.output


def test_version_client_json() -> None:
    result = CliRunner().invoke(cli, ["version", "--client", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == {"clientVersion": {"gitVersion": f"v{__version__}"}}


def test_global_version_option() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"kubectl-gitops v{__version__}"


def test_create_source_export_prints_the_object() -> None:
    result = CliRunner().invoke(cli, ["create", "source", "x", "--url", "file:///r", "--branch", "main",
                                      "--export", "-n", "ns"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output) == {
        "apiVersion": API_VERSION, "kind": "GitSource", "metadata": {"name": "x", "namespace": "ns"},
        "spec": {"url": "file:///r", "ref": {"branch": "main"}, "interval": "1m"}}


def test_create_sync_export_with_global_namespace() -> None:
    result = CliRunner().invoke(cli, ["-n", "team-a", "create", "sync", "apps", "--source", "podinfo",
                                      "--path", "./deploy", "--prune", "--depends-on", "infra",
                                      "--substitute", "env=prod", "--drift-guard", "warn", "--export"])
    assert result.exit_code == 0, result.output
    obj = yaml.safe_load(result.output)
    assert obj["metadata"] == {"name": "apps", "namespace": "team-a"}
    assert obj["spec"]["prune"] is True
    assert obj["spec"]["dependsOn"] == [{"name": "infra"}]
    assert obj["spec"]["substitute"] == {"env": "prod"}
    assert obj["spec"]["driftGuard"] == "warn"


def test_create_source_insecure_only_when_asked() -> None:
    plain = CliRunner().invoke(cli, ["create", "source", "x", "--url", "http://git.local/r", "--export"])
    asked = CliRunner().invoke(cli, ["create", "source", "x", "--url", "http://git.local/r", "--insecure",
                                     "--export"])
    assert plain.exit_code == 0 and asked.exit_code == 0, plain.output + asked.output
    assert "insecure" not in yaml.safe_load(plain.output)["spec"]
    assert yaml.safe_load(asked.output)["spec"]["insecure"] is True


def test_export_without_namespace_uses_default() -> None:
    result = CliRunner().invoke(cli, ["create", "source", "x", "--url", "file:///r", "--export"])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.output)["metadata"]["namespace"] == "default"


def test_main_turns_a_usage_error_into_error_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["create", "source", "x", "--url", "file:///r", "--branch", "main", "--tag", "v1", "--export",
              "-n", "ns"])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "error: choose one of --branch, --tag, --semver (got --branch and --tag)\n"
    assert "Traceback" not in err


def test_main_turns_an_invalid_spec_into_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["create", "sync", "apps", "--source", "podinfo", "--interval", "often", "--export", "-n", "ns"])
    assert exit_.value.code == 1
    _, err = capsys.readouterr()
    assert err.startswith("error: --interval: 'often' is not a duration")


def test_main_debug_reraises(capsys: pytest.CaptureFixture[str]) -> None:
    from kubectl_gitops.core.errors import UsageError

    with pytest.raises(UsageError):
        main(["--debug", "create", "sync", "a", "--source", "s", "--substitute", "novalue", "--export"])
    assert capsys.readouterr().err == ""


def test_main_click_usage_errors_keep_clicks_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["no-such-command"])
    assert exit_.value.code == click.UsageError.exit_code
    assert "No such command" in capsys.readouterr().err


def test_main_success_returns_normally(capsys: pytest.CaptureFixture[str]) -> None:
    main(["version", "--client"])
    assert capsys.readouterr().out == f"Client Version: v{__version__}\n"


@click.command()
def boom() -> None:
    """A command that fails the way nothing foresaw."""
    raise RecursionError("maximum recursion depth exceeded while decoding a JSON object")


def test_main_turns_an_unexpected_exception_into_one_line(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from kubectl_gitops.cli import main as main_module

    monkeypatch.setitem(main_module.COMMANDS, "boom", (__name__, "boom", "fails"))
    with pytest.raises(SystemExit) as exit_:
        main(["boom"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: an object nested too deeply to process: maximum recursion depth")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    with pytest.raises(RecursionError):
        main(["--debug", "boom"])
