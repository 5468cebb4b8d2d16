"""`create secret git`: exactly the keys the source step reads, one method per Secret, checked files."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
import yaml

from kubectl_gitops.cli.main import main
from kubectl_gitops.core.errors import UsageError
from kubectl_gitops.core.gitsecret import GitAuth, data_of, git_secret, scheme_of, ssh_host

SOURCE = Path(__file__).resolve().parents[2] / "kubectl_gitops" / "engine" / "source.py"


def test_keys_are_the_ones_the_source_step_reads():
    text = SOURCE.read_text()
    for key in ("username", "password", "bearerToken", "identity", "known_hosts", "ca.crt"):
        assert f'"{key}"' in text, key
    assert data_of("https://h/r", GitAuth(username="u", password="p", ca="CA")) == {
        "username": "u", "password": "p", "ca.crt": "CA"}
    assert data_of("https://h/r", GitAuth(bearer_token="t")) == {"bearerToken": "t"}
    assert data_of("git@h:r", GitAuth(identity="K", known_hosts="h ssh-ed25519 A")) == {
        "identity": "K", "known_hosts": "h ssh-ed25519 A"}


@pytest.mark.parametrize(("url", "auth", "message"), [
    ("https://h/r", GitAuth(), "choose one of"),
    ("https://h/r", GitAuth(username="u", password="p", bearer_token="t"), "got --username/--password and"),
    ("https://h/r", GitAuth(username="u"), "go together"),
    ("https://h/r", GitAuth(identity="K", known_hosts="x"), "is for SSH URLs"),
    ("ssh://git@h/r", GitAuth(username="u", password="p"), "--private-key-file, not a password"),
    ("ssh://git@h/r", GitAuth(identity="K"), "--known-hosts-file"),
    ("ssh://git@h/r", GitAuth(identity="K", known_hosts="x", ca="CA"), "--ca-file is for HTTPS"),
    ("ftp://h/r", GitAuth(bearer_token="t"), "not ftp://"),
    ("/some/path", GitAuth(bearer_token="t"), "not a Git URL"),
])
def test_refused(url: str, auth: GitAuth, message: str):
    with pytest.raises(UsageError, match=message):
        data_of(url, auth)


def test_schemes_and_hosts():
    assert scheme_of("git@github.com:org/repo.git") == "ssh" and scheme_of("HTTPS://h/r") == "https"
    assert ssh_host("ssh://git@h.example:2222/r") == ("h.example", 2222)
    assert ssh_host("git@h.example:org/r") == ("h.example", 22)


def test_apply_form_is_base64_and_export_form_is_readable():
    applied = git_secret("s", "ns", "https://h/r", GitAuth(bearer_token="tok"))
    assert applied["data"] == {"bearerToken": base64.b64encode(b"tok").decode()} and "stringData" not in applied
    exported = git_secret("s", "ns", "https://h/r", GitAuth(bearer_token="tok"), string_data=True)
    assert exported["stringData"] == {"bearerToken": "tok"} and exported["type"] == "Opaque"


def _export(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(["-n", "team", "create", "secret", "git", "s", *args, "--export"])
        code = 0
    except SystemExit as err:
        code = int(err.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_export_with_a_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    hosts = tmp_path / "known_hosts"
    hosts.write_text("git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
    code, out, err = _export(capsys, "--url", "ssh://git@git.example/r", "--private-key-file", str(key),
                             "--known-hosts-file", str(hosts))
    assert code == 0, err
    secret = yaml.safe_load(out)
    assert secret["metadata"] == {"name": "s", "namespace": "team"}
    assert secret["stringData"] == {"identity": key.read_text(), "known_hosts": hosts.read_text()}
    assert "identity: |" in out  # a readable block, not a quoted one-liner


def test_cli_refuses_a_key_with_a_passphrase_or_no_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(key)], check=True)
    hosts = tmp_path / "kh"
    hosts.write_text("h ssh-ed25519 AAAA\n")
    code, _, err = _export(capsys, "--url", "git@h:r", "--private-key-file", str(key), "--known-hosts-file",
                           str(hosts))
    assert code == 2 and err.strip().splitlines() == [
        f"error: --private-key-file {key}: the key has a passphrase; the fetch needs a key without one (a deploy key)"]
    junk = tmp_path / "junk"
    junk.write_text("not a key")
    code, _, err = _export(capsys, "--url", "git@h:r", "--private-key-file", str(junk), "--known-hosts-file",
                           str(hosts))
    assert code == 2 and f"--private-key-file {junk}: not a private key" in err


def test_cli_bearer_token_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    token = tmp_path / "token"
    token.write_text("ghp_example\n")
    code, out, err = _export(capsys, "--url", "https://h/r", "--bearer-token-file", str(token))
    assert code == 0, err
    assert yaml.safe_load(out)["stringData"] == {"bearerToken": "ghp_example"}
