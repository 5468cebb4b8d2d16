"""The sync's side of manifest signatures: carry each object's signature onto what is applied, and
refuse, before anything is applied, objects without a valid one in a signed scope.

The signatures file (`.gitops-signatures.yaml` in the Sync's path, written by `kubectl gitops
sign`) is read from the same exported revision the objects were rendered from. An object whose
canonical form matches its entry's digest gets the `kubectl-gitops.dev/signature` annotation (the
signed manifest and the signature, core/manifest_sig.py), which the admission webhook checks. When
a TrustPolicy covers the Sync (its namespace, its Tenant, or the Sync itself) in enforce mode, every
object must verify here already: a Sync that would be half refused by the webhook fails whole, with
the objects and reasons named, and nothing applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.adapters.render import resolve_path
from kubectl_gitops.core import manifest_sig as ms
from kubectl_gitops.core.errors import BuildFailed, GitOpsError, VerificationFailed
from kubectl_gitops.core.objects import ref_of
from kubectl_gitops.core.spec import InvalidSpec, SyncSpec
from kubectl_gitops.core.trust import TrustPolicy, parse_trust_policy
from kubectl_gitops.engine.source import TRUST_POLICIES

JSON = dict[str, Any]
MAX_NAMED = 10


def read_entries(root: Path, path: str) -> dict[str, ms.Entry] | None:
    """The signatures file of the Sync path `path` in the tree `root` (None if there is none);
    BuildFailed naming the file if it can't be read or parsed."""
    directory = resolve_path(root, path)
    if not directory.is_dir():
        directory = directory.parent
    file = directory / ms.SIGNATURES_FILE
    if not file.is_file():
        return None
    where = f"{path.strip('/') or '.'}/{ms.SIGNATURES_FILE}"
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise BuildFailed(f"{where}: cannot be read ({err})") from None
    return ms.parse_file(text, where)


def load_policies(kube: Kube) -> list[TrustPolicy]:
    """Every TrustPolicy that parses ([] without the CRD or the right to list them)."""
    try:
        raw = kube.list(TRUST_POLICIES)
    except GitOpsError:
        return []
    out = []
    for obj in raw:
        try:
            out.append(parse_trust_policy(obj))
        except InvalidSpec:
            continue  # refused at admission; the source step names it when a GitSource uses it
    return out


def attach(objects: Sequence[JSON], entries: dict[str, ms.Entry] | None) -> list[tuple[JSON, str]]:
    """Put each object's signature (when its entry's digest matches) on it, in place; returns the
    objects with no usable signature and why."""
    missing: list[tuple[JSON, str]] = []
    for obj in objects:
        entry = (entries or {}).get(ms.object_id(obj))
        if entry is None:
            why = "it has no entry in the signatures file" if entries is not None else (
                f"the Sync's path has no {ms.SIGNATURES_FILE}")
            missing.append((obj, why))
            continue
        data = ms.canonical(obj)
        if ms.digest(data) != entry.digest:
            missing.append((obj, f"it changed since it was signed (digest {ms.digest(data)[:19]}…, "
                                 f"signed {entry.digest[:19]}…)"))
            continue
        try:
            ms.with_annotation(obj, ms.encode_annotation(data, entry.signature))
        except VerificationFailed as err:
            missing.append((obj, str(err)))
    return missing


def carry_signatures(kube: Kube, spec: SyncSpec, root: Path, desired: list[JSON], tenant: str = "") -> list[JSON]:
    """The engine's hook: `desired` with signatures carried; VerificationFailed (nothing applied) when a
    policy covering the Sync enforces and an object has no valid signature."""
    entries = read_entries(root, spec.path)
    policies = load_policies(kube)
    scopes = [ms.covering(policies, ms.identity(obj)[2], {spec.key}, tenant) for obj in desired]
    if entries is None and not any(ms.enforced(scope) for scope in scopes):
        return desired  # nothing to carry, nothing required: no canonical form computed
    missing = {id(obj): why for obj, why in attach(desired, entries)}
    now = datetime.now(UTC)
    failures: list[str] = []
    for obj, scope in zip(desired, scopes, strict=True):
        if not ms.enforced(scope):
            continue
        why = missing.get(id(obj))
        if why is None:
            text = ms.annotation_of(obj)
            try:
                from kubectl_gitops.adapters import keys  # cryptography only when a signature is checked

                ms.verify_signed(*ms.decode_annotation(text), ms.judging(scope), keys.verify_manifest, now)
            except VerificationFailed as err:
                why = str(err)
        if why is not None:
            failures.append(f"{ref_of(obj).display}: {why}")
    if failures:
        more = f"; and {len(failures) - MAX_NAMED} more" if len(failures) > MAX_NAMED else ""
        raise VerificationFailed(f"{len(failures)} object(s) without a valid manifest signature in a signed scope "
                                 f"(nothing applied): {'; '.join(failures[:MAX_NAMED])}{more}")
    return desired
