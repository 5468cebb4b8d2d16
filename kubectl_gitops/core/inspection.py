"""Pure answers for `drift`, `tree` and `trace`: what drifted and who did it, kind names, groupings.

Drift is read from the live object alone, the way the drift guard judges it (core/declared.py):
the fields Git declares (the `kubectl-gitops.dev/fields` record the applier writes on every
object) that the `kubectl-gitops` field manager no longer owns. Server-side apply moves a field
to whoever changes its value, so such a field was changed by someone else since the last sync,
and the managedFields entries that own it now say who (field manager), how (Update or Apply,
through which subresource) and when. Nothing is rendered or fetched for it: drift is what
happened to the cluster, `diff` is what Git would change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubectl_gitops.constants import FIELD_MANAGER
from kubectl_gitops.core import declared
from kubectl_gitops.core.managed_fields import MAX_ENTRIES, MISSING
from kubectl_gitops.core.objects import ObjectRef
from kubectl_gitops.core.plan import format_path
from kubectl_gitops.core.textdiff import MASK, is_secret

JSON = dict[str, Any]


@dataclass(frozen=True)
class Changer:
    """A managedFields entry that owns a drifted field: who, how, when."""

    manager: str
    operation: str
    time: str = ""
    subresource: str = ""

    def describe(self) -> str:
        via = f" /{self.subresource}" if self.subresource else ""
        return f"{self.manager} ({self.operation}{via}{', ' + self.time if self.time else ''})"


@dataclass(frozen=True)
class DriftedField:
    path: str
    value: Any
    changers: tuple[Changer, ...]


def drifted_fields(obj: Mapping[str, Any], manager: str = FIELD_MANAGER) -> list[DriftedField]:
    """The declared fields of `obj` that `manager` no longer owns, with their live value (Secret
    values masked) and the entries that own them now. [] without a readable record."""
    trie = declared.recorded(obj)
    if trie is None:
        return []
    entries = _other_entries(obj, manager)
    out = []
    for path in declared.lost_paths(trie, obj, manager):
        value = declared.value_at(obj, path)
        if is_secret(obj) and path[:1] in (("data",), ("stringData",)):
            value = MASK
        changers = tuple(_changer(e) for e in entries if _touches(e.get("fieldsV1"), path))
        out.append(DriftedField(_render(path), None if value is MISSING else value, changers))
    return out


def _other_entries(obj: Mapping[str, Any], manager: str) -> list[JSON]:
    meta = obj.get("metadata")
    entries = meta.get("managedFields") if isinstance(meta, Mapping) else None
    if not isinstance(entries, list):
        return []
    return [e for e in entries[:MAX_ENTRIES] if isinstance(e, dict)
            and not (e.get("manager") == manager and e.get("operation") == "Apply" and not e.get("subresource"))]


def _changer(entry: Mapping[str, Any]) -> Changer:
    return Changer(str(entry.get("manager") or "?"), str(entry.get("operation") or "?"),
                   str(entry.get("time") or ""), str(entry.get("subresource") or ""))


def _touches(fields: Any, path: Sequence[str]) -> bool:
    """Does the fieldsV1 trie `fields` own something at, above (atomically) or below `path`?"""
    node = fields
    for key in path:
        if not isinstance(node, Mapping):
            return False
        sub = node.get(f"f:{key}")
        if sub is None:
            return False
        if not sub:
            return True  # a leaf above the path: owned as a whole
        node = sub
    return isinstance(node, Mapping)


def _render(path: Sequence[str]) -> str:
    return format_path(path)


_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` safe for a terminal: control characters (escape sequences among them) shown as `?`.
    Field manager names, values and URLs are whatever a client wrote."""
    return _CONTROL.sub("?", text)


# ------------------------------------------------------------------ kinds by the names people type


@dataclass(frozen=True)
class KindName:
    """A served kind and the names it answers to (as `kubectl get` resolves them)."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def answers(self, name: str) -> bool:
        names = {self.kind.lower(), self.plural, self.singular or self.kind.lower(), *self.short_names}
        return name in names


def kind_names(discovery: Iterable[Mapping[str, Any]]) -> list[KindName]:
    """Every served kind in the aggregated discovery documents (/api, /apis), preferred version first."""
    out: list[KindName] = []
    for doc in discovery:
        for item in doc.get("items") or []:
            group = str((item.get("metadata") or {}).get("name") or "")
            for version in item.get("versions") or []:
                for res in version.get("resources") or []:
                    kind = str((res.get("responseKind") or {}).get("kind") or "")
                    if kind:
                        out.append(KindName(group, str(version.get("version", "")), kind,
                                            str(res.get("resource", "")), res.get("scope") == "Namespaced",
                                            str(res.get("singularResource") or ""),
                                            tuple(str(s) for s in res.get("shortNames") or ())))
    return out


CORE_FIRST: Final = ("", "apps", "batch")


def resolve_kind(text: str, kinds: Sequence[KindName]) -> KindName | None:
    """`deploy`, `deployments`, `Deployment`, `deployment.apps`, `deployments.v1.apps` -> the kind.

    Like kubectl, an unqualified name prefers the core group, then apps and batch, then the first
    group discovery lists; the first (preferred) version of a group wins."""
    lowered = text.lower()
    name, _, qualifier = lowered.partition(".")
    candidates = [k for k in kinds if k.answers(name)]
    if qualifier:
        version, _, group = qualifier.partition(".")
        exact = [k for k in candidates if k.group == qualifier]
        versioned = [k for k in candidates if k.version == version and k.group == group]
        candidates = exact or versioned
    if not candidates:
        return None
    return min(candidates, key=lambda k: (CORE_FIRST.index(k.group) if k.group in CORE_FIRST else len(CORE_FIRST)))


# ------------------------------------------------------------------ the inventory as a tree


def grouped(refs: Iterable[ObjectRef]) -> list[tuple[str, list[tuple[str, list[ObjectRef]]]]]:
    """Refs by namespace ("" = cluster-scoped, first) and then kind (with group), names sorted."""
    by_ns: dict[str, dict[str, list[ObjectRef]]] = {}
    for ref in refs:
        kind = f"{ref.kind}.{ref.group}" if ref.group else ref.kind
        by_ns.setdefault(ref.namespace, {}).setdefault(kind, []).append(ref)
    return [(ns, [(kind, sorted(items, key=lambda r: r.name)) for kind, items in sorted(kinds.items())])
            for ns, kinds in sorted(by_ns.items())]


def tree_lines(node: Mapping[str, Any], prefix: str = "") -> list[str]:
    """A tree node ({"label", "children"}) as box-drawn lines, like `flux tree` and `tree(1)`."""
    lines = []
    children = list(node.get("children") or [])
    for index, child in enumerate(children):
        last = index == len(children) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{child['label']}")
        lines += tree_lines(child, prefix + ("    " if last else "│   "))
    return lines
