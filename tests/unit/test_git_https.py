"""HTTPS sources against a real Git smart-HTTP server (git http-backend, TLS, auth) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubectl_gitops.adapters.git import Credentials, GitCache, GitRef
from kubectl_gitops.core.errors import SourceFailed
from tests.unit.git_https_server import GitHttps, serve
from tests.unit.test_git_source import Upstream

USER, PASSWORD, TOKEN = "deploy", "s3cret-pass-word", "ghp_t0ken-value"


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[GitHttps, str]]:
    repos = tmp_path / "repos"
    repos.mkdir()
    upstream = Upstream(repos / "app")
    sha = upstream.commit("first", {"apps/cm.yaml": "kind: ConfigMap\n"})
    upstream.git("config", "http.receivepack", "false")
    with serve(repos, tmp_path, username=USER, password=PASSWORD, token=TOKEN) as server:
        yield server, sha


def _fetch(server: GitHttps, tmp: Path, creds: Credentials) -> str:
    return GitCache(tmp / "cache").fetch(f"{server.url_base}/app", GitRef(branch="main"), creds, timeout=20).sha


def test_basic_auth_over_verified_tls(host: tuple[GitHttps, str], tmp_path: Path) -> None:
    server, sha = host
    creds = Credentials(username=USER, password=PASSWORD, ca_file=server.ca_file)
    assert _fetch(server, tmp_path, creds) == sha
    assert "Basic" in server.requests


def test_bearer_token(host: tuple[GitHttps, str], tmp_path: Path) -> None:
    server, sha = host
    assert _fetch(server, tmp_path, Credentials(bearer_token=TOKEN, ca_file=server.ca_file)) == sha
    assert "Bearer" in server.requests


def test_wrong_password_fails_clearly_without_leaking_it(host: tuple[GitHttps, str], tmp_path: Path) -> None:
    server, _ = host
    wrong = "not-the-" + PASSWORD
    with pytest.raises(SourceFailed) as err:
        _fetch(server, tmp_path, Credentials(username=USER, password=wrong, ca_file=server.ca_file))
    message = str(err.value)
    assert server.url_base in message
    assert wrong not in message and PASSWORD not in message
    assert "authentication" in message.lower() or "401" in message or "credentials" in message.lower()


def test_an_unknown_ca_is_refused(host: tuple[GitHttps, str], tmp_path: Path) -> None:
    server, _ = host
    with pytest.raises(SourceFailed) as err:
        _fetch(server, tmp_path, Credentials(username=USER, password=PASSWORD))  # no ca_file: system CAs
    assert "certificate" in str(err.value).lower() or "ssl" in str(err.value).lower()
