"""Post-build variable substitution: `${VAR}` and `${VAR:=default}` in rendered manifests.

Flux users know this from `postBuild.substitute`: values come from the Sync and from
ConfigMaps/Secrets and are spliced into the text of each YAML document before it is parsed, so
`replicas: ${REPLICAS}` with REPLICAS=3 becomes the integer 3, as in Flux.

Only the two forms above are recognised, deliberately: shell-style `${VAR-x}`, `$VAR` and the
like are left alone, because manifests legitimately carry shell snippets (container commands,
scripts in ConfigMaps) and rewriting them would break those objects. `$${VAR}` is the escape for a
literal `${VAR}`. Values are not substituted again (a value `${B}` stays `${B}`).

A variable without a value and without a default is left in place (the text stays as written),
unless `strict` is set, which makes it a BuildFailed naming every such variable and the source.
A default applies when the variable is unset or set to the empty string (shell `:=` semantics).

Values can't change structure. Whoever can edit a substituted ConfigMap may choose scalars, not
objects: `substitute_documents` parses the text twice, once with each substituted occurrence
replaced by an inert token and once with the values, and refuses the build unless both parses
have the same documents, keys and collections, and only scalars that held a variable differ (and
are still scalars). Flux's typing survives (a number stays a number); a value that would add a
key, a document, a list or an alias is a BuildFailed naming the variable, never the value.

The scanner is linear on any input (no regular-expression backtracking over the text).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.core.limits import DEFAULT_LIMITS, Limits
from kubectl_gitops.core.manifests import Manifest, parse_documents

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class _Occurrence:
    start: int  # of the `$` (the first `$` when escaped)
    end: int  # after the `}`
    escaped: bool
    name: str
    default: str | None


def _scan(text: str) -> Iterator[_Occurrence]:
    """Every `${NAME}`, `${NAME:=default}` and `$${...}` in order, without overlap, in linear time."""
    pos = 0
    consumed = 0  # a `$` before this index belongs to an earlier occurrence
    while True:
        start = text.find("${", pos)
        if start < 0:
            return
        found = _NAME.match(text, start + 2)
        if found is None:
            pos = start + 1
            continue
        after = found.end()
        default: str | None = None
        if text.startswith("}", after):
            end = after + 1
        elif text.startswith(":=", after):
            close = text.find("}", after + 2)
            if close < 0:
                return  # no `}` anywhere later: nothing after this can match either
            default, end = text[after + 2:close], close + 1
        else:
            pos = after
            continue
        escaped = start > consumed and text[start - 1] == "$"
        yield _Occurrence(start - 1 if escaped else start, end, escaped, found.group(), default)
        pos = consumed = end


def _value_for(occ: _Occurrence, variables: Mapping[str, str]) -> str | None:
    """The replacement text, or None when the variable stays as written (unset, no default)."""
    value = variables.get(occ.name)
    if value:
        return value
    if occ.default is not None:
        return occ.default
    return value  # "" (set but empty) is a value; None is missing


def _pieces(text: str, variables: Mapping[str, str]) -> tuple[list[str | tuple[str, str]], list[str]]:
    """The text split into literal pieces and (name, value) pieces, plus the missing names."""
    out: list[str | tuple[str, str]] = []
    missing: list[str] = []
    last = 0
    for occ in _scan(text):
        out.append(text[last:occ.start])
        last = occ.end
        if occ.escaped:
            out.append(text[occ.start + 1:occ.end])
            continue
        value = _value_for(occ, variables)
        if value is None:
            if occ.name not in missing:
                missing.append(occ.name)
            out.append(text[occ.start:occ.end])
        else:
            out.append((occ.name, value))
    out.append(text[last:])
    return out, missing


def _check_strict(missing: list[str], strict: bool, source: str) -> None:
    if strict and missing:
        where = f" in {source}" if source else ""
        raise BuildFailed(f"variable(s) {', '.join(missing)} not set and without a default{where} "
                          "(strict substitution)")


def substitute(text: str, variables: Mapping[str, str], *, strict: bool = False, source: str = "") -> str:
    """Replace `${VAR}` / `${VAR:=default}` in `text`; `$${VAR}` becomes a literal `${VAR}`.

    Textual only: use `substitute_documents` for manifests, which also guards the structure."""
    pieces, missing = _pieces(text, variables)
    _check_strict(missing, strict, source)
    return "".join(p if isinstance(p, str) else p[1] for p in pieces)


def variables_in(text: str) -> list[str]:
    """The variables `text` refers to (escaped ones excluded), in order of first use."""
    seen: list[str] = []
    for occ in _scan(text):
        if not occ.escaped and occ.name not in seen:
            seen.append(occ.name)
    return seen


# --- substitution that cannot change structure -----------------------------------------------


def _token_prefix(text: str) -> str:
    """A plain-scalar-safe marker that does not occur in `text` (so every hit is ours)."""
    prefix = "kgsubst"
    while prefix in text:
        prefix += "x"
    return prefix


def substitute_documents(text: str, variables: Mapping[str, str], source: str, *, strict: bool = False,
                         limits: Limits = DEFAULT_LIMITS) -> list[Manifest]:
    """Substitute and parse `text` (one file, or one kustomize output named `source`).

    BuildFailed if a value would change the documents' structure; messages name variables,
    never their values."""
    pieces, missing = _pieces(text, variables)
    _check_strict(missing, strict, source)
    used = [p for p in pieces if not isinstance(p, str)]
    if not used:
        return parse_documents("".join(p for p in pieces if isinstance(p, str)), source, limits)
    prefix = _token_prefix(text)
    names: dict[str, str] = {}
    shaped: list[str] = []
    for piece in pieces:
        if isinstance(piece, str):
            shaped.append(piece)
        else:
            token = f"{prefix}{len(names)}z"
            names[token] = piece[0]
            shaped.append(token)
    try:
        shape = parse_documents("".join(shaped), source, limits)
    except BuildFailed as err:
        raise BuildFailed(_untokened(str(err), prefix, names)) from None
    real_text = "".join(p if isinstance(p, str) else p[1] for p in pieces)
    all_names = ", ".join(sorted({name for name, _ in used}))
    try:
        real = parse_documents(real_text, source, limits)
    except BuildFailed:
        # The parser's message may quote the value (a secret, perhaps): name the variables only.
        raise BuildFailed(f"{source}: the substituted value(s) of {all_names} make the YAML invalid; "
                          "values are placed into scalars only") from None
    _compare_documents(shape, real, _Tokens(prefix, names), source, all_names)
    return real


@dataclass(frozen=True)
class _Tokens:
    prefix: str
    names: Mapping[str, str]

    def variables(self, value: Any) -> list[str]:
        """The variables whose tokens occur in the scalar `value` (empty when none)."""
        if not isinstance(value, str) or self.prefix not in value:
            return []
        return sorted({name for token, name in self.names.items() if token in value})


def _untokened(message: str, prefix: str, names: Mapping[str, str]) -> str:
    for token in sorted(names, key=len, reverse=True):
        message = message.replace(token, "${" + names[token] + "}")
    return message


class _Changed(Exception):
    def __init__(self, path: str, variables: list[str]) -> None:
        super().__init__(path)
        self.path, self.variables = path, variables


def _compare_documents(shape: list[Manifest], real: list[Manifest], tokens: _Tokens, source: str,
                       all_names: str) -> None:
    if len(shape) != len(real):
        raise BuildFailed(f"{source}: the substituted value(s) of {all_names} would change the number of "
                          f"objects ({len(shape)} -> {len(real)}); values are placed into scalars only")
    for before, after in zip(shape, real, strict=True):
        try:
            _compare(before.obj, after.obj, tokens, "")
        except _Changed as changed:
            who = ", ".join(changed.variables) if changed.variables else all_names
            where = _untokened(changed.path, tokens.prefix, tokens.names) or "(document)"
            raise BuildFailed(f"{after.location}: the substituted value of {who} would change the YAML "
                              f"structure at {where}; values are placed into scalars "
                              "only") from None


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _same_scalar(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    return bool(a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


def _compare(shape: Any, real: Any, tokens: _Tokens, path: str) -> None:
    """Iterative walk: same collections and keys; scalars differ only where a variable was."""
    todo = [(shape, real, path)]
    while todo:
        before, after, where = todo.pop()
        if _is_scalar(before):
            held = tokens.variables(before)
            if held and _is_scalar(after):
                continue
            if held or not _same_scalar(before, after):
                raise _Changed(where, held)
        elif isinstance(before, list):
            if not isinstance(after, list) or len(after) != len(before):
                raise _Changed(where, [])
            todo.extend((b, a, f"{where}[{i}]") for i, (b, a) in enumerate(zip(before, after, strict=True)))
        else:
            if not isinstance(after, dict) or len(after) != len(before):
                raise _Changed(where, [])
            for (key_b, val_b), (key_a, val_a) in zip(before.items(), after.items(), strict=True):
                if key_b != key_a and not tokens.variables(key_b):
                    raise _Changed(f"{where}.{key_b}", [])
                todo.append((val_b, val_a, f"{where}.{key_b}"))


def mask(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret value replaced by `***` (longest first, so a secret inside another is masked whole).

    Values shorter than 4 characters are left alone: masking "1" or "yes" everywhere would garble
    messages without hiding anything worth a secret."""
    for secret in sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
