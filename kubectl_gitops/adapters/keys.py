"""Public keys and signatures: the one place that parses keys and verifies (or makes) signatures.

Why here: commit verification (engine/source.py), and later manifest signing and admission, all
need the same answer to "is this signature by one of the policy's keys?", so the parsing of key
formats and the cryptography live in one adapter that everything else calls.

* SSH keys and SSHSIG (the format of `ssh-keygen -Y sign` and of git's gpg.format=ssh; see
  PROTOCOL.sshsig in OpenSSH) are handled in Python with `cryptography`, offline: ed25519,
  ecdsa-sha2-nistp256/384/521 and RSA (>= 2048 bits, rsa-sha2-256/512 signatures only).
* OpenPGP signatures are verified by the `gpg` binary in a throw-away GNUPGHOME holding only the
  policy's keys: gpg is the maintained, standard implementation that reviewers already run
  (`git verify-commit` calls it too), and no Python OpenPGP library is both maintained and complete.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from kubectl_gitops.core.errors import VerificationFailed
from kubectl_gitops.core.manifest_sig import SSHSIG_NAMESPACE as MANIFEST_NAMESPACE
from kubectl_gitops.core.spec import InvalidSpec
from kubectl_gitops.core.trust import TrustPolicy

SSH_ALGORITHMS = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
MIN_RSA_BITS = 2048
GPG_TIMEOUT = 30.0
_MAGIC = b"SSHSIG"
_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"sha256": hashes.SHA256, "sha512": hashes.SHA512}
_CURVE_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "nistp256": hashes.SHA256, "nistp384": hashes.SHA384, "nistp521": hashes.SHA512}
_RSA_SIG: dict[str, type[hashes.HashAlgorithm]] = {"rsa-sha2-256": hashes.SHA256, "rsa-sha2-512": hashes.SHA512}

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class SSHKey:
    """A parsed SSH public key: its algorithm, wire blob and the key object."""

    algorithm: str
    blob: bytes
    key: PublicKey

    @property
    def fingerprint(self) -> str:
        """As `ssh-keygen -l` prints it: SHA256:<unpadded base64>."""
        return "SHA256:" + base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class Verified:
    """Who made a good signature: the policy's key name, its fingerprint, and (gpg) the signing time."""

    key_name: str
    fingerprint: str


# --- SSH wire format ----------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data, self.pos, self.what = data, 0, what

    def string(self) -> bytes:
        if self.pos + 4 > len(self.data):
            raise ValueError(f"{self.what} is truncated")
        size = int.from_bytes(self.data[self.pos:self.pos + 4], "big")
        start = self.pos + 4
        if start + size > len(self.data):
            raise ValueError(f"{self.what} is truncated")
        self.pos = start + size
        return self.data[start:self.pos]

    def uint32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise ValueError(f"{self.what} is truncated")
        self.pos += 4
        return int.from_bytes(self.data[self.pos - 4:self.pos], "big")

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def done(self) -> bool:
        return self.pos == len(self.data)


def _string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _mpint(value: int) -> bytes:
    if value == 0:
        return _string(b"")
    raw = value.to_bytes((value.bit_length() + 8) // 8, "big", signed=True)
    return _string(raw)


# --- public keys --------------------------------------------------------------------------


def parse_ssh_public_key(text: str, name: str = "key") -> SSHKey:
    """`ssh-ed25519 AAAA... comment` (or an allowed_signers line): InvalidSpec naming `name` if bad."""
    words = text.strip().split()
    known = [i for i, word in enumerate(words) if word in SSH_ALGORITHMS and i + 1 < len(words)]
    other = [i for i, word in enumerate(words) if word.startswith(("ssh-", "ecdsa-", "sk-")) and i + 1 < len(words)]
    for i in known or other:  # a known algorithm first: a principal may start with "ssh-" too
        return _ssh_key_from_blob(words[i], words[i + 1], name)
    raise InvalidSpec(f"key {name!r}: not an OpenSSH public key (expected e.g. 'ssh-ed25519 AAAA...'; "
                      f"supported: {', '.join(SSH_ALGORITHMS)})")


def _ssh_key_from_blob(algorithm: str, b64: str, name: str) -> SSHKey:
    if algorithm not in SSH_ALGORITHMS:
        raise InvalidSpec(f"key {name!r}: algorithm {algorithm!r} is not supported "
                          f"(supported: {', '.join(SSH_ALGORITHMS)})")
    try:
        blob = base64.b64decode(b64, validate=True)
        inner = _Reader(blob, f"key {name!r}").string().decode()
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidSpec(f"key {name!r}: the base64 key data is malformed ({err})") from None
    if inner != algorithm:
        raise InvalidSpec(f"key {name!r}: the key data is a {inner!r} key but the line says {algorithm!r}")
    return ssh_key_from_blob(blob, name)


def ssh_key_from_blob(blob: bytes, name: str = "key") -> SSHKey:
    """The key of an SSH wire-format public key blob (as inside an SSHSIG)."""
    try:
        algorithm = _Reader(blob, f"key {name!r}").string().decode()
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidSpec(f"key {name!r}: malformed key data ({err})") from None
    if algorithm not in SSH_ALGORITHMS:
        raise InvalidSpec(f"key {name!r}: algorithm {algorithm!r} is not supported "
                          f"(supported: {', '.join(SSH_ALGORITHMS)})")
    line = f"{algorithm} {base64.b64encode(blob).decode()}".encode()
    try:
        key = serialization.load_ssh_public_key(line)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidSpec(f"key {name!r}: cannot load the {algorithm} key ({err})") from None
    return _checked(SSHKey(algorithm, blob, _public(key, name)), name)


def _public(key: object, name: str) -> PublicKey:
    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return key
    raise InvalidSpec(f"key {name!r}: {type(key).__name__} keys are not supported")


def _checked(key: SSHKey, name: str) -> SSHKey:
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        raise InvalidSpec(f"key {name!r}: RSA key of {key.key.key_size} bits is too small "
                          f"(at least {MIN_RSA_BITS} bits)")
    return key


def parse_pem_public_key(text: str, name: str = "key") -> SSHKey:
    """A PEM `-----BEGIN PUBLIC KEY-----` key, converted to its SSH form (same fingerprint as ssh-keygen)."""
    try:
        key = _public(serialization.load_pem_public_key(text.strip().encode()), name)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise InvalidSpec(f"key {name!r}: not a PEM public key ({err})") from None
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return parse_ssh_public_key(line, name)


def parse_key(text: str, name: str = "key") -> SSHKey:
    """An SSH key in any accepted form: PEM, OpenSSH line, or allowed_signers line."""
    if "-----BEGIN PUBLIC KEY-----" in text:
        return parse_pem_public_key(text, name)
    return parse_ssh_public_key(text, name)


# --- SSHSIG -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SSHSig:
    key: SSHKey
    namespace: str
    hash_algorithm: str
    sig_algorithm: str
    signature: bytes


def unarmor(armored: str | bytes) -> bytes:
    text = armored.decode(errors="replace") if isinstance(armored, bytes) else armored
    text = text.strip()
    if not text.startswith(_BEGIN) or not text.endswith(_END):
        raise VerificationFailed("the signature is not an armored SSH signature "
                                 f"({_BEGIN} ... {_END})")
    body = "".join(text[len(_BEGIN):-len(_END)].split())
    try:
        return base64.b64decode(body, validate=True)
    except ValueError as err:
        raise VerificationFailed(f"the SSH signature's base64 is malformed ({err})") from None


def parse_sshsig(armored: str | bytes) -> SSHSig:
    raw = unarmor(armored)
    if not raw.startswith(_MAGIC):
        raise VerificationFailed("the SSH signature does not start with SSHSIG")
    reader = _Reader(raw[len(_MAGIC):], "the SSH signature")
    try:
        version = reader.uint32()
        if version != 1:
            raise VerificationFailed(f"SSH signature version {version} is not supported (only 1)")
        blob = reader.string()
        namespace = reader.string().decode()
        reader.string()  # reserved
        hash_alg = reader.string().decode()
        sig = _Reader(reader.string(), "the SSH signature blob")
        sig_alg = sig.string().decode()
        sig_bytes = sig.string()
    except (ValueError, UnicodeDecodeError) as err:
        raise VerificationFailed(f"the SSH signature is malformed ({err})") from None
    try:
        key = ssh_key_from_blob(blob, "in the signature")
    except InvalidSpec as err:
        raise VerificationFailed(str(err)) from None
    return SSHSig(key, namespace, hash_alg, sig_alg, sig_bytes)


def _signed_data(namespace: str, hash_alg: str, message: bytes) -> bytes:
    digest = hashlib.new(hash_alg, message).digest()
    return _MAGIC + _string(namespace.encode()) + _string(b"") + _string(hash_alg.encode()) + _string(digest)


def _verify_raw(key: SSHKey, sig_alg: str, signature: bytes, data: bytes) -> None:
    pub = key.key
    if isinstance(pub, ed25519.Ed25519PublicKey):
        if sig_alg != "ssh-ed25519":
            raise InvalidSignature()
        pub.verify(signature, data)
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        if sig_alg != key.algorithm:
            raise InvalidSignature()
        parts = _Reader(signature, "the ECDSA signature")
        r, s = parts.mpint(), parts.mpint()
        curve = key.algorithm.rsplit("-", 1)[1]
        pub.verify(encode_dss_signature(r, s), data, ec.ECDSA(_CURVE_HASH[curve]()))
    else:
        if sig_alg not in _RSA_SIG:  # ssh-rsa (SHA-1) signatures are refused, as OpenSSH does
            raise InvalidSignature()
        pub.verify(signature, data, padding.PKCS1v15(), _RSA_SIG[sig_alg]())


def verify_sshsig(armored: str | bytes, message: bytes, keys: Sequence[tuple[str, SSHKey]],
                  namespace: str = "git") -> Verified:
    """Check an armored SSHSIG over `message` against the named trusted keys.

    VerificationFailed says why: malformed, wrong namespace, key not trusted, bad signature."""
    sig = parse_sshsig(armored)
    if sig.namespace != namespace:
        raise VerificationFailed(f"the SSH signature is for namespace {sig.namespace!r}, not {namespace!r}")
    if sig.hash_algorithm not in _HASHES:
        raise VerificationFailed(f"the SSH signature's hash {sig.hash_algorithm!r} is not supported "
                                 "(sha256 or sha512)")
    match = [name for name, key in keys if key.blob == sig.key.blob]
    if not match:
        raise VerificationFailed(f"signed by key {sig.key.fingerprint} which is not trusted")
    if sig.sig_algorithm == "ssh-rsa":
        raise VerificationFailed(f"the signature by key {match[0]!r} uses ssh-rsa (SHA-1), which is refused; "
                                 "sign with rsa-sha2-512 (any current ssh-keygen does)")
    try:
        _verify_raw(sig.key, sig.sig_algorithm, sig.signature,
                    _signed_data(sig.namespace, sig.hash_algorithm, message))
    except (InvalidSignature, ValueError):
        raise VerificationFailed(f"bad SSH signature by key {match[0]!r} ({sig.key.fingerprint}): "
                                 "the signed data does not match") from None
    return Verified(match[0], sig.key.fingerprint)


def sign(data: bytes, private_key_file: Path, namespace: str = "git", password: bytes | None = None) -> str:
    """An armored SSHSIG of `data` with an OpenSSH private key file (sha512), as `ssh-keygen -Y sign`."""
    try:
        key = serialization.load_ssh_private_key(Path(private_key_file).read_bytes(), password)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise VerificationFailed(f"cannot load the private key {private_key_file}: {err}") from None
    public_line = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                serialization.PublicFormat.OpenSSH).decode()
    public = parse_ssh_public_key(public_line, str(private_key_file))
    data_to_sign = _signed_data(namespace, "sha512", data)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        sig_alg, raw = "ssh-ed25519", key.sign(data_to_sign)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        curve = public.algorithm.rsplit("-", 1)[1]
        r, s = decode_dss_signature(key.sign(data_to_sign, ec.ECDSA(_CURVE_HASH[curve]())))
        sig_alg, raw = public.algorithm, _mpint(r) + _mpint(s)
    elif isinstance(key, rsa.RSAPrivateKey):
        sig_alg, raw = "rsa-sha2-512", key.sign(data_to_sign, padding.PKCS1v15(), hashes.SHA512())
    else:
        raise VerificationFailed(f"private key {private_key_file}: {type(key).__name__} is not supported")
    blob = (_MAGIC + (1).to_bytes(4, "big") + _string(public.blob) + _string(namespace.encode()) + _string(b"")
            + _string(b"sha512") + _string(_string(sig_alg.encode()) + _string(raw)))
    body = base64.b64encode(blob).decode()
    lines = [body[i:i + 70] for i in range(0, len(body), 70)]
    return "\n".join([_BEGIN, *lines, _END]) + "\n"


# --- OpenPGP through gpg ------------------------------------------------------------------


def _gpg(home: Path, args: Sequence[str], stdin: bytes | None, timeout: float) -> tuple[int, str, str]:
    binary = shutil.which("gpg")
    if binary is None:
        raise VerificationFailed("cannot verify an OpenPGP signature: the gpg program is not installed "
                                 "(install gnupg on the machine that syncs)")
    env = {"GNUPGHOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    command = [binary, "--batch", "--no-tty", "--no-auto-key-retrieve", "--status-fd", "1", *args]
    try:
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, start_new_session=True)
    except OSError as err:
        raise VerificationFailed(f"cannot run gpg: {err.strerror}") from None
    try:
        out, err_out = proc.communicate(stdin or b"", timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # gpg and anything it started (its agent holds no pipe of ours)
        proc.communicate()
        raise VerificationFailed(f"gpg took more than {timeout:g}s") from None
    return proc.returncode, out.decode(errors="replace"), err_out.decode(errors="replace")


def pgp_fingerprints(home: Path, armored_key: str, name: str, timeout: float = GPG_TIMEOUT) -> list[str]:
    """Import one armored public key into `home`; return the fingerprints gpg reports (IMPORT_OK)."""
    status, out, err = _gpg(home, ["--import"], armored_key.encode(), timeout)
    found = [line.split()[3] for line in out.splitlines()
             if line.startswith("[GNUPG:] IMPORT_OK") and len(line.split()) > 3]
    if not found:
        raise InvalidSpec(f"key {name!r}: gpg cannot import it as an OpenPGP public key "
                          f"({err.strip().splitlines()[-1] if err.strip() else f'status {status}'})")
    return found


def verify_pgp(signature: bytes, message: bytes, keys: Sequence[tuple[str, str]],
               timeout: float = GPG_TIMEOUT) -> Verified:
    """Check a detached armored OpenPGP signature with gpg, trusting only `keys` (name, armored key)."""
    with tempfile.TemporaryDirectory(prefix="kubectl-gitops-gpg-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir(mode=0o700)
        owners: dict[str, str] = {}
        for name, text in keys:
            for fpr in pgp_fingerprints(home, text, name, timeout):
                owners[fpr.upper()] = name
        sig_file = Path(tmp) / "sig.asc"
        sig_file.write_bytes(signature)
        _, out, _ = _gpg(home, ["--verify", str(sig_file), "-"], message, timeout)
        return _pgp_result(out, owners)


def _pgp_result(status_out: str, owners: dict[str, str]) -> Verified:
    lines = [line.split()[1:] for line in status_out.splitlines() if line.startswith("[GNUPG:] ")]
    by_tag = {words[0]: words[1:] for words in lines if words}
    if "VALIDSIG" in by_tag and "GOODSIG" in by_tag:
        fields = by_tag["VALIDSIG"]
        primary = (fields[9] if len(fields) > 9 else fields[0]).upper()
        name = owners.get(primary) or owners.get(fields[0].upper())
        if name is None:
            raise VerificationFailed(f"signed by OpenPGP key {primary} which is not trusted")
        return Verified(name, primary)
    if "EXPKEYSIG" in by_tag:
        raise VerificationFailed(f"signed by OpenPGP key {by_tag['EXPKEYSIG'][0]} which has expired")
    if "REVKEYSIG" in by_tag:
        raise VerificationFailed(f"signed by OpenPGP key {by_tag['REVKEYSIG'][0]} which is revoked")
    if "BADSIG" in by_tag:
        raise VerificationFailed(f"bad OpenPGP signature by key {by_tag['BADSIG'][0]}: the signed data does not match")
    if "ERRSIG" in by_tag:
        fields = by_tag["ERRSIG"]
        code = fields[5] if len(fields) > 5 else "?"
        if code == "9":
            raise VerificationFailed(f"signed by OpenPGP key {fields[0]} which is not trusted")
        raise VerificationFailed(f"gpg cannot check the signature by key {fields[0]} (error code {code})")
    if "NODATA" in by_tag:
        raise VerificationFailed("the OpenPGP signature is malformed (gpg found no signature data)")
    raise VerificationFailed("gpg did not report a good signature")


# --- a signature against a TrustPolicy ----------------------------------------------------


def policy_ssh_keys(policy: TrustPolicy) -> list[tuple[str, SSHKey]]:
    """The policy's SSH keys, parsed: InvalidSpec naming the TrustPolicy and the key if one is bad."""
    try:
        return [(k.name, parse_key(k.public_key, k.name)) for k in policy.keys_of("ssh")]
    except InvalidSpec as err:
        raise InvalidSpec(f"TrustPolicy {policy.name}: {err}") from None


def verify_with_policy(signature: bytes, payload: bytes, when: datetime, policy: TrustPolicy,
                       namespace: str = "git") -> Verified:
    """Whether `signature` over `payload` is by a key of `policy` valid at `when` (the commit time).

    VerificationFailed names the reason: unsigned, malformed, untrusted key, key outside its window."""
    text = signature.strip()
    if not text:
        raise VerificationFailed("it is not signed")
    if text.startswith(_BEGIN.encode()):
        verified = verify_sshsig(text, payload, policy_ssh_keys(policy), namespace)
    elif text.startswith(b"-----BEGIN PGP SIGNATURE-----"):
        pgp = [(k.name, k.public_key) for k in policy.keys_of("pgp")]
        if not pgp:
            raise VerificationFailed(f"it has an OpenPGP signature but TrustPolicy {policy.name} "
                                     "has no pgp key")
        try:
            verified = verify_pgp(text + b"\n", payload, pgp)
        except InvalidSpec as err:
            raise InvalidSpec(f"TrustPolicy {policy.name}: {err}") from None
    else:
        raise VerificationFailed("its signature is malformed (neither an SSH nor an OpenPGP signature)")
    key = next(k for k in policy.keys if k.name == verified.key_name)
    if not key.valid_at(when):
        raise VerificationFailed(f"signed by key {key.name!r} ({verified.fingerprint}) outside its validity "
                                 f"window ({key.window()}; signed at {when.isoformat()})")
    return verified


# --- manifest signatures ------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _parsed_keys(policy: TrustPolicy) -> tuple[tuple[str, SSHKey], ...]:
    return tuple(policy_ssh_keys(policy))


@functools.lru_cache(maxsize=4096)
def _verified_manifest(armored: str, message: bytes, policy: TrustPolicy) -> tuple[str, str]:
    verified = verify_sshsig(armored, message, _parsed_keys(policy), MANIFEST_NAMESPACE)
    return verified.key_name, verified.fingerprint


def verify_manifest(armored: str, message: bytes, policy: TrustPolicy) -> tuple[str, str]:
    """`core.manifest_sig.Verify`: (key name, fingerprint) of a good SSHSIG over a manifest's canonical
    bytes by a key of `policy`. Good results are cached (a review of an unchanged object, or a re-sync,
    costs a dict lookup); the policy's keys are parsed once per policy."""
    if not policy.keys_of("ssh"):
        raise VerificationFailed(f"TrustPolicy {policy.name} has no ssh key (manifests are signed with SSH keys)")
    try:
        return _verified_manifest(armored, message, policy)
    except InvalidSpec as err:
        raise VerificationFailed(str(err)) from None


def public_line(private_key_file: Path, password: bytes | None = None) -> SSHKey:
    """The public key of an OpenSSH private key file."""
    try:
        key = serialization.load_ssh_private_key(Path(private_key_file).read_bytes(), password)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm) as err:
        raise VerificationFailed(f"cannot load the private key {private_key_file}: {err}") from None
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return parse_ssh_public_key(line, str(private_key_file))


def check_policy_keys(policy: TrustPolicy) -> list[str]:
    """Each key's fingerprint, parsing every key (InvalidSpec naming the policy and the key if one is
    bad): what admission runs on a TrustPolicy write. OpenPGP keys are imported by gpg."""
    prints = [key.fingerprint for _, key in policy_ssh_keys(policy)]
    pgp = policy.keys_of("pgp")
    if pgp:
        with tempfile.TemporaryDirectory(prefix="kubectl-gitops-gpg-") as tmp:
            home = Path(tmp) / "home"
            home.mkdir(mode=0o700)
            for key in pgp:
                try:
                    prints += pgp_fingerprints(home, key.public_key, key.name)
                except (InvalidSpec, VerificationFailed) as err:
                    raise InvalidSpec(f"TrustPolicy {policy.name}: {err}") from None
    return prints
