"""`webhook serve --cache-ttl` is deprecated: lookups are watch-backed (webhook/lookup.py), so the flag
has no effect. It is still accepted (old Deployments keep starting) and says so on stderr."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from webhook.cli import CACHE_TTL_DEPRECATED, serve


def test_cache_ttl_is_accepted_and_warns(tmp_path: Path) -> None:
    result = CliRunner().invoke(serve, ["--workers", "1", "--cache-ttl", "5", "--cert-dir", str(tmp_path)])
    assert "no such option" not in result.output
    assert CACHE_TTL_DEPRECATED in result.stderr
    assert "tls.crt does not exist" in str(result.exception) or "tls.crt does not exist" in result.output


def test_no_warning_without_the_flag(tmp_path: Path) -> None:
    result = CliRunner().invoke(serve, ["--workers", "1", "--cert-dir", str(tmp_path)])
    assert "cache-ttl" not in result.stderr


def test_the_flag_is_hidden_from_help() -> None:
    assert "--cache-ttl" not in CliRunner().invoke(serve, ["--help"]).output
