"""Read a kubeconfig's current context ourselves when it needs nothing but TLS and a static credential.

Importing the official client takes longer than a no-change sync's requests (its package loads
hundreds of model modules), and a command line tool pays that on every run. Most kubeconfigs name
a server, a CA, and a client certificate or a token: those we read here, with the same rules the
official loader applies, and send requests through one urllib3 pool. Anything else (exec and
auth-provider plugins, impersonation settings, proxies) returns None and the caller uses the
official loader, which supports it all.
"""

from __future__ import annotations

import atexit
import base64
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Settings only the official loader implements; their presence sends the caller there.
_USER_NEEDS_CLIENT = ("exec", "auth-provider", "as", "as-groups", "as-uid", "as-user-extra")
_CLUSTER_NEEDS_CLIENT = ("proxy-url",)


@dataclass(frozen=True)
class DirectConfig:
    """What a request needs: where, how TLS is checked, and the credential."""

    context: str
    server: str
    namespace: str
    ca_file: str | None
    cert_file: str | None
    key_file: str | None
    verify: bool
    tls_server_name: str | None
    authorization: str | None  # the Authorization header value, if any


def load(path: str, context: str | None) -> DirectConfig | None:
    """The context's settings, or None when only the official loader can honour them."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError):
        return None  # the official loader reports the problem in its own words
    if not isinstance(doc, dict):
        return None
    name = context or doc.get("current-context")
    ctx = _named(doc.get("contexts"), name)
    if ctx is None:
        return None
    cluster = _named(doc.get("clusters"), ctx.get("cluster"))
    user = _named(doc.get("users"), ctx.get("user")) if ctx.get("user") else {}
    if cluster is None or user is None or not cluster.get("server"):
        return None
    if any(user.get(k) for k in _USER_NEEDS_CLIENT) or any(cluster.get(k) for k in _CLUSTER_NEEDS_CLIENT):
        return None
    base = Path(path).resolve().parent
    return DirectConfig(
        context=str(name), server=str(cluster["server"]).rstrip("/"),
        namespace=str(ctx.get("namespace") or "default"),
        ca_file=_file(cluster, "certificate-authority", base),
        cert_file=_file(user, "client-certificate", base), key_file=_file(user, "client-key", base),
        verify=not cluster.get("insecure-skip-tls-verify"), tls_server_name=cluster.get("tls-server-name"),
        authorization=_authorization(user, base))


def pool(cfg: DirectConfig, size: int) -> Any:
    """A urllib3 pool for the server: CA, client certificate, SNI override; 2 retries like the client's."""
    import urllib3

    kwargs: dict[str, Any] = {"maxsize": size, "retries": 2}
    if cfg.verify:
        kwargs.update(cert_reqs="CERT_REQUIRED", ca_certs=cfg.ca_file)
        if cfg.tls_server_name:
            kwargs["server_hostname"] = cfg.tls_server_name
    else:
        kwargs["cert_reqs"] = "CERT_NONE"
    if cfg.cert_file:
        kwargs.update(cert_file=cfg.cert_file, key_file=cfg.key_file)
    return urllib3.PoolManager(**kwargs)


def _named(entries: Any, name: Any) -> dict[str, Any] | None:
    """The inner mapping of the list entry called `name` (contexts, clusters, users)."""
    for entry in entries or ():
        if isinstance(entry, dict) and entry.get("name") == name:
            key = next((k for k in ("context", "cluster", "user") if k in entry), None)
            inner = entry.get(key) if key else None
            return inner if isinstance(inner, dict) else {}
    return None


def _file(entry: dict[str, Any], key: str, base: Path) -> str | None:
    """A path for `key`: the file named (relative to the kubeconfig), or `key-data` written privately."""
    data = entry.get(f"{key}-data")
    if data:
        return _private_file(base64.b64decode(data))
    value = entry.get(key)
    if not value:
        return None
    return str(base / value) if not os.path.isabs(value) else str(value)


def _authorization(user: dict[str, Any], base: Path) -> str | None:
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token_path = Path(user["tokenFile"])
        token = (token_path if token_path.is_absolute() else base / token_path).read_text().strip()
    if token:
        return f"Bearer {token}"
    if user.get("username") and user.get("password"):
        pair = f"{user['username']}:{user['password']}".encode()
        return "Basic " + base64.b64encode(pair).decode()
    return None


_TMP: list[str] = []


def _private_file(data: bytes) -> str:
    """Key material for the TLS layer (which reads files), in a 0700 directory removed at exit."""
    if not _TMP:
        _TMP.append(tempfile.mkdtemp(prefix="kubectl-gitops-tls-"))
        atexit.register(shutil.rmtree, _TMP[0], True)
    fd, name = tempfile.mkstemp(dir=_TMP[0])
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return name
