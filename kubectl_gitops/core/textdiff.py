"""What `kubectl gitops diff` shows of one object, decided purely: which fields, masked how.

Only the fields Git owns are compared. After a server-side dry-run apply as the applier, the
`kubectl-gitops` field manager's managedFields entry names exactly the fields the apply would
own; together with the fields it owns now (a field Git drops disappears from the first and is
in the second), that field set is cut out of the live object and out of the dry-run result and
the two cuts are compared. Defaults, status and other managers' fields never show: they are not
Git's.

The engine's bookkeeping annotations (revision, content digest, declared-fields record) change
with every write and say nothing a reader can act on, so they are left out of what is shown.
Secret values (`data` and `stringData`) are never shown: equal values read `***`, changed ones
`*** (before)` and `*** (after)`, so a changed key still shows as a change, as `kubectl diff` does.
"""

from __future__ import annotations

import base64
import difflib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import yaml

from kubectl_gitops.constants import ANNOTATION_DIGEST, ANNOTATION_FIELDS, ANNOTATION_REVISION
from kubectl_gitops.core.bounded import LimitExceeded
from kubectl_gitops.core.substitute import mask

JSON = dict[str, Any]
Trie = Mapping[str, Any]

MASK: Final = "***"
STAMPS: Final = frozenset({ANNOTATION_REVISION, ANNOTATION_DIGEST, ANNOTATION_FIELDS})
MAX_DEPTH: Final = 64
MAX_KEY: Final = 4096
"""Longest `k:`/`v:` element decoded (longer ones, which no real key needs, are skipped)."""
"""fieldsV1 nesting followed when cutting an object (the same bound as core/managed_fields.py)."""

# ------------------------------------------------------------------ field sets


def merge_tries(tries: Iterable[Trie]) -> JSON:
    """The union of fieldsV1 tries (a leaf on either side stays a leaf: owned as a whole)."""
    out: JSON = {}
    for trie in tries:
        _merge_into(out, trie, 0)
    return out


def with_stored_secret_keys(obj: Mapping[str, Any] | None, fields: JSON) -> JSON:
    """For a Secret, the keys applied as `stringData` also name `data`: the server stores them there
    (and never returns stringData), so that is where their change shows."""
    given = fields.get("f:stringData")
    if not is_secret(obj) or not isinstance(given, Mapping) or not given:
        return fields
    data = fields.get("f:data")
    if isinstance(data, Mapping) and not data and "f:data" in fields:
        return fields  # all of data owned already
    stored = dict(data) if isinstance(data, Mapping) else {}
    stored.update({key: {} for key in given if key.startswith("f:")})
    return {**fields, "f:data": stored}


def _merge_into(out: JSON, trie: Trie, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"fieldsV1 is nested deeper than {MAX_DEPTH} levels")
    for key, child in trie.items():
        if not isinstance(child, Mapping):
            continue
        if not child:
            out[key] = {}  # a leaf: owned as a whole, which covers any children the other side names
        elif key in out and not out[key]:
            continue  # already owned as a whole
        else:
            _merge_into(out.setdefault(key, {}), child, depth + 1)


def cut(obj: Any, trie: Trie, depth: int = 0) -> Any:
    """The part of `obj` that the fieldsV1 `trie` names (a leaf takes the whole value below it)."""
    if depth > MAX_DEPTH:
        raise LimitExceeded(f"an object is nested deeper than {MAX_DEPTH} levels")
    children = {k: v for k, v in trie.items() if k != "."}
    if not children:
        return obj
    if isinstance(obj, Mapping):
        out: JSON = {}
        for key, sub in children.items():
            kind, _, name = key.partition(":")
            if kind == "f" and name in obj and isinstance(sub, Mapping):
                out[name] = cut(obj[name], sub, depth + 1)
        return out
    if isinstance(obj, list):
        return [cut(item, sub, depth + 1) for item, sub in _items(obj, children)]
    return obj


def _items(items: list[Any], children: Mapping[str, Any]) -> list[tuple[Any, Trie]]:
    """(list item, its trie) for every item a `k:`, `v:` or `i:` element names, in list order."""
    keyed: list[tuple[JSON, Trie]] = []
    values: list[Any] = []
    indexes: dict[int, Trie] = {}
    for key, child in children.items():
        kind, _, rest = key.partition(":")
        sub: Trie = child if isinstance(child, Mapping) else {}
        if kind == "i" and rest.isdigit():
            indexes[int(rest)] = sub
            continue
        try:
            value = json.loads(rest) if len(rest) <= MAX_KEY else None
        except (ValueError, RecursionError):
            continue
        if kind == "k" and isinstance(value, dict):
            keyed.append((value, sub))
        elif kind == "v":
            values.append(value)
    out: list[tuple[Any, Trie]] = []
    for index, item in enumerate(items):
        if index in indexes:
            out.append((item, indexes[index]))
        elif item in values:
            out.append((item, {}))
        else:
            found = next((sub for key, sub in keyed if isinstance(item, Mapping)
                          and all(item.get(k) == v for k, v in key.items())), None)
            if found is not None:
                out.append((item, found))
    return out


# ------------------------------------------------------------------ what is shown


def shown(obj: Mapping[str, Any] | None) -> JSON | None:
    """`obj` without the engine's bookkeeping annotations (an emptied annotations map goes too)."""
    if obj is None:
        return None
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, Mapping):
        meta = dict(meta)
        notes = meta.get("annotations")
        if isinstance(notes, Mapping):
            kept = {k: v for k, v in notes.items() if k not in STAMPS}
            if kept:
                meta["annotations"] = kept
            else:
                meta.pop("annotations", None)
        out["metadata"] = meta
    return out


def is_secret(obj: Mapping[str, Any] | None) -> bool:
    return obj is not None and obj.get("apiVersion") == "v1" and obj.get("kind") == "Secret"


def mask_secrets(before: JSON | None, after: JSON | None) -> tuple[JSON | None, JSON | None]:
    """`before` and `after` with Secret values masked, a changed value marked on both sides."""
    if not (is_secret(before) or is_secret(after)):
        return before, after
    old, new = _values(before), _values(after)
    return _masked(before, old, new, "before"), _masked(after, new, old, "after")


def _values(obj: JSON | None) -> dict[str, Any]:
    """Every secret value by key: `data`, with `stringData` (stored base64) winning as on the server."""
    out: dict[str, Any] = dict((obj or {}).get("data") or {})
    for key, text in ((obj or {}).get("stringData") or {}).items():
        out[key] = base64.b64encode(str(text).encode()).decode()
    return out


def _masked(obj: JSON | None, mine: dict[str, Any], theirs: dict[str, Any], side: str) -> JSON | None:
    if obj is None:
        return None
    out = dict(obj)
    for field in ("data", "stringData"):
        values = out.get(field)
        if isinstance(values, Mapping):
            out[field] = {k: MASK if (k not in theirs or theirs.get(k) == mine.get(k)) else f"{MASK} ({side})"
                          for k in values}
    return out


def to_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False, allow_unicode=True) if obj is not None else ""


def unified(before: JSON | None, after: JSON | None, name: str, before_label: str, after_label: str,
            secrets: Sequence[str] = ()) -> str:
    """A unified diff of the YAML of `before` and `after` ("" when equal); None is /dev/null.

    `secrets`: values that must not appear (from Secrets substituted into the build): masked."""
    old = mask(to_yaml(before), secrets).splitlines(keepends=True)
    new = mask(to_yaml(after), secrets).splitlines(keepends=True)
    head_old = f"{name} ({before_label})" if before is not None else "/dev/null"
    head_new = f"{name} ({after_label})" if after is not None else "/dev/null"
    return "".join(_ended(difflib.unified_diff(old, new, head_old, head_new, n=3)))


def _ended(lines: Iterable[str]) -> Iterable[str]:
    for line in lines:
        yield line if line.endswith("\n") else line + "\n"


# ------------------------------------------------------------------ colour

_RED, _GREEN, _CYAN, _BOLD, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[1m", "\x1b[0m"


def colour(text: str) -> str:
    """ANSI colours for a unified diff: headers bold, hunks cyan, removals red, additions green."""
    out = []
    for line in text.splitlines(keepends=True):
        body, end = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        if body.startswith(("---", "+++")):
            out.append(f"{_BOLD}{body}{_RESET}{end}")
        elif body.startswith("@@"):
            out.append(f"{_CYAN}{body}{_RESET}{end}")
        elif body.startswith("-"):
            out.append(f"{_RED}{body}{_RESET}{end}")
        elif body.startswith("+"):
            out.append(f"{_GREEN}{body}{_RESET}{end}")
        else:
            out.append(line)
    return "".join(out)


def use_colour(mode: str, is_tty: bool, environ: Mapping[str, str]) -> bool:
    """`--color auto` colours a terminal unless NO_COLOR is set (no-color.org); always/never decide."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    return is_tty and not environ.get("NO_COLOR") and environ.get("TERM") != "dumb"
