"""Plan: decide which objects need a write, from the live objects alone.

Flux asks the API server for a server-side dry-run of every object to see whether it changed;
at thousands of objects that is thousands of requests per sync. Instead, the caller lists the
live objects (one request per kind and namespace) and this module decides locally: an object
is unchanged when everything Git says about it is already *contained* in the live object. Fields
the API server added (defaults, status, other managers' fields) do not matter; only what Git sets.

Containment has to forgive what the API server rewrites, or every sync would write everything:
- Secret `stringData` is stored as base64 `data`;
- resource quantities are canonicalised (`1000m` -> `1`, `1024Mi` -> `1Gi`), but only inside
  `resources` (and ResourceQuota `spec.hard`, LimitRange `spec.limits`): elsewhere "1000m" and "1"
  are different strings;
- a port given as a number and as its decimal string are the same port (only for `*port` keys);
- `null`, `{}` and `[]` in Git match an absent field (the server drops them);
- server-owned metadata (uid, resourceVersion, generation, creationTimestamp, managedFields) and
  `status` are never compared, and neither is our revision annotation: it changes with every
  commit, and comparing it would turn every unchanged object into a write. An unchanged object
  therefore keeps the revision that last changed it, which is the more useful fact anyway.
Zero values (`false`, `0`, `""`) are *not* forgiven: for pointer fields an absent value means a
non-zero default (`automountServiceAccountToken`), and a missed write is worse than a no-op write.

The desired objects passed in must be exactly what will be applied (stamped, namespaced).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any, Final

from kubectl_gitops import constants
from kubectl_gitops.core import declared
from kubectl_gitops.core.objects import IdentityKey, ObjectRef, ref_of

PathPart = str | int

_SERVER_METADATA = (
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_SERVER_METADATA_KEYS = frozenset(_SERVER_METADATA)
_NOT_COMPARED = frozenset({"apiVersion", "kind", "status"})
_STAMP_ANNOTATIONS = frozenset({constants.ANNOTATION_REVISION, constants.ANNOTATION_DIGEST,
                                constants.ANNOTATION_FIELDS})
_PORT_KEYS = frozenset({"port", "targetPort", "containerPort", "hostPort", "nodePort"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")

# --- quantities ------------------------------------------------------------------------------

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


def parse_quantity(value: Any) -> Fraction | None:
    """A Kubernetes resource quantity as an exact number, or None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return Fraction(value)
    match = _QUANTITY.match(value.strip()) if isinstance(value, str) else None
    if not match:
        return None
    amount = Fraction(Decimal(match.group(1)))  # the regex admits only plain decimals
    suffix = match.group(2) or ""
    if suffix in _BINARY:
        return amount * _BINARY[suffix]
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return amount * Fraction(10) ** int(suffix[1:])
    return amount * _DECIMAL[suffix]


# --- containment -----------------------------------------------------------------------------


def format_path(path: Iterable[PathPart]) -> str:
    """`("spec", "containers", 0, "image")` -> `spec.containers[0].image`; keys that are not plain
    identifiers are quoted: `metadata.labels["app.kubernetes.io/name"]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f'["{part}"]'
    return out


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("apiVersion") == "v1" and obj.get("kind") == "Secret"


def _canonical_base64(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return base64.b64encode(base64.b64decode("".join(value.split()), validate=True)).decode()
    except (binascii.Error, ValueError):
        return value  # not base64: let the comparison (and later the API server) see it as is


def _prepare_desired(desired: Mapping[str, Any]) -> dict[str, Any]:
    """`desired` without what we never compare, Secrets folded to their stored form.

    Copy-on-write: only the dicts that lose keys (the object, metadata, annotations) and a
    Secret's data are new; the rest is shared with `desired`, which the comparison only reads."""
    obj = {key: value for key, value in desired.items() if key not in _NOT_COMPARED}
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata = obj["metadata"] = {k: v for k, v in metadata.items() if k not in _SERVER_METADATA_KEYS}
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict) and constants.ANNOTATION_REVISION in annotations:
            metadata["annotations"] = {k: v for k, v in annotations.items() if k != constants.ANNOTATION_REVISION}
    if _is_secret(desired):
        data = {k: _canonical_base64(v) for k, v in (obj.get("data") or {}).items()}
        for key, text in (obj.pop("stringData", None) or {}).items():
            data[key] = base64.b64encode(str(text).encode()).decode()  # stringData wins, as on the server
        if data:
            obj["data"] = data
    return obj


def _quantity_scope(kind: str, path: tuple[PathPart, ...], key: PathPart) -> bool:
    if key == "resources":
        return True
    return path == ("spec",) and (kind, key) in (("ResourceQuota", "hard"), ("LimitRange", "limits"))


def _scalars_equal(want: Any, have: Any, key: PathPart | None, quantities: bool) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have  # True == 1 in Python; not in JSON
    if want == have and isinstance(want, str) == isinstance(have, str):
        return True
    if quantities:
        want_q, have_q = parse_quantity(want), parse_quantity(have)
        if want_q is not None and want_q == have_q:
            return True
    if key in _PORT_KEYS:
        pair = (want, have) if isinstance(want, int) else (have, want)
        return isinstance(pair[0], int) and isinstance(pair[1], str) and pair[1] == str(pair[0])
    return False


@dataclass
class _Differ:
    kind: str
    paths: list[str] = field(default_factory=list)

    def compare(self, want: Any, have: Any, path: tuple[PathPart, ...], quantities: bool) -> None:
        if want is None:
            return  # null in Git: no opinion (the server drops it)
        if isinstance(want, dict):
            self._mapping(want, have, path, quantities)
        elif isinstance(want, list):
            self._sequence(want, have, path, quantities)
        elif not _scalars_equal(want, have, path[-1] if path else None, quantities):
            self.paths.append(format_path(path))

    def _mapping(self, want: dict[str, Any], have: Any, path: tuple[PathPart, ...], quantities: bool) -> None:
        if not isinstance(have, dict):
            if want or have is not None:
                self.paths.append(format_path(path))
            return
        for key, value in want.items():
            if key in have:
                scope = quantities or _quantity_scope(self.kind, path, key)
                self.compare(value, have[key], (*path, key), scope)
            elif value not in (None, {}, []):
                self.paths.append(format_path((*path, key)))

    def _sequence(self, want: list[Any], have: Any, path: tuple[PathPart, ...], quantities: bool) -> None:
        if not isinstance(have, list) or len(have) != len(want):
            if want or have is not None:
                self.paths.append(format_path(path))
            return
        for index, (item, live_item) in enumerate(zip(want, have, strict=True)):
            self.compare(item, live_item, (*path, index), quantities)


def diff_paths(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """Paths (in desired's order) where `desired` is not contained in `live`; [] = no write needed."""
    differ = _Differ(kind=str(desired.get("kind", "")))
    differ.compare(_prepare_desired(desired), dict(live), (), False)
    return differ.paths


# --- change sets -----------------------------------------------------------------------------


class Verb(StrEnum):
    CREATE = "create"
    CONFIGURE = "configure"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Action:
    """What to do with one desired object, and why (`paths` for configure)."""

    ref: ObjectRef
    verb: Verb
    paths: tuple[str, ...] = ()
    obj: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def needs_write(self) -> bool:
        return self.verb is not Verb.UNCHANGED


@dataclass(frozen=True)
class ChangeSet:
    """One Action per desired object, in the order the objects were given."""

    actions: tuple[Action, ...]

    def with_verb(self, verb: Verb) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.verb is verb)

    @property
    def writes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.needs_write)

    def counts(self) -> dict[str, int]:
        return {verb.value: len(self.with_verb(verb)) for verb in Verb}


def plan(desired: Iterable[dict[str, Any]], live: Mapping[ObjectRef, dict[str, Any]]) -> ChangeSet:
    """Compare each desired object with its live counterpart, found by identity (the version in the
    live map's keys does not matter). No live object -> create; differences in values, or fields
    of Git's that our field manager no longer owns -> configure."""
    by_key: dict[IdentityKey, dict[str, Any]] = {ref.key: obj for ref, obj in live.items()}
    actions = []
    for obj in desired:
        ref = ref_of(obj)
        current = by_key.get(ref.key)
        if current is None:
            actions.append(Action(ref, Verb.CREATE, obj=obj))
            continue
        paths = compare(obj, current)
        actions.append(Action(ref, Verb.CONFIGURE if paths else Verb.UNCHANGED, paths, obj))
    return ChangeSet(tuple(actions))


OWNERSHIP: Final = "ownership of "
"""Prefix of the paths a plan gives for fields whose value is Git's but whose owner is not."""
TOO_DEEP: Final = "(nested too deeply to compare: applied as is)"


def compare(desired: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[str, ...]:
    """Why `desired` needs a write over `live` (no reason = unchanged).

    Values first; only when they all match, ownership: an allowed edit (suspended Sync, warn
    mode, break-glass) moves fields to another manager, and a sync that compared values alone
    would never take them back. A server-side apply with force does, and writes nothing else.
    A comparison too deep for the interpreter is not a crash: the object is applied and the
    API server judges it."""
    try:
        paths = diff_paths(desired, live)
        if paths:
            return tuple(paths)
        lost = declared.ownership_lost(desired, live)
    except RecursionError:
        return (TOO_DEEP,)
    return tuple(OWNERSHIP + format_path(p) for p in lost[:20])


# --- ownership -------------------------------------------------------------------------------


def digest(obj: Mapping[str, Any]) -> str:
    """A short, stable digest of an object's Git content (canonical JSON, stamps excluded).

    `diff_paths` can only see fields that are in Git; a field *removed* from Git still sits in
    the live object and looks "contained". The digest annotation changes whenever the object's
    Git content does, so such a change becomes a write, and server-side apply removes the field.

    The value is stored on live objects: the canonical text must never change (sorted keys,
    compact separators, `str` for non-JSON values), or every object would be rewritten once.
    Only the dicts on the way to the stamps are copied, not the object.
    """
    clean = dict(obj)
    metadata = clean.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    if isinstance(annotations, dict) and not _STAMP_ANNOTATIONS.isdisjoint(annotations):
        kept = {k: v for k, v in annotations.items() if k not in _STAMP_ANNOTATIONS}
        clean["metadata"] = {**metadata, "annotations": kept}
    text = json.dumps(clean, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:20]


def _copy_tree(value: Any) -> Any:
    """A deep copy of a JSON-shaped tree; several times faster than `copy.deepcopy`, which pays
    for a memo and a type dispatch at every node. Anything else is left to `copy.deepcopy`."""
    cls = value.__class__
    if cls is dict:
        return {key: _copy_tree(item) for key, item in value.items()}
    if cls is list:
        return [_copy_tree(item) for item in value]
    if cls is str or cls is int or cls is float or cls is bool or value is None:
        return value
    return copy.deepcopy(value)


def stamp(obj: Mapping[str, Any], sync_name: str, sync_namespace: str, revision: str) -> dict[str, Any]:
    """A deep copy of `obj` carrying the ownership labels, the revision and the content digest."""
    stamped: dict[str, Any] = {key: _copy_tree(value) for key, value in obj.items()}
    metadata = stamped.setdefault("metadata", {})
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    labels[constants.LABEL_SYNC] = sync_name
    labels[constants.LABEL_SYNC_NAMESPACE] = sync_namespace
    metadata["labels"], metadata["annotations"] = labels, annotations
    annotations[constants.ANNOTATION_DIGEST] = digest(stamped)
    annotations[constants.ANNOTATION_REVISION] = revision
    # What Git declares, so the guard keeps protecting fields whose ownership moved (declared.py).
    annotations[constants.ANNOTATION_FIELDS] = declared.encode(declared.with_declared(stamped))
    return stamped


class PruneVerb(StrEnum):
    DELETE = "delete"
    """Still ours and no longer in Git."""
    GONE = "gone"
    """Already deleted: leaves the inventory."""
    SKIP = "skip"
    """Not ours any more, or Git opted it out of pruning: leaves the inventory, stays in the cluster."""
    WAIT = "wait"
    """Being deleted but held (finalizers): stays in the inventory until it is gone."""


def prune_decision(
    stale_ref: ObjectRef, live_obj: Mapping[str, Any] | None, sync_name: str, sync_namespace: str
) -> tuple[PruneVerb, str]:
    """What to do with a stale object, and why (for the record).

    Delete only when the live object still says it belongs to this Sync: someone may have adopted
    it elsewhere (relabelled it) since we applied it, and deleting their object would be a disaster.
    `prune: disabled` counts only when Git set it (declared.declared_by_git): anyone who can
    annotate the live object could otherwise keep an object Git removed alive for ever."""
    if live_obj is None:
        return PruneVerb.GONE, f"{stale_ref.display} is already gone (or no longer carries this Sync's labels)"
    metadata = live_obj.get("metadata") or {}
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    owner = (labels.get(constants.LABEL_SYNC), labels.get(constants.LABEL_SYNC_NAMESPACE))
    if owner != (sync_name, sync_namespace):
        return PruneVerb.SKIP, (
            f"{stale_ref.display} is not owned by Sync {sync_namespace}/{sync_name} "
            f"(its labels say {owner[1] or '?'}/{owner[0] or '?'})"
        )
    if metadata.get("deletionTimestamp"):
        return PruneVerb.WAIT, f"{stale_ref.display} is being deleted; {waiting_on(live_obj)}"
    why = f"{stale_ref.display} is no longer in Git"
    if annotations.get(constants.ANNOTATION_PRUNE) == constants.PRUNE_DISABLED:
        note = f"{constants.ANNOTATION_PRUNE}: {constants.PRUNE_DISABLED}"
        if declared.declared_by_git(live_obj, ("metadata", "annotations", constants.ANNOTATION_PRUNE)):
            return PruneVerb.SKIP, f"{stale_ref.display} has {note} (from Git)"
        why += f" (its {note} was not set by Git, so it does not count)"
    return PruneVerb.DELETE, why


def waiting_on(obj: Mapping[str, Any]) -> str:
    """What a deleted object still waits for: `waiting on finalizers a, b`."""
    finalizers = [str(f) for f in (obj.get("metadata") or {}).get("finalizers") or []]
    if finalizers:
        return f"waiting on finalizers {', '.join(finalizers)}"
    return "waiting for its deletion to finish"


def held_by_finalizers(answer: Mapping[str, Any] | None) -> bool:
    """Is the object in a DELETE answer still there, held (finalizers, a grace period)?"""
    metadata = (answer or {}).get("metadata") or {}
    if not isinstance(metadata, Mapping) or not metadata.get("deletionTimestamp"):
        return False
    return bool(metadata.get("finalizers")) or bool(metadata.get("deletionGracePeriodSeconds"))


def prunable(
    stale_ref: ObjectRef, live_obj: Mapping[str, Any] | None, sync_name: str, sync_namespace: str
) -> tuple[bool, str]:
    """May this stale object be deleted now? (answer, reason for the record); see prune_decision."""
    verb, why = prune_decision(stale_ref, live_obj, sync_name, sync_namespace)
    return verb is PruneVerb.DELETE, why
