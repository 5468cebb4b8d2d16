"""The TrustPolicy model: which keys may sign what runs in the cluster, parsed purely.

A TrustPolicy is cluster-scoped: only cluster admins say whose signatures count. It lists named
keys (SSH or OpenPGP public key text, each with an optional validity window) and the scope it
covers (namespaces, tenants, Syncs). The key material itself is parsed and checked by
adapters/keys.py (the one place that knows key formats); this module checks the shape only, so a
policy with a missing field or an unknown key type fails before any cryptography runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubectl_gitops.core.spec import InvalidSpec

KEY_TYPES = ("ssh", "pgp")
MODES = ("enforce", "warn")


@dataclass(frozen=True)
class TrustedKey:
    name: str
    type: str
    public_key: str
    not_before: datetime | None = None
    not_after: datetime | None = None

    def valid_at(self, when: datetime) -> bool:
        """Whether `when` (timezone-aware) falls in the key's validity window."""
        if self.not_before is not None and when < self.not_before:
            return False
        return self.not_after is None or when <= self.not_after

    def window(self) -> str:
        start = self.not_before.isoformat() if self.not_before else "-"
        end = self.not_after.isoformat() if self.not_after else "-"
        return f"{start} .. {end}"


@dataclass(frozen=True)
class Scope:
    namespaces: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    syncs: tuple[str, ...] = ()
    """Each as NAMESPACE/NAME."""


@dataclass(frozen=True)
class TrustPolicy:
    name: str
    keys: tuple[TrustedKey, ...]
    scope: Scope
    mode: str = "enforce"
    controllers: tuple[str, ...] = ()
    """Usernames (besides the control plane's controllers) that may write fields outside a signed
    manifest at admission, e.g. an autoscaler or operator's ServiceAccount (core/manifest_sig.py)."""

    def keys_of(self, key_type: str) -> tuple[TrustedKey, ...]:
        return tuple(k for k in self.keys if k.type == key_type)

    def covers(self, namespace: str, sync: str = "", tenant: str = "") -> bool:
        """Whether the scope names this namespace, this Sync (its name, in `namespace`) or this tenant:
        for admission to require verification there (empty scope lists cover nothing)."""
        return (namespace in self.scope.namespaces or (bool(tenant) and tenant in self.scope.tenants)
                or (bool(sync) and f"{namespace}/{sync}" in self.scope.syncs))


def _time(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise InvalidSpec(f"{where}: {value!r} is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z)") from None
    if parsed.tzinfo is None:
        raise InvalidSpec(f"{where}: {value!r} has no timezone (end it with Z or an offset)")
    return parsed


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidSpec(f"{where} must be a list of strings")
    return tuple(str(v) for v in value)


def _key(raw: Any, index: int, where: str) -> TrustedKey:
    if not isinstance(raw, Mapping):
        raise InvalidSpec(f"{where}: spec.keys[{index}] must be an object")
    name = str(raw.get("name") or "")
    if not name:
        raise InvalidSpec(f"{where}: spec.keys[{index}].name is required")
    here = f"{where}: key {name!r}"
    key_type = str(raw.get("type") or "")
    if key_type not in KEY_TYPES:
        raise InvalidSpec(f"{here}: type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")
    text = str(raw.get("publicKey") or "")
    if not text.strip():
        raise InvalidSpec(f"{here}: publicKey is required")
    if key_type == "pgp" and "-----BEGIN PGP PUBLIC KEY BLOCK-----" not in text:
        raise InvalidSpec(f"{here}: a pgp key must be an armored OpenPGP public key block "
                          "(gpg --armor --export KEYID)")
    key = TrustedKey(name, key_type, text, _time(raw.get("notBefore"), f"{here}: notBefore"),
                     _time(raw.get("notAfter"), f"{here}: notAfter"))
    if key.not_before and key.not_after and key.not_after < key.not_before:
        raise InvalidSpec(f"{here}: notAfter is before notBefore")
    return key


def parse_trust_policy(obj: Mapping[str, Any]) -> TrustPolicy:
    """A TrustPolicy object as read from the API; InvalidSpec naming the field or key that is wrong."""
    name = str((obj.get("metadata") or {}).get("name") or "")
    where = f"TrustPolicy {name}"
    spec = obj.get("spec") or {}
    raw_keys = spec.get("keys") or []
    if not isinstance(raw_keys, list) or not raw_keys:
        raise InvalidSpec(f"{where}: spec.keys must list at least one key")
    keys = tuple(_key(raw, i, where) for i, raw in enumerate(raw_keys))
    names = [k.name for k in keys]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    if duplicate:
        raise InvalidSpec(f"{where}: key names must be unique ({', '.join(duplicate)} repeated)")
    scope = spec.get("scope") or {}
    syncs = _strings(scope.get("syncs"), f"{where}: spec.scope.syncs")
    for ref in syncs:
        if ref.count("/") != 1 or not all(ref.split("/")):
            raise InvalidSpec(f"{where}: spec.scope.syncs entry {ref!r} must be NAMESPACE/NAME")
    mode = str(spec.get("mode") or "enforce")
    if mode not in MODES:
        raise InvalidSpec(f"{where}: spec.mode must be enforce or warn, not {mode!r}")
    return TrustPolicy(name, keys, Scope(_strings(scope.get("namespaces"), f"{where}: spec.scope.namespaces"),
                                         _strings(scope.get("tenants"), f"{where}: spec.scope.tenants"),
                                         syncs), mode, _strings(spec.get("controllers"), f"{where}: spec.controllers"))
