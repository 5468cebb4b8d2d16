"""`kubectl gitops audit`'s own arguments and exit codes (the audit itself: test_audit_* and the e2e)."""

from __future__ import annotations

import datetime as dt

import pytest

from kubectl_gitops.cli.audit_cmd import _duration
from kubectl_gitops.cli.main import COMMANDS, main
from kubectl_gitops.core.errors import UsageError


def test_audit_is_a_command() -> None:
    assert COMMANDS["audit"][:2] == ("kubectl_gitops.cli.audit_cmd", "audit")


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("30m", 1800), ("24h", 86400), ("7d", 604800)])
def test_max_suspended_durations(text: str, seconds: int) -> None:
    assert _duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "1.5h", "-1h", "10y"])
def test_a_bad_duration_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="--max-suspended"):
        _duration(text)


def test_all_namespaces_and_a_namespace_together_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "-A", "-n", "x"])
    assert exit_.value.code == 2
    assert "give -A or -n, not both" in capsys.readouterr().err


def test_an_unreachable_cluster_is_exit_2_not_a_finding(tmp_path: object, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    with pytest.raises(SystemExit) as exit_:
        main(["audit", "-A"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: audit failed:") and "Traceback" not in err
