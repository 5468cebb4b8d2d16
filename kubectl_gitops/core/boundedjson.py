"""Decode any JSON the API server returns, however deeply nested (pure).

The API server stores some JSON without a schema: another manager's `managedFields` entry, a
custom resource whose CRD preserves unknown fields. Go decodes up to 10,000 levels; Python's
`json.loads` gives up with a RecursionError near 1,000. One such object labelled into a LIST would
then crash every run that reads the LIST, and anyone with `edit` rights could write it.

`loads` tries the fast C decoder first and, only when it hits its recursion limit, decodes again
with an iterative parser that keeps the first `MAX_DEPTH` levels and replaces anything deeper by
None (the object stays readable; nothing the engine reads lives that deep). The engine never
writes a live object back, so a truncated copy cannot damage anything: at worst a truncated field
compares as different and is applied again.
"""

from __future__ import annotations

import json
import re
from json.decoder import scanstring  # type: ignore[attr-defined]  # the C string scanner json uses
from typing import Any, Final

MAX_DEPTH: Final = 256
"""Levels kept by the fallback decoder (real objects, CRD schemas included, stay far below)."""

_WS: Final = re.compile(r"[ \t\n\r]*")
_NUMBER: Final = re.compile(r"(-?(?:0|[1-9][0-9]*))(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_STRUCTURE: Final = re.compile(r'["{}\[\]]')
_LITERALS: Final = {"true": True, "false": False, "null": None}


def loads(raw: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """`json.loads`, but a document nested too deep for it is decoded with deep parts cut off."""
    try:
        return json.loads(raw)
    except RecursionError:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return loads_bounded(text, max_depth)


def loads_bounded(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """Iterative JSON decoding; containers below `max_depth` levels become None. ValueError if not JSON."""
    stack: list[Any] = []  # open containers, outermost first
    keys: list[str] = []  # the pending key of each open container ("" for arrays)
    pos = _ws(text, 0)
    while True:
        value, pos, opened = _value(text, pos, len(stack), max_depth)
        if opened is not None:
            stack.append(opened)
            key, pos = _key(text, pos) if isinstance(opened, dict) else ("", pos)
            keys.append(key)
            continue
        done, value, pos = _close(text, pos, value, stack, keys)
        if done:
            return value


def _close(text: str, pos: int, value: Any, stack: list[Any], keys: list[str]) -> tuple[bool, Any, int]:
    """Attach a complete value, closing the containers that end after it: (finished, value, pos)."""
    while stack:
        top = stack[-1]
        if isinstance(top, dict):
            top[keys[-1]] = value
        else:
            top.append(value)
        pos = _ws(text, pos)
        char = text[pos:pos + 1]
        if char == ",":
            pos = _ws(text, pos + 1)
            if isinstance(top, dict):
                keys[-1], pos = _key(text, pos)
            return False, None, pos
        if char != ("}" if isinstance(top, dict) else "]"):
            raise ValueError(f"expected ',' or a closing bracket at character {pos}")
        pos += 1
        value = stack.pop()
        keys.pop()
    if _ws(text, pos) != len(text):
        raise ValueError(f"extra data at character {pos}")
    return True, value, pos


def _value(text: str, pos: int, depth: int, max_depth: int) -> tuple[Any, int, Any]:
    """(value, position after it, None) or (None, position inside, a new non-empty container)."""
    char = text[pos:pos + 1]
    if char in ("{", "["):
        if depth >= max_depth:
            return None, _skip(text, pos), None
        close = "}" if char == "{" else "]"
        inside = _ws(text, pos + 1)
        if text[inside:inside + 1] == close:
            return ({} if char == "{" else []), inside + 1, None
        return None, inside, ({} if char == "{" else [])
    if char == '"':
        string, end = scanstring(text, pos + 1)
        return string, end, None
    number = _NUMBER.match(text, pos)
    if number and number.end() > pos:
        integer, fraction, exponent = number.groups()
        return (float(number.group()) if fraction or exponent else int(integer)), number.end(), None
    for word, literal in _LITERALS.items():
        if text.startswith(word, pos):
            return literal, pos + len(word), None
    raise ValueError(f"expected a JSON value at character {pos}")


def _key(text: str, pos: int) -> tuple[str, int]:
    if text[pos:pos + 1] != '"':
        raise ValueError(f"expected an object key at character {pos}")
    key, end = scanstring(text, pos + 1)
    end = _ws(text, end)
    if text[end:end + 1] != ":":
        raise ValueError(f"expected ':' at character {end}")
    return key, _ws(text, end + 1)


def _skip(text: str, pos: int) -> int:
    """The position after the container that opens at `pos` (strings skipped whole)."""
    depth = 0
    while True:
        found = _STRUCTURE.search(text, pos)
        if found is None:
            raise ValueError("unterminated JSON container")
        char, pos = found.group(), found.end()
        if char == '"':
            _, pos = scanstring(text, pos)
        elif char in "{[":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos


def _ws(text: str, pos: int) -> int:
    found = _WS.match(text, pos)
    return found.end() if found else pos
