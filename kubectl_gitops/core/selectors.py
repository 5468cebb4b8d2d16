"""Label selectors (kubectl's `-l`) and status selectors (Flux's `--status-selector ready=false`).

A label selector is sent to the API server for a LIST, which checks its syntax; the same selector
must also be applied to the events of a watch that the plugin filters itself, so it is parsed and
matched here with the API server's grammar: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`,
`k notin (a,b)`, comma-separated, all required.

A status selector names conditions and their status, case-insensitively: `ready=false` matches an
object whose Ready condition is False; `ready=unknown` also matches one with no Ready condition
yet (never reconciled), which is what "unknown" means to a person reading `get`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubectl_gitops.core.errors import UsageError

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQUALITY = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str
    """=, !=, in, notin, exists, !exists"""
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        has = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return has
        if self.op == "!exists":
            return not has
        if self.op in ("=", "in"):
            return has and value in self.values
        return not has or value not in self.values  # != and notin: an absent key matches, as in Kubernetes


def _split(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """Parse `-l`; UsageError naming the part that is not a requirement."""
    out = []
    for part in _split(text or ""):
        if found := _SET.match(part):
            values = frozenset(v.strip() for v in found.group(4).split(",") if v.strip())
            out.append(Requirement(found.group(1), found.group(3), values))
        elif found := _EQUALITY.match(part):
            op = "!=" if found.group(3) == "!=" else "="
            out.append(Requirement(found.group(1), op, frozenset({found.group(4)})))
        elif found := _EXISTS.match(part):
            out.append(Requirement(found.group(2), "!exists" if found.group(1) else "exists"))
        else:
            raise UsageError(f"-l/--selector: {part.strip()!r} is not a label requirement "
                             "(k=v, k!=v, k, !k, k in (a,b), k notin (a,b))")
    return tuple(out)


def labels_match(obj: Mapping[str, Any], requirements: tuple[Requirement, ...]) -> bool:
    meta = obj.get("metadata")
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    found = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {}
    return all(r.matches(found) for r in requirements)


_STATUSES = {"true": "True", "false": "False", "unknown": "Unknown"}


def parse_status_selector(text: str) -> tuple[tuple[str, str], ...]:
    """`ready=false[,healthy=true]` -> (("ready", "False"), ("healthy", "True"))."""
    out = []
    for part in (p.strip() for p in (text or "").split(",") if p.strip()):
        condition, sep, value = part.partition("=")
        status = _STATUSES.get(value.strip().lower())
        if not sep or not condition.strip() or status is None:
            raise UsageError(f"--status-selector: {part!r} is not CONDITION=true|false|unknown (e.g. ready=false)")
        out.append((condition.strip().lower(), status))
    return tuple(out)


def status_matches(obj: Mapping[str, Any], selector: tuple[tuple[str, str], ...]) -> bool:
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    found = {str(c.get("type", "")).lower(): str(c.get("status", "Unknown"))
             for c in conditions if isinstance(c, Mapping)} if isinstance(conditions, list) else {}
    return all(found.get(kind, "Unknown") == wanted for kind, wanted in selector)
