"""What an audit produces: findings, the rules that make them, and counts (pure values).

A `Rule` is a registry entry: an id people and CI filter on, a default severity, what it checks
and how to fix what it finds, and one pure function. Object rules look at one live object at a
time (with the cluster facts in `AuditContext`), so the reader can stream every kind page by page
and never hold the whole cluster; cluster rules look at the facts alone (Syncs, RBAC, the webhook).
A new rule (signatures, say) is one more entry in the registry, nothing else.

Findings sort by object, then rule, then message, and carry nothing that changes from run to run
(no timestamps), so two audits of the same cluster print the same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Final

from kubectl_gitops.core.objects import ObjectRef, split_api_version

if TYPE_CHECKING:
    from kubectl_gitops.core.audit.context import AuditContext

JSON = dict[str, Any]


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, threshold: Severity) -> bool:
        return self.rank >= threshold.rank


_RANK: Final = {Severity.WARNING: 1, Severity.ERROR: 2}
SEVERITIES: Final = (Severity.ERROR, Severity.WARNING)
CLUSTER: Final = ObjectRef("", "", "Cluster", "", "")
"""The subject of findings about the cluster as a whole (e.g. a webhook configuration that is missing)."""


@dataclass(frozen=True)
class Finding:
    """One violation: which rule, how bad, which object, what is wrong and how to fix it."""

    rule: str
    severity: Severity
    object: ObjectRef
    message: str
    fix: str

    @property
    def sort_key(self) -> tuple[str, str, str, str, str, str]:
        ref = self.object
        return (ref.namespace, ref.group, ref.kind, ref.name, self.rule, self.message)

    def as_dict(self) -> JSON:
        ref = self.object
        return {"rule": self.rule, "severity": self.severity.value,
                "object": {"apiVersion": ref.api_version if ref.version else "", "kind": ref.kind,
                           "namespace": ref.namespace, "name": ref.name},
                "message": self.message, "fix": self.fix}


ObjectCheck = Callable[["Rule", Mapping[str, Any], "AuditContext"], Iterable[Finding]]
"""`check(rule, obj, ctx)`: the findings of `rule` on one live object (`rule.finding` builds them)."""
ClusterCheck = Callable[["Rule", "AuditContext"], Iterable[Finding]]
"""`check(rule, ctx)`: the findings of `rule` on the cluster's facts."""


@dataclass(frozen=True)
class Rule:
    """A registry entry. Exactly one of `on_object` / `on_cluster` is set."""

    id: str
    severity: Severity
    title: str
    fix: str
    on_object: ObjectCheck | None = None
    on_cluster: ClusterCheck | None = None
    unless: tuple[str, ...] = ()
    """Object rules only: rule ids that take precedence; when one of them (earlier in the registry)
    finds something on an object, this rule says nothing more about it."""

    def __post_init__(self) -> None:
        if (self.on_object is None) == (self.on_cluster is None):
            raise ValueError(f"rule {self.id}: give exactly one of on_object and on_cluster")

    def finding(self, obj: ObjectRef, message: str, fix: str = "", severity: Severity | None = None) -> Finding:
        return Finding(self.id, severity or self.severity, obj, message, fix or self.fix)


@dataclass(frozen=True)
class AuditResult:
    """Every finding (sorted), the rules that ran, and how many objects were read."""

    findings: tuple[Finding, ...]
    rules: tuple[Rule, ...]
    objects: int = 0
    errors: tuple[str, ...] = ()
    """Kinds that could not be read (forbidden, gone): the audit is incomplete, and says so."""
    counts_by_rule: Mapping[str, int] = field(default_factory=dict)
    counts_by_severity: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, findings: Iterable[Finding], rules: Iterable[Rule], objects: int = 0,
           errors: Iterable[str] = ()) -> AuditResult:
        ordered = tuple(sorted(set(findings), key=lambda f: f.sort_key))
        rules = tuple(rules)
        by_rule = {r.id: 0 for r in rules} | dict(Counter(f.rule for f in ordered))
        by_severity = {s.value: 0 for s in SEVERITIES} | dict(Counter(f.severity.value for f in ordered))
        return cls(ordered, rules, objects, tuple(sorted(errors)), dict(sorted(by_rule.items())), by_severity)

    def failing(self, threshold: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity.at_least(threshold))

    def exit_code(self, threshold: Severity) -> int:
        """0 clean, 1 findings at or above `threshold`, 2 when part of the cluster could not be read."""
        if self.errors:
            return 2
        return 1 if self.failing(threshold) else 0


def ref_of(obj: Mapping[str, Any]) -> ObjectRef:
    """The ObjectRef of a live object (apiVersion/kind as listed)."""
    group, version = split_api_version(str(obj.get("apiVersion") or ""))
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return ObjectRef(group, version, str(obj.get("kind") or ""), str(meta.get("namespace") or ""),
                     str(meta.get("name") or ""))
