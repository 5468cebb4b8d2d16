"""The I/O around `create secret git`: read the files, check the key, scan host keys, apply or print.

The Secret itself is built purely (core/gitsecret.py). A private key is loaded once here so a
key with a passphrase (which the fetch can't use) or a file that is no key fails now, with the
file named, rather than at the first sync.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import click

from kubectl_gitops.cli.common import GlobalOptions
from kubectl_gitops.constants import FIELD_MANAGER
from kubectl_gitops.core.errors import UsageError
from kubectl_gitops.core.gitsecret import GitAuth, git_secret, scheme_of, ssh_host

KEYSCAN_TIMEOUT = 10


def _read(path: str | None, flag: str) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{flag} {path}: cannot read it ({err})") from None


def check_private_key(text: str, path: str) -> None:
    """A private key the fetch can use: PEM or OpenSSH, no passphrase."""
    from cryptography.hazmat.primitives import serialization

    data = text.encode()
    loader = serialization.load_ssh_private_key if b"OPENSSH PRIVATE KEY" in data else \
        serialization.load_pem_private_key
    try:
        loader(data, password=None)
    except TypeError:
        raise UsageError(f"--private-key-file {path}: the key has a passphrase; the fetch needs a key "
                         "without one (a deploy key)") from None
    except Exception as err:  # cryptography raises ValueError or UnsupportedAlgorithm
        raise UsageError(f"--private-key-file {path}: not a private key ({str(err).splitlines()[0]})") from None


def scan_host_keys(url: str) -> str:
    """`ssh-keyscan` of the URL's host (trust on first use, as `flux create secret git` does)."""
    host, port = ssh_host(url)
    try:
        done = subprocess.run(["ssh-keyscan", "-T", "5", "-p", str(port), "--", host], capture_output=True,
                              text=True, timeout=KEYSCAN_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UsageError(f"cannot scan the host keys of {host}:{port} ({err}); pass --known-hosts-file") from None
    keys = "\n".join(line for line in done.stdout.splitlines() if line and not line.startswith("#"))
    if not keys:
        raise UsageError(f"ssh-keyscan found no host keys for {host}:{port}; pass --known-hosts-file")
    click.echo(f"warning: host keys of {host}:{port} taken from ssh-keyscan (trust on first use); "
               "pass --known-hosts-file to pin them", err=True)
    return keys + "\n"


def auth_from_files(url: str, username: str, password: str, token_file: str | None, key_file: str | None,
                    known_hosts_file: str | None, ca_file: str | None) -> GitAuth:
    identity = _read(key_file, "--private-key-file")
    if identity:
        check_private_key(identity, str(key_file))
    known_hosts = _read(known_hosts_file, "--known-hosts-file")
    if identity and not known_hosts and scheme_of(url) == "ssh":
        known_hosts = scan_host_keys(url)
    token = _read(token_file, "--bearer-token-file").strip()
    if token_file and not token:
        raise UsageError(f"--bearer-token-file {token_file} is empty")
    return GitAuth(username=username, password=password, bearer_token=token, identity=identity,
                   known_hosts=known_hosts, ca=_read(ca_file, "--ca-file"))


def _literal_yaml(obj: object) -> str:
    """YAML with multi-line values (keys, known_hosts, CA bundles) as `|` blocks, readable in review."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    return yaml.dump(obj, Dumper=Dumper, sort_keys=False)


def send_secret(opts: GlobalOptions, name: str, namespace: str, url: str, auth: GitAuth, export: bool) -> None:
    if export:
        click.echo(_literal_yaml(git_secret(name, namespace, url, auth, string_data=True)), nl=False)
        return
    from kubectl_gitops.cli.context import connect
    from kubectl_gitops.core.discovery import SECRETS

    obj = git_secret(name, namespace, url, auth)
    connect(opts).apply(SECRETS, obj, field_manager=FIELD_MANAGER + "-cli", force=True)
    click.echo(f"secret {namespace}/{name} applied (keys: {', '.join(sorted(obj['data']))})")
