"""The kubeconfig fast path: what it reads itself, and what it leaves to the official loader."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.adapters import kubeconfig
from kubectl_gitops.adapters.kube import Kube, Target, _ClientWire, _DirectWire


def write(tmp_path: Path, user: dict[str, Any], cluster: dict[str, Any] | None = None,
          namespace: str | None = None) -> Path:
    ctx: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        ctx["namespace"] = namespace
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "ctx",
           "contexts": [{"name": "other", "context": {"cluster": "x", "user": "x"}},
                        {"name": "ctx", "context": ctx}],
           "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:6443/",
                                                               "certificate-authority": "ca.crt"}}],
           "users": [{"name": "u", "user": user}]}
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_client_certificate_data_is_written_privately_and_paths_resolve_next_to_the_file(tmp_path: Path) -> None:
    cert = base64.b64encode(b"CERT").decode()
    cfg = kubeconfig.load(str(write(tmp_path, {"client-certificate-data": cert, "client-key": "k.pem"})), None)
    assert cfg is not None
    assert cfg.server == "https://127.0.0.1:6443" and cfg.context == "ctx" and cfg.namespace == "default"
    assert cfg.ca_file == str(tmp_path / "ca.crt") and cfg.key_file == str(tmp_path / "k.pem")
    assert cfg.cert_file is not None and Path(cfg.cert_file).read_bytes() == b"CERT"
    assert Path(cfg.cert_file).stat().st_mode & 0o077 == 0
    assert cfg.authorization is None and cfg.verify


def test_token_token_file_and_basic_auth_become_the_authorization_header(tmp_path: Path) -> None:
    assert kubeconfig.load(str(write(tmp_path, {"token": "abc"})), None).authorization == "Bearer abc"  # type: ignore[union-attr]
    (tmp_path / "tok").write_text("from-file\n")
    assert kubeconfig.load(str(write(tmp_path, {"tokenFile": "tok"})), None).authorization == \
        "Bearer from-file"  # type: ignore[union-attr]
    basic = kubeconfig.load(str(write(tmp_path, {"username": "a", "password": "b"})), None)
    assert basic is not None and basic.authorization == "Basic " + base64.b64encode(b"a:b").decode()


@pytest.mark.parametrize("user", [
    {"exec": {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1"}},
    {"auth-provider": {"name": "oidc"}},
    {"token": "t", "as": "someone"},
])
def test_plugins_and_impersonation_are_left_to_the_official_loader(tmp_path: Path, user: dict[str, Any]) -> None:
    assert kubeconfig.load(str(write(tmp_path, user)), None) is None


def test_a_proxy_a_missing_context_or_an_unreadable_file_are_left_to_the_official_loader(tmp_path: Path) -> None:
    assert kubeconfig.load(str(write(tmp_path, {"token": "t"}, {"server": "https://h", "proxy-url": "http://p"})),
                           None) is None
    assert kubeconfig.load(str(write(tmp_path, {"token": "t"})), "nope") is None
    assert kubeconfig.load(str(tmp_path / "missing"), None) is None
    (tmp_path / "bad").write_text("- [unclosed")
    assert kubeconfig.load(str(tmp_path / "bad"), None) is None


def test_context_namespace_and_insecure_skip_are_honoured(tmp_path: Path) -> None:
    cfg = kubeconfig.load(str(write(tmp_path, {"token": "t"}, {"server": "https://h:1",
                                                               "insecure-skip-tls-verify": True}, "team")), None)
    assert cfg is not None and cfg.namespace == "team" and not cfg.verify and cfg.ca_file is None


def test_connect_takes_the_direct_path_and_prepares_the_same_urls(tmp_path: Path) -> None:
    kube = Kube.connect(Target(str(write(tmp_path, {"token": "abc"}, {"server": "https://h:1",
                                                                      "insecure-skip-tls-verify": True}))))
    assert isinstance(kube._wire, _DirectWire)
    url, headers = kube._wire.prepare("GET", "/api/v1/namespaces", [("limit", "500"), ("continue", "a b")],
                                      {"Accept": "application/json"})
    assert url == "https://h:1/api/v1/namespaces?limit=500&continue=a+b"
    assert headers["Authorization"] == "Bearer abc" and headers["Accept"] == "application/json"
    assert kube.impersonating("x")._wire is kube._wire


def test_connect_falls_back_to_the_official_client_for_exec_users(tmp_path: Path) -> None:
    path = write(tmp_path, {"exec": {"command": "true", "apiVersion": "client.authentication.k8s.io/v1"}},
                 {"server": "https://h:1", "insecure-skip-tls-verify": True})
    kube = Kube.connect(Target(str(path)))
    assert isinstance(kube._wire, _ClientWire)
    assert kube.server.startswith("https://h:1")
