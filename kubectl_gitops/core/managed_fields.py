"""Which fields a field manager owns, read from `metadata.managedFields` (pure).

Server-side apply records ownership as a `fieldsV1` trie: `f:<name>` is a map/struct field,
`k:<json>` a list item identified by its key fields, `v:<json>` a member of a set-list, `i:<n>`
a list index, and `.` marks that the node itself (not only its children) is owned. The drift
guard needs two things from it: the set of paths Git owns, and which of those a request changes.

A path is a tuple of `(prefix, rest)` elements exactly as in `fieldsV1` (hashable, no lossy
rendering), with a trailing `(".", "")` element for a node that is owned *as a node*: such a path
changes only when the node appears or disappears, so another manager's field inside a Git-owned
list item (an `env` var added by `kubectl edit` in a Git-owned container) is not drift, while
removing the container is.

Everything here reads objects a client wrote, so it is bounded (`LimitExceeded` names what and
where): managedFields entries, fieldsV1 nodes and depth, list items walked, value comparison. No
walk recurses, so nesting costs no RecursionError.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from kubectl_gitops.constants import FIELD_MANAGER
from kubectl_gitops.core.bounded import LimitExceeded, contains, same

JSON = dict[str, Any]
PathElement = tuple[str, str]
FieldPath = tuple[PathElement, ...]

SELF: Final[PathElement] = (".", "")

MAX_ENTRIES: Final = 256
"""managedFields entries read per object (one per manager, operation and subresource: real
objects have a handful; the API server caps Update entries at 10)."""
MAX_NODES: Final = 50_000
"""fieldsV1 nodes decoded per object and manager (a Deployment has ~60, a 1 MiB ConfigMap ~10,000)."""
MAX_DEPTH: Final = 64
"""fieldsV1 nesting read (a Deployment's deepest owned field is ~12 levels down)."""
MAX_LIST_ITEMS: Final = 10_000
"""List items searched to resolve one `k:`/`v:` path element."""


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Final = _Missing()
"""What `resolve` returns for a path absent from an object (distinct from a JSON null)."""


# ------------------------------------------------------------------ decoding


def decode_fields(fields_v1: Mapping[str, Any], *, budget: list[int] | None = None,
                  where: str = "fieldsV1") -> frozenset[FieldPath]:
    """The owned paths in one `fieldsV1` trie: its leaves, and every node that carries `.`.

    Iterative; raises LimitExceeded past MAX_DEPTH levels or MAX_NODES nodes (`budget`, a
    one-element list, is shared between the entries of one object).
    """
    left = budget if budget is not None else [MAX_NODES]
    out: set[FieldPath] = set()
    todo: list[tuple[Mapping[str, Any], FieldPath]] = [(fields_v1, ())]
    while todo:
        node, prefix = todo.pop()
        left[0] -= len(node)
        if left[0] < 0:
            raise LimitExceeded(f"{where} has more than {MAX_NODES:,} nodes")
        if len(prefix) >= MAX_DEPTH:
            raise LimitExceeded(f"{where} is nested deeper than {MAX_DEPTH} levels")
        for key, child in node.items():
            if key == ".":
                out.add((*prefix, SELF))
                continue
            kind, sep, rest = key.partition(":")
            if not sep or kind not in ("f", "k", "v", "i"):
                continue  # unknown element kind: nothing we can resolve, so nothing we claim
            path = (*prefix, (kind, rest))
            if isinstance(child, Mapping) and child:
                todo.append((child, path))
            else:
                out.add(path)
    return frozenset(out)


def owned_paths(obj: Mapping[str, Any] | None, manager: str = FIELD_MANAGER,
                operation: str = "Apply") -> frozenset[FieldPath]:
    """Paths that `manager` owns through `operation` on the main resource of `obj`.

    Entries recorded through a subresource (status, scale) are skipped: the applier never writes
    subresources, and a status entry under our name must not make status Git's.
    """
    paths: set[FieldPath] = set()
    budget = [MAX_NODES]
    where = f"metadata.managedFields[manager={manager}].fieldsV1"
    for entry in manager_entries(obj, manager, operation):
        fields = entry.get("fieldsV1")
        if isinstance(fields, Mapping):
            paths |= decode_fields(fields, budget=budget, where=where)
    return frozenset(paths)


def manager_entries(obj: Mapping[str, Any] | None, manager: str = FIELD_MANAGER,
                    operation: str = "Apply") -> list[JSON]:
    """The managedFields entries of `manager`/`operation` on the main resource, in order."""
    meta = (obj or {}).get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, Mapping) else None
    if not isinstance(entries, list):
        return []
    if len(entries) > MAX_ENTRIES:
        raise LimitExceeded(f"metadata.managedFields has {len(entries):,} entries (at most {MAX_ENTRIES} are read)")
    return [e for e in entries if isinstance(e, dict) and e.get("manager") == manager
            and e.get("operation") == operation and not e.get("subresource")
            and e.get("fieldsType", "FieldsV1") == "FieldsV1"]


# ------------------------------------------------------------------ resolving


def resolve(obj: Any, path: FieldPath) -> Any:
    """The value at `path` in `obj`, or MISSING. A trailing SELF resolves to the node itself."""
    current = obj
    for kind, rest in path:
        if kind == ".":
            break
        current = _step(current, kind, rest)
        if current is MISSING:
            return MISSING
    return current


def _step(current: Any, kind: str, rest: str) -> Any:
    if kind == "f":
        # `type(...) is dict` first: decoded JSON is always a dict, and the ABC check is slow.
        return current.get(rest, MISSING) if type(current) is dict or isinstance(current, Mapping) else MISSING
    if not isinstance(current, list):
        return MISSING
    if len(current) > MAX_LIST_ITEMS:
        raise LimitExceeded(f"a list has {len(current):,} items (at most {MAX_LIST_ITEMS:,} are searched)")
    if kind == "i":
        return current[int(rest)] if rest.isdigit() and int(rest) < len(current) else MISSING
    wanted = _loads(rest)
    if kind == "v":
        return wanted if wanted is not MISSING and contains(current, wanted, where=f"v:{rest[:40]}") else MISSING
    return _keyed_item(current, wanted)


def _keyed_item(items: list[Any], wanted: Any) -> Any:
    """k: the first list item whose key fields all match `wanted`."""
    if not isinstance(wanted, dict):
        return MISSING
    for item in items:
        if isinstance(item, Mapping) and all(_same(item.get(k, MISSING), v) for k, v in wanted.items()):
            return item
    return MISSING


MAX_CACHED_KEY: Final = 256
"""Longer `k:`/`v:` keys are decoded each time: the cache must stay small whatever objects hold."""


def _loads(text: str) -> Any:
    """A `k:`/`v:` key decoded; the result is shared between calls and must not be mutated."""
    return _loads_cached(text) if len(text) <= MAX_CACHED_KEY else _loads_uncached(text)


def _loads_uncached(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return MISSING
    except RecursionError:
        raise LimitExceeded(f"a fieldsV1 key is nested too deeply ({text[:40]}…)") from None


# Every path through a keyed list decodes its key again (`{"name":"web"}` once per field of the
# container); the same few keys recur across reviews too.
_loads_cached: Final = functools.lru_cache(maxsize=1024)(_loads_uncached)


def changed_owned(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None,
                  paths: Iterable[FieldPath]) -> list[str]:
    """Rendered owned paths whose value differs between `old` and `new` (removal counts).

    A node owned as a node (trailing SELF) and a set member (`v:`) change only by appearing or
    disappearing. Paths under one already reported are not repeated, so removing a container
    reports the container, not each of its fields.
    """
    changed: list[FieldPath] = []
    reported: set[FieldPath] = set()
    for path in sorted(paths, key=_sort_key):
        if any(path[:n] in reported for n in range(1, len(path) + 1)):
            continue
        before, after = resolve(old, path), resolve(new, path)
        if (before is MISSING) != (after is MISSING):
            differs = True
        elif before is MISSING or _is_presence_path(path):
            differs = False
        else:
            differs = not _same(before, after)
        if differs:
            changed.append(path)
            reported.add(_node(path))
    return [format_path(p) for p in changed]


def _node(path: FieldPath) -> FieldPath:
    return path[:-1] if path and path[-1] == SELF else path


def _is_presence_path(path: FieldPath) -> bool:
    return bool(path) and (path[-1] == SELF or path[-1][0] == "v")


def _same(a: Any, b: Any) -> bool:
    # JSON equality, but 1 == True in Python; a bool flipping to an int is a change.
    if a is MISSING or b is MISSING:
        return a is b
    return same(a, b, where="an owned value")


def _sort_key(path: FieldPath) -> tuple[tuple[int, str, str], ...]:
    # Parents before children (SELF sorts first), then document-ish order by name.
    return tuple((0 if e == SELF else 1, e[0], e[1]) for e in path)


# ------------------------------------------------------------------ rendering

_PLAIN: Final = re.compile(r"^[A-Za-z0-9_-]+$")


def format_path(path: FieldPath) -> str:
    """A readable path: spec.template.spec.containers[name=web].image, labels["a.b/c"], ...[="x"]."""
    out = ""
    for kind, rest in path:
        if kind == ".":
            continue
        if kind == "f":
            out += f".{rest}" if _PLAIN.match(rest) else f"[{json.dumps(rest)}]"
        elif kind == "i":
            out += f"[{rest}]"
        elif kind == "v":
            out += f"[={rest}]"
        else:
            out += f"[{_format_key(rest)}]"
    return out.lstrip(".")


def _format_key(rest: str) -> str:
    key = _loads(rest)
    if not isinstance(key, dict):
        return rest
    return ",".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in key.items())
