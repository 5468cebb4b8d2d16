"""The Secret a GitSource's `secretRef` names, built from `create secret git` flags (pure).

Exactly the keys the source step reads (engine/source.py `_credentials`, Flux's names): `username`
and `password` (HTTPS basic auth), `bearerToken` (an HTTPS bearer header), `identity` and
`known_hosts` (SSH, host keys checked strictly), and `ca.crt` (a private CA for HTTPS). One
authentication method per Secret, and the one that suits the URL's scheme, so a Secret can't
silently carry credentials the fetch would never use.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from kubectl_gitops.core.errors import UsageError

JSON = dict[str, Any]
_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?!//)")


@dataclass(frozen=True)
class GitAuth:
    username: str = ""
    password: str = ""
    bearer_token: str = ""
    identity: str = ""
    known_hosts: str = ""
    ca: str = ""


def scheme_of(url: str) -> str:
    """https, http or ssh (scp-like `git@host:path` is ssh); UsageError for anything else."""
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        if scheme in ("https", "http", "ssh"):
            return scheme
        raise UsageError(f"--url {url!r}: a Git secret is for https://, http:// or ssh:// URLs, not {scheme}://")
    if _SCP_LIKE.match(url):
        return "ssh"
    raise UsageError(f"--url {url!r}: not a Git URL (https://host/repo, ssh://git@host/repo or git@host:repo)")


def ssh_host(url: str) -> tuple[str, int]:
    """The host and port of an SSH URL (for a host-key scan)."""
    if "://" in url:
        netloc = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
        host, _, port = netloc.partition(":")
        return host, int(port) if port.isdigit() else 22
    found = _SCP_LIKE.match(url)
    if found is None:
        raise UsageError(f"--url {url!r}: not an SSH URL")
    return found.group("host"), 22


def data_of(url: str, auth: GitAuth) -> dict[str, str]:
    """The Secret's keys and values, checked against the URL's scheme."""
    scheme = scheme_of(url)
    basic = bool(auth.username or auth.password)
    methods = [m for m, on in (("--username/--password", basic), ("--bearer-token-file", bool(auth.bearer_token)),
                               ("--private-key-file", bool(auth.identity))) if on]
    if len(methods) != 1:
        raise UsageError("choose one of --username/--password, --bearer-token-file or --private-key-file"
                         + (f" (got {' and '.join(methods)})" if methods else ""))
    if basic and not (auth.username and auth.password):
        raise UsageError("--username and --password go together")
    if auth.identity and scheme != "ssh":
        raise UsageError(f"--private-key-file is for SSH URLs (ssh:// or git@host:path), not {scheme}://")
    if not auth.identity and scheme == "ssh":
        raise UsageError("an SSH URL authenticates with --private-key-file, not a password or token")
    if auth.known_hosts and scheme != "ssh":
        raise UsageError("--known-hosts-file is for SSH URLs")
    if auth.ca and scheme == "ssh":
        raise UsageError("--ca-file is for HTTPS URLs")
    if auth.identity and not auth.known_hosts.strip():
        raise UsageError("SSH needs the server's host keys: --known-hosts-file (the source step checks them strictly)")
    data = {"username": auth.username, "password": auth.password, "bearerToken": auth.bearer_token,
            "identity": auth.identity, "known_hosts": auth.known_hosts, "ca.crt": auth.ca}
    return {k: v for k, v in data.items() if v}


def git_secret(name: str, namespace: str, url: str, auth: GitAuth, *, string_data: bool = False) -> JSON:
    """The Secret: `data` (base64) to apply, or `stringData` for a readable `--export`."""
    values = data_of(url, auth)
    body: JSON = ({"stringData": values} if string_data else
                  {"data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}})
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "type": "Opaque", **body}
