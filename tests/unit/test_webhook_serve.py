"""Serving-certificate reload (kubectl_gitops_webhook.serve.ReloadingSSLContext) with real TLS handshakes."""

from __future__ import annotations

import datetime as dt
import os
import socket
import ssl
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubectl_gitops_webhook.serve import ReloadingSSLContext, ServeOptions, WebhookServer


def self_signed(cn: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_pair(tmp: Path, cn: str, mtime: int) -> bytes:
    cert, key = self_signed(cn)
    (tmp / "tls.crt").write_bytes(cert)
    (tmp / "tls.key").write_bytes(key)
    for name in ("tls.crt", "tls.key"):
        os.utime(tmp / name, ns=(mtime, mtime))
    return cert


def served_cn(ctx: ssl.SSLContext) -> str:
    """Handshake over a socketpair and return the CN the server presented."""
    server_sock, client_sock = socket.socketpair()
    result: list[Exception] = []

    def serve() -> None:
        try:
            with ctx.wrap_socket(server_sock, server_side=True):
                pass
        except Exception as err:
            result.append(err)
    thread = threading.Thread(target=serve)
    thread.start()
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    with client_ctx.wrap_socket(client_sock) as tls:
        der = tls.getpeercert(binary_form=True)
    thread.join(5)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def factory_for(tmp: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(tmp / "tls.crt"), str(tmp / "tls.key"))
    return ctx


def test_certificate_is_reloaded_when_files_change(tmp_path: Path) -> None:
    now = [0.0]
    write_pair(tmp_path, "first.example", 1_000_000_000)
    hook = ReloadingSSLContext(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"), check_interval=1.0,
                               clock=lambda: now[0])
    ctx = hook(None, lambda: factory_for(tmp_path))
    assert served_cn(ctx) == "first.example"
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    write_pair(tmp_path, "second.example", 2_000_000_000)
    assert hook(None, lambda: factory_for(tmp_path)) is ctx  # not checked again within the interval
    now[0] = 1.5
    rotated = hook(None, lambda: factory_for(tmp_path))
    assert rotated is not ctx and served_cn(rotated) == "second.example"
    assert hook.reloads == 1
    now[0] = 3.0
    assert hook(None, lambda: factory_for(tmp_path)) is rotated  # unchanged files: same context


def test_half_written_pair_keeps_old_context(tmp_path: Path) -> None:
    now = [0.0]
    write_pair(tmp_path, "first.example", 1_000_000_000)
    hook = ReloadingSSLContext(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"), clock=lambda: now[0])
    ctx = hook(None, lambda: factory_for(tmp_path))
    cert, _ = self_signed("other.example")
    (tmp_path / "tls.crt").write_bytes(cert)  # new cert, old key: does not load
    now[0] = 5.0
    assert hook(None, lambda: factory_for(tmp_path)) is ctx
    write_pair(tmp_path, "third.example", 3_000_000_000)
    now[0] = 10.0
    assert served_cn(hook(None, lambda: factory_for(tmp_path))) == "third.example"


def test_missing_files_at_start_raise(tmp_path: Path) -> None:
    hook = ReloadingSSLContext(str(tmp_path / "no.crt"), str(tmp_path / "no.key"))
    with pytest.raises(OSError):
        hook(None, lambda: factory_for(tmp_path))


def test_gunicorn_config_is_tls_gthread_with_our_hook(tmp_path: Path) -> None:
    from flask import Flask

    write_pair(tmp_path, "webhook.example", 1_000_000_000)
    options = ServeOptions(certfile=str(tmp_path / "tls.crt"), keyfile=str(tmp_path / "tls.key"),
                           bind="127.0.0.1:0", workers=2, threads=4, keepalive=30)
    server = WebhookServer(Flask("x"), options)
    cfg = server.cfg
    assert cfg.is_ssl and cfg.workers == 2 and cfg.threads == 4 and cfg.keepalive == 30
    assert cfg.worker_class_str == "gthread"
    assert cfg.ssl_context is server.ssl_hook
    assert server.load() is server.application


def test_trusted_controllers_reach_the_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`webhook serve --trusted-controller` is handed to the app (the guard's allowed identities)."""
    from click.testing import CliRunner

    from kubectl_gitops.cli.main import cli
    from kubectl_gitops_webhook import app as app_module
    from kubectl_gitops_webhook import serve as serve_module

    seen: dict[str, object] = {}

    def fake_create_app(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        return object()

    monkeypatch.setattr(app_module, "create_app", fake_create_app)
    monkeypatch.setattr(serve_module, "serve", lambda app, options: seen.setdefault("served", True))
    monkeypatch.setattr(serve_module, "_cluster_callables", lambda ttl, kubeconfig: (lambda: None, None))
    (tmp_path / "tls.crt").write_text("x")
    (tmp_path / "tls.key").write_text("x")
    result = CliRunner().invoke(cli, ["webhook", "serve", "--cert-dir", str(tmp_path), "--workers", "1",
                                      "--trusted-controller", "system:serviceaccount:ops:operator",
                                      "--trusted-controller", "alice"])
    assert result.exit_code == 0, result.output
    assert seen.get("served") is True
    assert tuple(seen["trusted_controllers"]) == ("system:serviceaccount:ops:operator", "alice")  # type: ignore[arg-type]
