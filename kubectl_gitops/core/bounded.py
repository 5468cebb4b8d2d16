"""Hostile JSON, read within bounds (pure): partial decoding, iterative skipping and comparison.

Clients can store arbitrarily nested JSON where the API server keeps no schema (a managedFields
entry's `fieldsV1`, custom resources that preserve unknown fields), and the API server hands it to
the webhook verbatim. Python's decoder gives up past ~1,000 levels with a RecursionError, and so do
Python's own `==` and any recursive walk. A guard that fails there answers an HTTP error, which a
`failurePolicy: Ignore` webhook configuration turns into "allowed": the deep value would unlock
its object. So:

* `decode_partial` decodes a body whose full decoding failed on nesting, level by level down to
  `SALVAGE_DEPTH`, and replaces each value it can't decode by None, returning their paths
  (`request.oldObject.metadata.managedFields[1].fieldsV1`). The API server writes `request.uid`,
  the operation, the user and each object's labels long before any deep value, so the guard still
  knows whom to answer, who asks, and whether the object is managed.
* `skip_value` steps over a value without recursion; `same` compares two JSON values iteratively
  with a node and depth budget; both are linear in the input.
* `LimitExceeded` names the bound that was hit and where; the guard turns it into a refusal with
  that message (for managed objects only), never into a crash.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from kubectl_gitops.core.errors import GitOpsError

SALVAGE_DEPTH: Final = 8
"""How many levels `decode_partial` walks member by member before giving a value up as unreadable
(request=1, oldObject=2, metadata=3, managedFields=4, an entry=5, fieldsV1=6)."""
MAX_VALUE_DEPTH: Final = 512
"""Deepest JSON value `same` compares (real Kubernetes objects stay under ~30 levels)."""
MAX_COMPARE_NODES: Final = 1_000_000
"""Nodes `same` visits in one comparison (a 1.5 MiB object has well under this many)."""

_DECODER: Final = json.JSONDecoder()
_WS: Final = re.compile(r"[ \t\n\r]*")
# A JSON string (escapes included) or one bracket: all `skip_value` needs to see.
_TOKENS: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


_SCALARS: Final = (str, int, float, bool, type(None))


class LimitExceeded(GitOpsError):
    """A bound on depth, size or count was hit; `str(err)` names which and where."""

    reason = "LimitExceeded"


# ------------------------------------------------------------------ partial decoding


def decode_partial(text: str) -> tuple[Any, list[str]]:
    """`text` decoded with every undecodable value replaced by None, and those values' paths.

    Raises ValueError (json.JSONDecodeError) when `text` is not JSON at all.
    """
    unreadable: list[str] = []
    value, end = _partial(text, _skip_ws(text, 0), "", 0, unreadable)
    if _skip_ws(text, end) != len(text):
        raise json.JSONDecodeError("extra data after the document", text, end)
    return value, unreadable


def _skip_ws(text: str, idx: int) -> int:
    match = _WS.match(text, idx)
    return match.end() if match else idx


def _partial(text: str, idx: int, path: str, depth: int, out: list[str]) -> tuple[Any, int]:
    try:
        return _DECODER.raw_decode(text, idx)
    except RecursionError:
        pass
    opener = text[idx:idx + 1]
    if depth >= SALVAGE_DEPTH:
        out.append(path or "(body)")
        return None, skip_value(text, idx)
    if opener == "{":
        return _members(text, idx, path, depth, out)
    return _items(text, idx, path, depth, out)  # only containers recurse


def _members(text: str, idx: int, path: str, depth: int, out: list[str]) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    idx = _skip_ws(text, idx + 1)
    if text.startswith("}", idx):
        return result, idx + 1
    while True:
        key, idx = _DECODER.raw_decode(text, idx)
        if not isinstance(key, str):
            raise json.JSONDecodeError("object key is not a string", text, idx)
        idx = _skip_ws(text, idx)
        if not text.startswith(":", idx):
            raise json.JSONDecodeError("expected ':'", text, idx)
        idx = _skip_ws(text, idx + 1)
        result[key], idx = _partial(text, idx, f"{path}.{key}" if path else key, depth + 1, out)
        idx = _skip_ws(text, idx)
        if text.startswith(",", idx):
            idx = _skip_ws(text, idx + 1)
        elif text.startswith("}", idx):
            return result, idx + 1
        else:
            raise json.JSONDecodeError("expected ',' or '}'", text, idx)


def _items(text: str, idx: int, path: str, depth: int, out: list[str]) -> tuple[list[Any], int]:
    if not text.startswith("[", idx):
        raise json.JSONDecodeError("expected a value", text, idx)
    result: list[Any] = []
    idx = _skip_ws(text, idx + 1)
    if text.startswith("]", idx):
        return result, idx + 1
    while True:
        value, idx = _partial(text, idx, f"{path}[{len(result)}]", depth + 1, out)
        result.append(value)
        idx = _skip_ws(text, idx)
        if text.startswith(",", idx):
            idx = _skip_ws(text, idx + 1)
        elif text.startswith("]", idx):
            return result, idx + 1
        else:
            raise json.JSONDecodeError("expected ',' or ']'", text, idx)


def skip_value(text: str, idx: int) -> int:
    """The index just past the JSON container starting at `idx` (iterative; strings honoured)."""
    depth = 0
    for match in _TOKENS.finditer(text, idx):
        token = match.group()
        if token[0] == '"':
            if depth == 0:
                return match.end()
        elif token in "[{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match.end()
    raise json.JSONDecodeError("unterminated value", text, idx)


_UID: Final = re.compile(r'"request"\s*:\s*\{\s*"uid"\s*:\s*("[^"\\]*(?:\\.[^"\\]*)*")')


def find_uid(text: str) -> str:
    """`request.uid` of a body that is not valid JSON, or "": the API server writes it first."""
    match = _UID.search(text)
    if match is None:
        return ""
    try:
        uid = json.loads(match.group(1))
    except ValueError:
        return ""
    return uid if isinstance(uid, str) else ""


# ------------------------------------------------------------------ comparing


def same(a: Any, b: Any, *, where: str = "a value") -> bool:
    """JSON equality of two decoded values, iterative and bounded (raises LimitExceeded).

    Unlike Python's `==`, a bool never equals a number (1 == True in Python, not in JSON).
    """
    if type(a) is type(b) and type(a) in _SCALARS:
        return bool(a == b)  # the common case: one owned leaf, compared at once
    todo: list[tuple[Any, Any, int]] = [(a, b, 0)]
    visited = 0
    while todo:
        x, y, depth = todo.pop()
        visited += 1
        if visited > MAX_COMPARE_NODES:
            raise LimitExceeded(f"{where} has more than {MAX_COMPARE_NODES:,} nodes to compare")
        if not _same_node(x, y, depth, todo, where):
            return False
    return True


def _same_node(x: Any, y: Any, depth: int, todo: list[tuple[Any, Any, int]], where: str) -> bool:
    """Compare one level; containers of equal shape queue their children on `todo`."""
    tx, ty = type(x), type(y)
    if tx is not ty:
        # int and float compare by value (JSON has one number type); nothing else mixes.
        return tx in (int, float) and ty in (int, float) and x == y
    if tx is dict:
        if x.keys() != y.keys():
            return False
        _push(todo, ((x[k], y[k]) for k in x), depth, where)
        return True
    if tx is list:
        if len(x) != len(y):
            return False
        _push(todo, zip(x, y, strict=True), depth, where)
        return True
    return bool(x == y)


def _push(todo: list[tuple[Any, Any, int]], pairs: Any, depth: int, where: str) -> None:
    if depth + 1 > MAX_VALUE_DEPTH:
        raise LimitExceeded(f"{where} is nested deeper than {MAX_VALUE_DEPTH} levels")
    todo.extend((x, y, depth + 1) for x, y in pairs)


def contains(items: list[Any], wanted: Any, *, where: str = "a list") -> bool:
    """`wanted in items` with JSON equality (bounded like `same`)."""
    return any(same(item, wanted, where=where) for item in items)
