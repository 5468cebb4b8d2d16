"""Keys and SSHSIG: parsing every accepted key form, and interop both ways with the real ssh-keygen.

Every vector is made in the test by `ssh-keygen` itself (the reference implementation), so a
mistake in our wire format shows as a failure here, not as a commit that never verifies.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubectl_gitops.adapters import keys
from kubectl_gitops.core.errors import VerificationFailed
from kubectl_gitops.core.spec import InvalidSpec

KEY_TYPES = [("ed25519", []), ("ecdsa", ["-b", "256"]), ("ecdsa", ["-b", "384"]), ("ecdsa", ["-b", "521"]),
             ("rsa", ["-b", "2048"])]


def keygen(tmp: Path, kind: str, extra: list[str], name: str = "id") -> Path:
    path = tmp / f"{name}_{kind}{''.join(extra)}"
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *extra, "-N", "", "-C", "tester@example", "-f", str(path)],
                   check=True)
    return path


def ssh_sign(key: Path, data: bytes, namespace: str = "git") -> str:
    return subprocess.run(["ssh-keygen", "-Y", "sign", "-n", namespace, "-f", str(key)], input=data,
                          capture_output=True, check=True).stdout.decode()


def fingerprint(pub: Path) -> str:
    return subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, check=True,
                          text=True).stdout.split()[1]


@pytest.mark.parametrize(("kind", "extra"), KEY_TYPES)
def test_ssh_keygen_signature_verifies_in_python(tmp_path: Path, kind: str, extra: list[str]) -> None:
    key = keygen(tmp_path, kind, extra)
    pub = key.with_suffix(".pub").read_text() if key.suffix else Path(f"{key}.pub").read_text()
    parsed = keys.parse_ssh_public_key(pub, "alice")
    assert parsed.fingerprint == fingerprint(Path(f"{key}.pub"))
    data = b"tree 1234\nauthor a <a@b> 1 +0000\n\nhello\n"
    armored = ssh_sign(key, data)
    assert keys.verify_sshsig(armored, data, [("alice", parsed)]) == keys.Verified("alice", parsed.fingerprint)
    with pytest.raises(VerificationFailed, match=r"does not match"):
        keys.verify_sshsig(armored, data + b"x", [("alice", parsed)])


@pytest.mark.parametrize(("kind", "extra"), KEY_TYPES)
def test_python_signature_verifies_with_ssh_keygen(tmp_path: Path, kind: str, extra: list[str]) -> None:
    key = keygen(tmp_path, kind, extra)
    pub = Path(f"{key}.pub").read_text().split()
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"alice@example {pub[0]} {pub[1]}\n")
    data = b"some manifest bytes\n"
    armored = keys.sign(data, key, "file")
    sig = tmp_path / "data.sig"
    sig.write_text(armored)
    result = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "alice@example", "-n", "file",
                             "-s", str(sig)], input=data, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr
    parsed = keys.parse_ssh_public_key(" ".join(pub), "alice")
    assert keys.verify_sshsig(armored, data, [("alice", parsed)], "file").key_name == "alice"


def test_untrusted_key_and_wrong_namespace_are_refused(tmp_path: Path) -> None:
    signer = keygen(tmp_path, "ed25519", [], "signer")
    other = keygen(tmp_path, "ed25519", [], "other")
    trusted = keys.parse_ssh_public_key(Path(f"{other}.pub").read_text(), "bob")
    armored = ssh_sign(signer, b"data")
    with pytest.raises(VerificationFailed, match=r"not trusted"):
        keys.verify_sshsig(armored, b"data", [("bob", trusted)])
    mine = keys.parse_ssh_public_key(Path(f"{signer}.pub").read_text(), "me")
    with pytest.raises(VerificationFailed, match=r"namespace 'file'"):
        keys.verify_sshsig(ssh_sign(signer, b"data", "file"), b"data", [("me", mine)])


def test_garbage_signatures_are_refused() -> None:
    with pytest.raises(VerificationFailed, match=r"not an armored SSH signature"):
        keys.verify_sshsig("hello", b"data", [])
    with pytest.raises(VerificationFailed, match=r"does not start with SSHSIG|malformed|truncated"):
        keys.verify_sshsig("-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----", b"data", [])
    with pytest.raises(VerificationFailed, match=r"truncated"):
        body = base64.b64encode(b"SSHSIG\x00\x00\x00\x01\x00\x00\x10\x00").decode()
        keys.verify_sshsig(f"-----BEGIN SSH SIGNATURE-----\n{body}\n-----END SSH SIGNATURE-----", b"d", [])


def test_allowed_signers_line_and_pem_give_the_same_key(tmp_path: Path) -> None:
    key = keygen(tmp_path, "ed25519", [])
    pub = Path(f"{key}.pub").read_text().split()
    from_line = keys.parse_key(f'alice@example,bob@example namespaces="git" {pub[0]} {pub[1]}', "alice")
    loaded = serialization.load_ssh_public_key(f"{pub[0]} {pub[1]}".encode())
    pem = loaded.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert keys.parse_key(pem, "alice").fingerprint == from_line.fingerprint == fingerprint(Path(f"{key}.pub"))


def test_small_rsa_and_unknown_algorithms_are_refused_naming_the_key() -> None:
    small = rsa.generate_private_key(65537, 1024).public_key()
    line = small.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    with pytest.raises(InvalidSpec, match=r"key 'old-rsa': RSA key of 1024 bits is too small"):
        keys.parse_key(line, "old-rsa")
    with pytest.raises(InvalidSpec, match=r"key 'dsa'.*'ssh-dss' is not supported"):
        keys.parse_key("ssh-dss AAAAB3NzaC1kc3MAAACBAP== x", "dsa")
    with pytest.raises(InvalidSpec, match=r"key 'junk': not an OpenSSH public key"):
        keys.parse_key("hello world", "junk")
    with pytest.raises(InvalidSpec, match=r"key 'bad64': the base64 key data is malformed"):
        keys.parse_key("ssh-ed25519 !!!notbase64", "bad64")
    blob = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x01x").decode()
    with pytest.raises(InvalidSpec, match=r"key 'mismatch'"):
        keys.parse_key(f"ecdsa-sha2-nistp256 {blob}", "mismatch")


def test_allowed_signers_principal_that_looks_like_an_algorithm(tmp_path: Path) -> None:
    key = keygen(tmp_path, "ed25519", [])
    pub = Path(f"{key}.pub").read_text().split()
    assert keys.parse_key(f"ssh-deployer@example {pub[0]} {pub[1]}", "k").fingerprint == fingerprint(
        Path(f"{key}.pub"))


def test_gpg_missing_is_a_clear_verification_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VerificationFailed, match="the gpg program is not installed"):
        keys.verify_pgp(b"-----BEGIN PGP SIGNATURE-----", b"data", [("k", "-----BEGIN PGP PUBLIC KEY BLOCK-----")])


def test_gpg_that_hangs_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "gpg"
    fake.write_text("#!/bin/sh\nsleep 30 &\nsleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(VerificationFailed, match=r"gpg took more than 0.5s"):
        keys.verify_pgp(b"sig", b"data", [("k", "-----BEGIN PGP PUBLIC KEY BLOCK-----")], timeout=0.5)


def test_an_unimportable_pgp_key_is_named() -> None:
    with pytest.raises(InvalidSpec, match="key 'junk': gpg cannot import it"):
        keys.verify_pgp(b"sig", b"data", [("junk", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n"
                                                   "-----END PGP PUBLIC KEY BLOCK-----\n")])


@pytest.mark.parametrize(("status", "message"), [
    ("[GNUPG:] EXPKEYSIG ABCDEF Ada", "ABCDEF which has expired"),
    ("[GNUPG:] REVKEYSIG ABCDEF Ada", "ABCDEF which is revoked"),
    ("[GNUPG:] BADSIG ABCDEF Ada", "bad OpenPGP signature by key ABCDEF"),
    ("[GNUPG:] ERRSIG ABCDEF 22 10 00 1700000000 9 -", "ABCDEF which is not trusted"),
    ("[GNUPG:] ERRSIG ABCDEF 22 10 00 1700000000 4 -", "error code 4"),
    ("[GNUPG:] NODATA 1", "malformed"),
    ("", "did not report a good signature"),
    ("[GNUPG:] GOODSIG ABCDEF Ada\n[GNUPG:] VALIDSIG F1 2026-01-01 1 0 4 0 22 10 00 F0", "F0 which is not trusted"),
])
def test_gpg_status_lines(status: str, message: str) -> None:
    with pytest.raises(VerificationFailed, match=message):
        keys._pgp_result(status, {"AAAA": "known"})


def test_sha256_ssh_signature_verifies(tmp_path: Path) -> None:
    key = keygen(tmp_path, "ed25519", [])
    parsed = keys.parse_key(Path(f"{key}.pub").read_text(), "alice")
    done = subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "git", "-f", str(key), "-O", "hashalg=sha256"],
                          input=b"data", capture_output=True, check=True)
    sig = keys.parse_sshsig(done.stdout)
    assert sig.hash_algorithm == "sha256"
    assert keys.verify_sshsig(done.stdout, b"data", [("alice", parsed)]).key_name == "alice"


def test_sha1_rsa_signatures_are_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = keygen(tmp_path, "rsa", ["-b", "2048"])
    private = serialization.load_ssh_private_key(key.read_bytes(), None)
    assert isinstance(private, rsa.RSAPrivateKey)
    public = keys.parse_key(Path(f"{key}.pub").read_text(), "old")
    raw = private.sign(keys._signed_data("git", "sha512", b"data"), padding.PKCS1v15(), hashes.SHA1())
    blob = (b"SSHSIG" + (1).to_bytes(4, "big") + keys._string(public.blob) + keys._string(b"git") + keys._string(b"")
            + keys._string(b"sha512") + keys._string(keys._string(b"ssh-rsa") + keys._string(raw)))
    armored = "-----BEGIN SSH SIGNATURE-----\n" + base64.b64encode(blob).decode() + "\n-----END SSH SIGNATURE-----\n"
    with pytest.raises(VerificationFailed, match=r"uses ssh-rsa \(SHA-1\), which is refused"):
        keys.verify_sshsig(armored, b"data", [("old", public)])
