"""The fields Git declares for an object, recorded by the applier at apply time (pure).

Field ownership moves whenever an edit is allowed (a suspended Sync, warn or off mode,
break-glass, a webhook outage): the editor's field manager takes the field over, and the
`kubectl-gitops` entry in managedFields stops listing it. If the guard judged only what that
manager owns *right now*, the field would be unprotected from then on, and a sync that sees a
value equal to Git would write nothing and never take it back.

So the applier records what Git declares in an annotation on every object it applies
(`kubectl-gitops.dev/fields`): the map keys of the manifest as a trie, with lists, nulls and
empty values as leaves. It is computed from the manifest alone, without schema knowledge, which
is why lists are leaves: how a list is keyed is known only to the API server. Two users:

* the drift guard (`lost_paths` + `changed_lost`): a declared path that our manager no longer
  owns is still Git's, and a change of its value by anyone but the applier is drift;
* the engine's plan (`ownership_lost`): an object whose declared paths are not all owned by our
  manager needs a write even when its values equal Git's, so the apply takes ownership back.

A declared path is owned when our manager owns a field at or below it, or owns an atomic node
(a leaf in fieldsV1, such as a LabelSelector) above it. The recorded trie is bounded: past
`MAX_BYTES` it is coarsened level by level (a coarser path protects a whole subtree, and is never
wrong about what Git declares); decoding is bounded in size and depth and returns None for
anything malformed, so a hostile annotation can never crash or stall its reader.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from kubectl_gitops.constants import (
    ANNOTATION_DIGEST,
    ANNOTATION_FIELDS,
    ANNOTATION_REVISION,
    FIELD_MANAGER,
    LABEL_SYNC,
    LABEL_SYNC_NAMESPACE,
)
from kubectl_gitops.core.managed_fields import MISSING, format_path

Trie = dict[str, Any]
KeyPath = tuple[str, ...]

MAX_BYTES: Final = 16 * 1024
"""The recorded annotation's largest size; bigger tries are coarsened (the total of an object's
annotations is limited to 256 KiB by the API server)."""
MAX_DEPTH: Final = 32
"""Deeper manifests are recorded down to this depth (the rest is covered by the coarse path)."""

_IDENTITY: Final = frozenset({"apiVersion", "kind", "status"})
_META_IDENTITY: Final = frozenset({"name", "namespace", "generateName", "uid", "resourceVersion",
                                   "creationTimestamp", "managedFields", "generation"})


# ------------------------------------------------------------------ recording


def declared_trie(manifest: Mapping[str, Any]) -> Trie:
    """The map keys `manifest` declares, as a trie (identity and status excluded)."""
    out: Trie = {}
    for key, value in manifest.items():
        if key in _IDENTITY or value is None:
            continue
        if key == "metadata" and isinstance(value, Mapping):
            meta = {k: _without_stamps(k, v) for k, v in value.items() if k not in _META_IDENTITY}
            sub = _trie(meta, 1)
            if sub:
                out[key] = sub
            continue
        out[key] = _trie(value, 1)
    return out


_STAMPS: Final = frozenset({LABEL_SYNC, LABEL_SYNC_NAMESPACE, ANNOTATION_REVISION, ANNOTATION_DIGEST})
"""The engine's own bookkeeping on every object: never recorded (it is on every object, so it
would only make each one bigger; the guard protects the ownership labels by a rule of their own,
and a changed revision or digest is rewritten by the next sync)."""


def _without_stamps(key: str, value: Any) -> Any:
    if key in ("labels", "annotations") and isinstance(value, Mapping) and not _STAMPS.isdisjoint(value):
        return {k: v for k, v in value.items() if k not in _STAMPS}
    return value


def _trie(value: Any, depth: int) -> Trie:
    if not isinstance(value, Mapping) or depth >= MAX_DEPTH:
        return {}
    out: Trie = {}
    for key, child in value.items():
        if child is None:
            continue
        # `type(...) is` first: manifests are plain dicts and scalars, and the ABC check is slow.
        kind = type(child)
        nested = kind is dict or (kind not in _LEAVES and isinstance(child, Mapping))
        out[key if type(key) is str else str(key)] = _trie(child, depth + 1) if nested else {}
    return out


_LEAVES: Final = frozenset({str, int, float, bool, list})


def with_declared(manifest: Mapping[str, Any]) -> Trie:
    """The trie of `manifest` once the fields annotation itself is added to it."""
    trie = declared_trie(manifest)
    meta = trie.setdefault("metadata", {})
    meta.setdefault("annotations", {})[ANNOTATION_FIELDS] = {}
    return trie


def encode(trie: Trie) -> str:
    """Compact JSON of `trie`, coarsened from the leaves up until it fits in MAX_BYTES."""
    text = _dumps(trie)
    if len(text) <= MAX_BYTES:
        return text  # nearly always: no need to know the depth
    depth = _depth(trie)
    while len(text) > MAX_BYTES and depth > 1:
        depth -= 1
        text = _dumps(_cut(trie, depth))
    return text if len(text) <= MAX_BYTES else "{}"


def _dumps(trie: Trie) -> str:
    return json.dumps(trie, sort_keys=True, separators=(",", ":"))


def _depth(trie: Trie) -> int:
    return 1 + max((_depth(v) for v in trie.values()), default=0) if trie else 0


def _cut(trie: Trie, depth: int) -> Trie:
    return {k: (_cut(v, depth - 1) if depth > 1 else {}) for k, v in trie.items()}


# ------------------------------------------------------------------ reading


def decode(text: object) -> Trie | None:
    """The trie recorded in an annotation value, or None when absent, too big, too deep or malformed."""
    if not isinstance(text, str) or not text or len(text) > MAX_BYTES:
        return None
    if _nesting(text) > MAX_DEPTH + 1:
        return None  # checked before json.loads: a deep value must not cost a RecursionError
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if _is_trie(value, 0) else None


def _nesting(text: str) -> int:
    """An upper bound of the JSON nesting of `text` (brackets inside strings counted too)."""
    depth = deepest = 0
    for char in text:
        if char in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "}]":
            depth -= 1
    return deepest


def _is_trie(value: Any, depth: int) -> bool:
    if not isinstance(value, dict) or depth > MAX_DEPTH:
        return False
    return all(isinstance(k, str) and _is_trie(v, depth + 1) for k, v in value.items())


def recorded(obj: Mapping[str, Any] | None) -> Trie | None:
    """The trie the applier recorded on a live object, or None."""
    meta = (obj or {}).get("metadata")
    notes = meta.get("annotations") if isinstance(meta, Mapping) else None
    return decode(notes.get(ANNOTATION_FIELDS)) if isinstance(notes, Mapping) else None


def leaf_paths(trie: Trie) -> list[KeyPath]:
    """Every leaf of `trie` as a tuple of keys (iterative: depth is bounded but not trusted)."""
    out: list[KeyPath] = []
    todo: list[tuple[KeyPath, Trie]] = [((), trie)]
    while todo:
        prefix, node = todo.pop()
        for key, child in node.items():
            path = (*prefix, key)
            if child:
                todo.append((path, child))
            else:
                out.append(path)
    return sorted(out)


# ------------------------------------------------------------------ judging


def lost_paths(trie: Trie, obj: Mapping[str, Any] | None, manager: str = FIELD_MANAGER) -> list[KeyPath]:
    """Declared paths that `manager` owns nothing at, below, or (atomically) above, in `obj`.

    Walks the declared trie and `manager`'s fieldsV1 tries side by side, iteratively and only
    along declared keys: the cost is the size of the (bounded) declared trie, and a hostile
    fieldsV1 nested thousands deep is never descended into."""
    roots = _fields_of(obj, manager)
    lost: list[KeyPath] = []
    todo: list[tuple[KeyPath, Trie, list[Mapping[str, Any]]]] = [((), trie, roots)]
    while todo:
        prefix, node, owners = todo.pop()
        for key, child in node.items():
            path = (*prefix, key)
            below, atomic = _owned_under(owners, key)
            if atomic:
                continue  # owned as a whole: covers everything below it
            if not below:
                rests = leaf_paths(child) if child else []
                lost += [(*path, *rest) for rest in rests] if rests else [path]
            elif child and isinstance(child, dict):
                todo.append((path, child, below))
    return sorted(lost)


def _owned_under(owners: list[Mapping[str, Any]], key: str) -> tuple[list[Mapping[str, Any]], bool]:
    """(the non-empty fieldsV1 nodes of `f:key` in `owners`, whether one owns `key` as a leaf)."""
    below: list[Mapping[str, Any]] = []
    for fields in owners:
        sub = fields.get(f"f:{key}", MISSING)
        if sub is MISSING:
            continue
        if not isinstance(sub, Mapping) or not sub:
            return [], True
        below.append(sub)
    return below, False


def _fields_of(obj: Mapping[str, Any] | None, manager: str) -> list[Mapping[str, Any]]:
    """The fieldsV1 tries `manager` applied on the main resource of `obj` (not read further here)."""
    meta = (obj or {}).get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, Mapping) else None
    if not isinstance(entries, list):
        return []
    return [e["fieldsV1"] for e in entries
            if isinstance(e, dict) and e.get("manager") == manager and e.get("operation") == "Apply"
            and not e.get("subresource") and e.get("fieldsType", "FieldsV1") == "FieldsV1"
            and isinstance(e.get("fieldsV1"), Mapping)]


def owns(obj: Mapping[str, Any] | None, path: KeyPath, manager: str = FIELD_MANAGER) -> bool:
    """Does `manager` own the field at `path` (or an atomic node above it) on `obj`?"""
    trie: Trie = {}
    node = trie
    for key in path:
        node = node.setdefault(key, {})
    return bool(path) and not lost_paths(trie, obj, manager)


def declares(trie: Trie | None, path: KeyPath) -> bool:
    """Does the recorded `trie` declare `path` (or a coarsened node above it)?"""
    node = trie
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
        if not node:
            return True
    return trie is not None


def owns_key(obj: Mapping[str, Any] | None, path: KeyPath, manager: str = FIELD_MANAGER) -> bool:
    """Does `manager` own exactly the map key at `path` (no atomic parent counted)? For keys of
    granular maps (labels, annotations): an empty map applied once is recorded as a leaf, which
    must not make every key added to it later ours."""
    for fields in _fields_of(obj, manager):
        node: Any = fields
        for key in path:
            node = node.get(f"f:{key}", MISSING) if isinstance(node, Mapping) else MISSING
        if node is not MISSING:
            return True
    return False


def declared_by_git(obj: Mapping[str, Any] | None, path: KeyPath, manager: str = FIELD_MANAGER) -> bool:
    """Did Git set the map key at `path` on `obj`? Yes when our manager owns it, or when the
    declared record lists it and our manager owns the record itself (so no one else wrote it)."""
    if owns_key(obj, path, manager):
        return True
    record_path = ("metadata", "annotations", ANNOTATION_FIELDS)
    return owns_key(obj, record_path, manager) and declares(recorded(obj), path)


def ownership_lost(desired: Mapping[str, Any], live: Mapping[str, Any] | None,
                   manager: str = FIELD_MANAGER) -> list[KeyPath]:
    """Declared paths of `desired` that `manager` no longer owns on `live` (the plan re-applies)."""
    if live is None:
        return []
    trie = _declared_of(desired)
    owners = _fields_of(live, manager)
    if len(owners) == 1 and _all_owned(trie, owners[0]):
        return []  # the common case, answered without building a single path
    # An empty list or map in Git may leave no owner at all (the API server records none for an
    # empty keyed list such as a webhook configuration's `webhooks: []`); the plan forgives it
    # as "absent" too, so it is not a field to take back.
    return [p for p in lost_paths(trie, live, manager) if value_at(desired, p) not in ([], {})]


def _all_owned(trie: Trie, fields: Mapping[str, Any]) -> bool:
    """Does the one fieldsV1 trie `fields` own every declared path? (lost_paths' rule, one owner,
    no paths built: this runs for every unchanged object of every sync.)"""
    todo: list[tuple[Trie, Mapping[str, Any]]] = [(trie, fields)]
    while todo:
        node, owned = todo.pop()
        for key, child in node.items():
            sub = owned.get("f:" + key)
            if sub is None:
                return False
            if child and sub and type(sub) is dict:
                todo.append((child, sub))
    return True


def _declared_of(desired: Mapping[str, Any]) -> Trie:
    """The trie of a desired object: the record `stamp` put on it (our own text, decoded by the C
    parser: several times cheaper than walking the manifest again), else computed."""
    meta = desired.get("metadata")
    notes = meta.get("annotations") if isinstance(meta, Mapping) else None
    text = notes.get(ANNOTATION_FIELDS) if isinstance(notes, Mapping) else None
    if isinstance(text, str):
        try:
            trie = json.loads(text)
        except (ValueError, RecursionError):
            trie = None
        if isinstance(trie, dict):
            return trie
    return with_declared(desired)


def value_at(obj: Any, path: KeyPath) -> Any:
    """The value at a map-key path, or MISSING."""
    current = obj
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return MISSING
        current = current[key]
    return current


def changed_lost(old: Mapping[str, Any], new: Mapping[str, Any] | None, manager: str = FIELD_MANAGER) -> list[str]:
    """Rendered declared-but-unowned paths of `old` whose value `new` changes (the guard's extra rule)."""
    if new is None:
        return []
    trie = recorded(old)
    if trie is None:
        return []
    changed = []
    for path in lost_paths(trie, old, manager):
        before, after = value_at(old, path), value_at(new, path)
        if before != after or type(before) is not type(after):  # 1 == True in Python; not in JSON
            changed.append(format_path(tuple(("f", key) for key in path)))
    return changed
