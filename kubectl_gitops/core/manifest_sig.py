"""Manifest signatures: the canonical form that is signed, the signatures file, the annotation, and
the one decision "does this object carry a valid signature for exactly what it is?" (pure).

Why a module of its own: `kubectl gitops sign` and `verify`, the sync (which carries each object's
signature onto what it applies), the admission webhook and the audit all must agree to the byte on
what is signed and on what a valid signature means, so each of them calls the functions here.

**The canonical form** of an object (`canonical`) is UTF-8 JSON with sorted keys, no whitespace
(separators `,` and `:`), non-ASCII characters kept as they are, of the object minus:

* `status`;
* server-set metadata: uid, resourceVersion, generation, creationTimestamp, managedFields, selfLink,
  deletionTimestamp, deletionGracePeriodSeconds;
* the engine's own stamps: labels `kubectl-gitops.dev/sync`, `kubectl-gitops.dev/sync-namespace`,
  `kubectl-gitops.dev/tenant`, annotations `kubectl-gitops.dev/revision`, `.../digest`, `.../fields`
  and `.../signature` (labels or annotations left empty are dropped).

Everything else stays, identity included: apiVersion, kind, metadata.name and metadata.namespace
(as the sync settles it: targetNamespace and the Sync's namespace applied). The signature is an
SSHSIG (`ssh-keygen -Y sign -n kubectl-gitops-manifest`) over exactly these bytes, so anyone can
check one with ssh-keygen (docs/signatures.md).

**The signatures file** (`.gitops-signatures.yaml`, next to the kustomization or manifests of a
Sync's path; the renderer skips dot files) maps each object's inventory id to its readable name,
the sha256 of its canonical bytes, the signer's key fingerprint and the armored signature.

**The annotation** (`kubectl-gitops.dev/signature`) the sync puts on each object it applies is
`v1.<base64 zlib of the canonical bytes>.<base64 SSHSIG>`: the signed manifest itself travels
with the object, so admission can compare the object with what was signed without Git.

**Matching at admission** (`check_signature`): the signature must verify by a key of a TrustPolicy
covering the object, valid now; the signed manifest must be for this very object (group, kind,
namespace, name); everything it says must hold in the object (`plan.diff_paths`: the same
containment the sync uses, so the API server's defaults inside signed structures, quantities
written differently, `stringData`, are forgiven); and every field a field manager owns in
managedFields must be either signed, one of the stamps or status, unchanged by this request, or
written by a controller the policy trusts. Fields no manager owns are the API server's defaults
(server-side apply records none for them). The object must keep the applier's Apply entry:
clearing managedFields (`[{}]`) would otherwise make an added field look like a default. Cost:
one signature check (cached by the caller), one containment walk of the signed manifest, one walk
of the decoded managedFields tries: linear in the object's size, no API call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import yaml

from kubectl_gitops.constants import (
    ANNOTATION_DIGEST,
    ANNOTATION_FIELDS,
    ANNOTATION_REVISION,
    ANNOTATION_SIGNATURE,
    FIELD_MANAGER,
    LABEL_SYNC,
    LABEL_SYNC_NAMESPACE,
    LABEL_TENANT,
)
from kubectl_gitops.core import plan
from kubectl_gitops.core.bounded import LimitExceeded, same
from kubectl_gitops.core.errors import BuildFailed, VerificationFailed
from kubectl_gitops.core.managed_fields import MAX_ENTRIES, MISSING, SELF, FieldPath, format_path, resolve
from kubectl_gitops.core.objects import ObjectRef, ref_of, split_api_version
from kubectl_gitops.core.trust import TrustPolicy

SSHSIG_NAMESPACE: Final = "kubectl-gitops-manifest"
"""The SSHSIG namespace of manifest signatures (`ssh-keygen -Y sign/verify -n`): a commit signature
(namespace `git`) can never pass for a manifest signature, nor the other way round."""
SIGNATURES_FILE: Final = ".gitops-signatures.yaml"
FILE_VERSION: Final = 1
ANNOTATION_PREFIX: Final = "v1."
MAX_ANNOTATION: Final = 192 * 1024
"""The largest annotation read (the API server allows 256 KiB for all of an object's annotations)."""
MAX_CANONICAL: Final = 3 * 1024 * 1024
"""The largest signed manifest decompressed (etcd stores objects up to 1.5 MiB)."""
MAX_PROBLEMS: Final = 5
_MALFORMED: Final = f"the {ANNOTATION_SIGNATURE} annotation is malformed (expected v1.<manifest>.<signature>)"
_BEGIN: Final = "-----BEGIN SSH SIGNATURE-----"
_END: Final = "-----END SSH SIGNATURE-----"

STAMP_LABELS: Final = frozenset({LABEL_SYNC, LABEL_SYNC_NAMESPACE, LABEL_TENANT})
STAMP_ANNOTATIONS: Final = frozenset({ANNOTATION_REVISION, ANNOTATION_DIGEST, ANNOTATION_FIELDS,
                                      ANNOTATION_SIGNATURE})
SERVER_METADATA: Final = frozenset({"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields",
                                    "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"})
CONTROL_PLANE: Final = frozenset({"system:kube-controller-manager", "system:kube-scheduler"})
CONTROL_PLANE_PREFIX: Final = "system:serviceaccount:kube-system:"
"""The control plane's controllers (deployment, replicaset, HPA, garbage collector...) may write
fields outside the signed manifest, as may the usernames a TrustPolicy lists in spec.controllers."""

Verify = Callable[[str, bytes, TrustPolicy], tuple[str, str]]
"""`verify(armored_sshsig, message, policy) -> (key name, fingerprint)`; raises VerificationFailed
saying why (malformed, untrusted key, bad signature). adapters/keys.py provides it."""


# ------------------------------------------------------------------ canonical form


def signed_content(obj: Mapping[str, Any]) -> dict[str, Any]:
    """`obj` as signed: no status, no server-set metadata, none of the engine's stamps."""
    clean = {k: v for k, v in obj.items() if k != "status"}
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        kept = {k: v for k, v in meta.items() if k not in SERVER_METADATA}
        for key, stamps in (("labels", STAMP_LABELS), ("annotations", STAMP_ANNOTATIONS)):
            values = kept.get(key)
            if isinstance(values, Mapping):
                rest = {k: v for k, v in values.items() if k not in stamps}
                if rest:
                    kept[key] = rest
                else:
                    kept.pop(key)
        clean["metadata"] = kept
    return clean


def canonical(obj: Mapping[str, Any]) -> bytes:
    """The bytes a manifest signature covers (see the module docstring)."""
    return json.dumps(signed_content(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def object_id(obj: Mapping[str, Any]) -> str:
    """The key of an object in the signatures file: its inventory id `<ns>_<name>_<group>_<kind>`."""
    return ref_of(dict(obj)).id


# ------------------------------------------------------------------ the signatures file


@dataclass(frozen=True)
class Entry:
    """One object's signature in the signatures file."""

    id: str
    object: str
    digest: str
    key: str
    signature: str
    """Armored SSHSIG."""


def render_file(entries: Iterable[Entry]) -> str:
    """The signatures file's text: sorted by id, one block per object (reads well in a diff)."""
    body = {
        "version": FILE_VERSION,
        "namespace": SSHSIG_NAMESPACE,
        "signatures": {e.id: {"object": e.object, "digest": e.digest, "key": e.key,
                              "signature": _LiteralText(e.signature.strip() + "\n")}
                       for e in sorted(entries, key=lambda e: e.id)},
    }
    header = ("# Manifest signatures made by `kubectl gitops sign` (docs/signatures.md). Each entry signs the\n"
              "# canonical JSON of one rendered object. Check one with:\n"
              "#   kubectl gitops verify PATH --print-canonical ID > object.json\n"
              f"#   ssh-keygen -Y verify -f allowed_signers -I SIGNER -n {SSHSIG_NAMESPACE} -s object.sig"
              " < object.json\n")
    return header + yaml.dump(body, Dumper=_Dumper, sort_keys=False, width=200)


class _LiteralText(str):
    """A string written as a YAML literal block (the armored signature, line by line)."""


_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_LiteralText, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", str(s), style="|"))


def parse_file(text: str, where: str) -> dict[str, Entry]:
    """The entries of a signatures file by id; BuildFailed naming `where` (the file) if it is not one."""
    try:
        doc = yaml.load(text, Loader=_LOADER)  # a safe loader: libyaml's when present
    except yaml.YAMLError as err:
        raise BuildFailed(f"{where}: not valid YAML ({' '.join(str(err).split())[:300]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("signatures"), dict):
        raise BuildFailed(f"{where}: not a signatures file (expected `signatures:` mapping object ids to "
                          "signatures; made by `kubectl gitops sign`)")
    if doc.get("version", FILE_VERSION) != FILE_VERSION:
        raise BuildFailed(f"{where}: version {doc.get('version')!r} is not supported (only {FILE_VERSION})")
    if doc.get("namespace", SSHSIG_NAMESPACE) != SSHSIG_NAMESPACE:
        raise BuildFailed(f"{where}: namespace {doc.get('namespace')!r} is not {SSHSIG_NAMESPACE!r}")
    out: dict[str, Entry] = {}
    for key, raw in doc["signatures"].items():
        if not isinstance(raw, dict) or not isinstance(raw.get("signature"), str):
            raise BuildFailed(f"{where}: signatures.{key}: expected object, digest, key and signature")
        out[str(key)] = Entry(str(key), str(raw.get("object") or ""), str(raw.get("digest") or ""),
                              str(raw.get("key") or ""), raw["signature"])
    return out


# ------------------------------------------------------------------ the annotation


def armor(body_b64: str) -> str:
    lines = [body_b64[i:i + 70] for i in range(0, len(body_b64), 70)]
    return "\n".join([_BEGIN, *lines, _END]) + "\n"


def unarmored(armored: str) -> str:
    """The base64 body of an armored SSH signature (VerificationFailed if it is not one)."""
    text = armored.strip()
    if not text.startswith(_BEGIN) or not text.endswith(_END):
        raise VerificationFailed(f"the signature is not an armored SSH signature ({_BEGIN} ... {_END})")
    return "".join(text[len(_BEGIN):-len(_END)].split())


def encode_annotation(canonical_bytes: bytes, armored: str) -> str:
    """The annotation value; VerificationFailed when it would be larger than admission reads."""
    packed = base64.b64encode(zlib.compress(canonical_bytes, 9)).decode()
    value = f"{ANNOTATION_PREFIX}{packed}.{unarmored(armored)}"
    if len(value) > MAX_ANNOTATION:
        raise VerificationFailed(f"its signed manifest is too large to carry ({len(value):,} bytes compressed; "
                                 f"at most {MAX_ANNOTATION:,})")
    return value


def decode_annotation(text: object) -> tuple[bytes, str]:
    """(canonical bytes, armored signature) from an annotation value; VerificationFailed if malformed.

    Bounded: the value's size is checked first and decompression stops at MAX_CANONICAL bytes."""
    if not isinstance(text, str) or not text.startswith(ANNOTATION_PREFIX):
        raise VerificationFailed(_MALFORMED)
    if len(text) > MAX_ANNOTATION:
        raise VerificationFailed(f"the {ANNOTATION_SIGNATURE} annotation is larger than {MAX_ANNOTATION:,} bytes")
    parts = text[len(ANNOTATION_PREFIX):].split(".")
    if len(parts) != 2 or not all(parts):
        raise VerificationFailed(_MALFORMED)
    try:
        packed = base64.b64decode(parts[0], validate=True)
        inflater = zlib.decompressobj()
        data = inflater.decompress(packed, MAX_CANONICAL)
        if inflater.unconsumed_tail or not inflater.eof:
            raise VerificationFailed(f"the signed manifest in {ANNOTATION_SIGNATURE} is truncated or larger "
                                     f"than {MAX_CANONICAL:,} bytes")
        base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError, zlib.error) as err:
        raise VerificationFailed(f"the {ANNOTATION_SIGNATURE} annotation is malformed ({err})") from None
    return data, armor(parts[1])


def annotation_of(obj: Mapping[str, Any] | None) -> Any:
    meta = (obj or {}).get("metadata")
    notes = meta.get("annotations") if isinstance(meta, Mapping) else None
    return notes.get(ANNOTATION_SIGNATURE) if isinstance(notes, Mapping) else None


def with_annotation(obj: dict[str, Any], value: str) -> dict[str, Any]:
    """`obj` (changed in place and returned) carrying the signature annotation."""
    meta = obj.setdefault("metadata", {})
    notes = meta.get("annotations")
    if not isinstance(notes, dict):
        notes = meta["annotations"] = {}
    notes[ANNOTATION_SIGNATURE] = value
    return obj


# ------------------------------------------------------------------ scope


def sync_of(obj: Mapping[str, Any] | None) -> str:
    """`NAMESPACE/NAME` of the Sync an object's ownership labels name ("" if none)."""
    meta = (obj or {}).get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    if not isinstance(labels, Mapping):
        return ""
    name, namespace = labels.get(LABEL_SYNC), labels.get(LABEL_SYNC_NAMESPACE)
    return f"{namespace}/{name}" if isinstance(name, str) and isinstance(namespace, str) and name else ""


def covering(policies: Iterable[TrustPolicy], namespace: str, syncs: Collection[str] = (),
             tenant: str = "") -> list[TrustPolicy]:
    """The policies whose scope names `namespace`, its `tenant`, or one of `syncs` (NAMESPACE/NAME)."""
    return [p for p in policies
            if (namespace and namespace in p.scope.namespaces) or (tenant and tenant in p.scope.tenants)
            or any(s in p.scope.syncs for s in syncs if s)]


def enforced(policies: Sequence[TrustPolicy]) -> bool:
    """Refuse (rather than warn) when any covering policy enforces."""
    return any(p.mode == "enforce" for p in policies)


def judging(policies: Sequence[TrustPolicy]) -> list[TrustPolicy]:
    """The covering policies whose keys and controllers count: the enforcing ones when any enforces.
    A policy in warn mode (a trial) must not add a trusted key or controller to an enforcing one."""
    strict = [p for p in policies if p.mode == "enforce"]
    return strict or list(policies)


def _ownership_moved(obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[str]:
    """An update that drops or changes a managed object's ownership labels in a signed scope: once
    unlabelled, its next writes would no longer be judged (nor, with a Sync-scoped policy, covered)."""
    before = sync_of(old)
    if not before or sync_of(obj) == before:
        return []
    return [f"its ownership labels ({LABEL_SYNC}, {LABEL_SYNC_NAMESPACE}) name Sync {before} and can't be "
            "removed or changed in a signed scope (to move it to another Sync, delete it and let that Sync create it)"]


def is_controller(username: str, policies: Iterable[TrustPolicy]) -> bool:
    return (username in CONTROL_PLANE or username.startswith(CONTROL_PLANE_PREFIX)
            or any(username in p.controllers for p in policies))


# ------------------------------------------------------------------ verifying one signature


@dataclass(frozen=True)
class Signed:
    """A verified signature: the signed manifest, and who signed it under which policy."""

    manifest: dict[str, Any]
    canonical: bytes
    policy: str
    key: str
    fingerprint: str


def verify_signed(canonical_bytes: bytes, armored: str, policies: Sequence[TrustPolicy], verify: Verify,
                  now: datetime) -> Signed:
    """The signed manifest if a key of one of `policies`, valid at `now`, signed it; else
    VerificationFailed with each policy's reason."""
    reasons: list[str] = []
    for policy in policies:
        try:
            key_name, fingerprint = verify(armored, canonical_bytes, policy)
        except VerificationFailed as err:
            reasons.append(f"{err} (TrustPolicy {policy.name})" if len(policies) > 1 else str(err))
            continue
        key = next((k for k in policy.keys if k.name == key_name), None)
        if key is not None and not key.valid_at(now):
            reasons.append(f"signed by key {key_name!r} ({fingerprint}) outside its validity window "
                           f"({key.window()}; now {now.isoformat(timespec='seconds')})")
            continue
        return Signed(_manifest(canonical_bytes), canonical_bytes, policy.name, key_name, fingerprint)
    raise VerificationFailed("; ".join(reasons) or "no TrustPolicy to verify it with")


def _manifest(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        raise VerificationFailed("the signed manifest is not JSON") from None
    if not isinstance(value, dict):
        raise VerificationFailed("the signed manifest is not an object")
    return value


def identity(obj: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): what a signature must name exactly (any version of it)."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    group, _ = split_api_version(str(obj.get("apiVersion") or ""))
    return group, str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _display(key: tuple[str, str, str, str]) -> str:
    group, kind, namespace, name = key
    return ObjectRef(group, "", kind, namespace, name).display


# ------------------------------------------------------------------ the decision


def check_signature(obj: Mapping[str, Any], policies: Sequence[TrustPolicy], verify: Verify, *, now: datetime,
                    old: Mapping[str, Any] | None = None, requester: str = "", tenant: str = "",
                    ignore_managers: Collection[str] = ()) -> list[str]:
    """Why `obj` does not carry a valid signature for exactly its identity and content ([] = it does,
    or no policy in `policies` covers it). The one decision admission and the audit share.

    `policies`: every TrustPolicy (those covering the object's namespace, `tenant` or Sync are
    used). Admission passes `old` (the object before an UPDATE) and `requester` (the username):
    fields unchanged by the request, and fields written by a controller (`is_controller`), are not
    judged. The audit, judging live objects with no request, passes neither, and may name field
    managers whose fields are not judged (`ignore_managers`, e.g. the control plane's).
    """
    scope = judging(covering(policies, identity(obj)[2], {sync_of(obj), sync_of(old)}, tenant))
    if not scope:
        return []
    moved = _ownership_moved(obj, old)
    controller = bool(requester) and is_controller(requester, scope)
    text = annotation_of(obj)
    if controller and old is not None and text == annotation_of(old):
        return moved + _controller_write(text, obj, scope, verify, now)
    try:
        signed = _signed(text, scope, verify, now)
    except VerificationFailed as err:
        return [str(err)]
    wanted, got = identity(signed.manifest), identity(obj)
    if wanted != got:
        return [f"the signature is for {_display(wanted)}, not for {_display(got)} (a signature copied "
                "from another object)"]
    problems = moved + _contained(signed, obj)
    if not controller:
        try:
            problems += _unsigned_fields(signed.manifest, obj, old, ignore_managers)
        except (VerificationFailed, LimitExceeded) as err:
            problems.append(f"its managedFields can't be judged ({err})")
    if not _applied_by_applier(obj):
        problems.append(f"its managedFields have no server-side apply entry of {FIELD_MANAGER} (cleared or "
                        "rewritten): the signed content can't be told from fields added since")
    return problems[:MAX_PROBLEMS] + ([f"and {len(problems) - MAX_PROBLEMS} more"] if len(problems) > MAX_PROBLEMS
                                      else [])


def _signed(text: Any, scope: Sequence[TrustPolicy], verify: Verify, now: datetime) -> Signed:
    if text is None:
        raise VerificationFailed(f"it is not signed (no {ANNOTATION_SIGNATURE} annotation); sign it with "
                                 "`kubectl gitops sign` and sync again")
    try:
        return verify_signed(*decode_annotation(text), scope, verify, now)
    except VerificationFailed as err:
        raise VerificationFailed(f"its signature is refused: {err}") from None


def _controller_write(text: Any, obj: Mapping[str, Any], scope: Sequence[TrustPolicy], verify: Verify,
                      now: datetime) -> list[str]:
    """A controller's write that leaves the signature alone: the object's signing state is the one
    its last writer left (and was judged for); only the signed content is protected."""
    try:
        signed = _signed(text, scope, verify, now)
    except VerificationFailed:
        return []
    return _contained(signed, obj)


def _contained(signed: Signed, obj: Mapping[str, Any]) -> list[str]:
    try:
        paths = plan.diff_paths(signed.manifest, obj)
    except RecursionError:
        return ["the object is nested too deeply to compare with its signed manifest"]
    return [f"{path} differs from the signed manifest (signed by {signed.key})" for path in paths]


def _applied_by_applier(obj: Mapping[str, Any]) -> bool:
    meta = obj.get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, Mapping) else None
    return isinstance(entries, list) and any(
        isinstance(e, dict) and e.get("manager") == FIELD_MANAGER and e.get("operation") == "Apply"
        for e in entries)


def _unsigned_fields(signed: Mapping[str, Any], obj: Mapping[str, Any], old: Mapping[str, Any] | None,
                     ignore_managers: Collection[str]) -> list[str]:
    """Fields some manager owns that are neither signed, stamps, status, nor unchanged since `old`.

    Each manager's fieldsV1 trie is walked together with the object, the signed manifest and the
    old object (one step per node, never a path resolved from the root), and a subtree equal in
    the object and the signed manifest, or unsigned and unchanged since `old`, is not descended."""
    out: list[str] = []
    seen: set[FieldPath] = set()
    budget = [MAX_FIELD_NODES]
    for manager, fields in _entries(obj, ignore_managers):
        _walk(_Walk(manager, old is not None, seen, out, budget), fields, signed, obj,
              old if old is not None else MISSING)
        if len(out) > MAX_PROBLEMS:
            break
    return out


MAX_FIELD_NODES: Final = 50_000
MAX_FIELD_DEPTH: Final = 64


@dataclass
class _Walk:
    manager: str
    has_old: bool
    seen: set[FieldPath]
    out: list[str]
    budget: list[int]


def _walk(w: _Walk, fields: Mapping[str, Any], signed: Any, obj: Any, old: Any) -> None:
    todo: list[tuple[FieldPath, Mapping[str, Any], Any, Any, Any]] = [((), fields, signed, obj, old)]
    while todo:
        path, node, s, o, p = todo.pop()
        w.budget[0] -= len(node)
        if w.budget[0] < 0 or len(path) > MAX_FIELD_DEPTH:
            raise VerificationFailed(f"managedFields can't be read (more than {MAX_FIELD_NODES:,} nodes or "
                                     f"{MAX_FIELD_DEPTH} levels)")
        for key, child in node.items():
            element = _element(key)
            if element is None:
                continue
            here = (*path, element)
            leaf = element == SELF or not (isinstance(child, Mapping) and child)
            if _exempt(here, leaf):
                continue
            sub_s, sub_o, sub_p = (s, o, p) if element == SELF else (
                resolve(s, (element,)), resolve(o, (element,)), resolve(p, (element,)))
            if sub_o is MISSING:
                continue
            if not leaf:
                if not _settled(sub_s, sub_o, sub_p, w.has_old):
                    todo.append((here, child, sub_s, sub_o, sub_p))
            elif sub_s is MISSING and here not in w.seen:
                w.seen.add(here)
                _judge_leaf(w, here, sub_o, sub_p)


def _judge_leaf(w: _Walk, here: FieldPath, value: Any, before: Any) -> None:
    if w.has_old and _unchanged(here, before, value):
        return
    w.out.append(f"{format_path(here)} is not in the signed manifest (written by field manager "
                 f"{w.manager!r}; only controllers the TrustPolicy names may write unsigned fields)")


def _element(key: str) -> tuple[str, str] | None:
    if key == ".":
        return SELF
    kind, sep, rest = key.partition(":")
    return (kind, rest) if sep and kind in ("f", "k", "v", "i") else None


def _settled(signed: Any, obj: Any, old: Any, has_old: bool) -> bool:
    """Nothing to find below: the object's subtree is the signed one, or unsigned and as it was."""
    try:
        if signed is not MISSING:
            return same(signed, obj, where="a signed field")
        return has_old and old is not MISSING and same(old, obj, where="a field")
    except LimitExceeded:
        return False


def _entries(obj: Mapping[str, Any], ignore_managers: Collection[str]) -> list[tuple[str, Mapping[str, Any]]]:
    meta = obj.get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, Mapping) else None
    if not isinstance(entries, list):
        return []
    if len(entries) > MAX_ENTRIES:
        raise VerificationFailed(f"managedFields has {len(entries):,} entries (at most {MAX_ENTRIES} are read)")
    return [(str(e.get("manager") or "?"), e["fieldsV1"]) for e in entries
            if isinstance(e, dict) and e.get("manager") not in ignore_managers and isinstance(e.get("fieldsV1"), dict)]


def _exempt(path: FieldPath, leaf: bool) -> bool:
    """status, server-set metadata and the stamps, or the metadata/labels/annotations nodes themselves."""
    if path[-1] == SELF:
        path, leaf = path[:-1], True
    if not path or path[0] != ("f", "metadata"):
        return bool(path) and path[0] == ("f", "status")
    names = [name for _, name in path[1:3]]
    if not names:
        return leaf
    if names[0] in SERVER_METADATA or (names[0] in ("labels", "annotations") and len(names) == 1 and leaf):
        return True
    stamps = {"labels": STAMP_LABELS, "annotations": STAMP_ANNOTATIONS}.get(names[0])
    return stamps is not None and len(names) == 2 and names[1] in stamps


def _unchanged(path: FieldPath, before: Any, after: Any) -> bool:
    if before is MISSING:
        return False
    if path and (path[-1] == (".", "") or path[-1][0] == "v"):
        return True  # present before and now: a node owned as a node changes by appearing only
    try:
        return same(before, after, where="a field")
    except LimitExceeded:
        return False


def check_scale(parent: Mapping[str, Any], replicas: Any, policies: Sequence[TrustPolicy], verify: Verify, *,
                now: datetime, requester: str, tenant: str = "") -> list[str]:
    """A write of `parent`'s scale subresource setting `replicas`: refused when the signed manifest
    declares spec.replicas and this changes it, or when the replicas are unsigned and the requester
    is not a controller the policy trusts."""
    scope = judging(covering(policies, identity(parent)[2], {sync_of(parent)}, tenant))
    current = (parent.get("spec") or {}).get("replicas") if isinstance(parent.get("spec"), Mapping) else None
    if not scope or same(current, replicas):
        return []
    text = annotation_of(parent)
    declared = False
    if text is not None:
        try:
            signed = verify_signed(*decode_annotation(text), scope, verify, now)
            declared = "replicas" in (signed.manifest.get("spec") or {})
        except VerificationFailed:
            declared = False
    if declared:
        return ["spec.replicas is in the signed manifest; change it in Git and sign again"]
    if is_controller(requester, scope):
        return []
    return ["spec.replicas is not in the signed manifest; only controllers the TrustPolicy names "
            "(spec.controllers) may change it"]
