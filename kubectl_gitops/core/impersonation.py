"""Who can act as a Sync's applier: RBAC grants that walk around the drift guard (pure).

The guard lets a Sync's applier account change what Git owns; it knows the applier from
`userInfo`, which is exactly what impersonation and a minted token produce. So whoever may
`impersonate` that ServiceAccount (or the user `system:serviceaccount:<ns>:<name>`), or `create`
its `serviceaccounts/token`, bypasses the guard by design. The built-in `edit` and `admin` roles
grant both for every ServiceAccount of their namespace: a tenant with `edit` in the namespace of a
Sync's own applier owns that Sync's guard. `kubectl gitops check` lists such grants, one line per
binding, naming its subjects, the accounts and the fix.

Expected grants are counted, not listed: bindings of `cluster-admin` or any role that grants every
verb on every resource (the default applier's own role is one: whoever holds it can do anything
anyway), the `system:masters` group, and the control plane's own identities
(kube-controller-manager mints tokens for controllers).

RBAC matching follows the API server's rules: `*` matches any verb/group/resource (subresources
included), `*/token` any resource's token subresource, an empty resourceNames any name; a
RoleBinding only grants within its namespace, so it reaches ServiceAccounts of that namespace
and never the cluster-scoped `users` resource.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kubectl_gitops.constants import SYSTEM_NAMESPACE
from kubectl_gitops.core.checks import CheckResult, Outcome

JSON = Mapping[str, Any]
EXPECTED_ROLES = frozenset({"cluster-admin"})
EXPECTED_GROUPS = frozenset({"system:masters"})
CONTROL_PLANE_USERS = frozenset({"system:kube-controller-manager", "system:kube-scheduler"})
# The in-cluster controller is the engine: it applies as each Sync's applier by design, exactly as
# an operator running `kubectl gitops sync` does (manifests/install/controller-rbac.yaml).
OWN_CONTROLLER = (SYSTEM_NAMESPACE, "kubectl-gitops-controller")


@dataclass(frozen=True, order=True)
class Account:
    """A ServiceAccount some Sync applies as."""

    namespace: str
    name: str

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Finding:
    """One binding that lets its subjects act as applier accounts."""

    binding: str  # "ClusterRoleBinding/x" or "RoleBinding ns/x"
    role: str
    subjects: tuple[str, ...]
    accounts: tuple[Account, ...]
    ways: tuple[str, ...]  # "impersonate", "create token"

    def message(self, max_items: int = 3) -> str:
        how = " and ".join(self.ways)
        return (f"{self.binding} ({self.role}) lets {_few(self.subjects, max_items)} {how} applier "
                f"{_few(tuple(str(a) for a in self.accounts), max_items)}, bypassing the drift guard: "
                "move the applier to a namespace they can't reach, or drop the binding")


@dataclass(frozen=True)
class Analysis:
    findings: tuple[Finding, ...]
    expected: int  # grants to cluster-admin, system:masters and the control plane, not listed


def _few(items: Sequence[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _matches(values: Iterable[str], wanted: str) -> bool:
    return any(v in ("*", wanted) for v in values)


def _resource_matches(resources: Iterable[str], resource: str) -> bool:
    sub = resource.partition("/")[2]
    return any(r in ("*", resource) or (sub and r == f"*/{sub}") for r in resources)


def _named(rule: JSON, name: str) -> bool:
    names = rule.get("resourceNames") or ()
    return not names or name in names


def _grants(rule: JSON, verb: str, resource: str, name: str) -> bool:
    return (_matches(rule.get("verbs") or (), verb) and _matches(rule.get("apiGroups") or (), "")
            and _resource_matches(rule.get("resources") or (), resource) and _named(rule, name))


def ways_to_act_as(rules: Iterable[JSON], account: Account, *, cluster_wide: bool) -> tuple[str, ...]:
    """How these rules let someone act as `account` (empty: they don't)."""
    rules = list(rules)
    ways = []
    if any(_grants(r, "impersonate", "serviceaccounts", account.name) for r in rules) or (
            cluster_wide and any(_grants(r, "impersonate", "users", account.username) for r in rules)):
        ways.append("impersonate")
    if any(_grants(r, "create", "serviceaccounts/token", account.name) for r in rules):
        ways.append("create tokens for")
    return tuple(ways)


def _subject(s: JSON) -> str:
    kind, name = str(s.get("kind", "")), str(s.get("name", ""))
    if kind == "ServiceAccount":
        return f"ServiceAccount {s.get('namespace', '')}/{name}"
    return f"{kind} {name}"


def _all_powerful(rules: Iterable[JSON]) -> bool:
    return any(all("*" in (r.get(k) or ()) for k in ("verbs", "apiGroups", "resources"))
               and not r.get("resourceNames") for r in rules)


def _is_account(s: JSON, account: Account) -> bool:
    return s.get("kind") == "ServiceAccount" and (s.get("namespace"), s.get("name")) == (account.namespace,
                                                                                         account.name)


def _expected(binding: JSON, subjects: Sequence[JSON], rules: Sequence[JSON]) -> bool:
    if (binding.get("roleRef") or {}).get("name") in EXPECTED_ROLES or _all_powerful(rules):
        return True
    return bool(subjects) and all(_control_plane(s) for s in subjects)


def _control_plane(s: JSON) -> bool:
    kind, name = s.get("kind"), str(s.get("name", ""))
    if kind == "Group":
        return name in EXPECTED_GROUPS
    if kind == "User":
        return name in CONTROL_PLANE_USERS
    return kind == "ServiceAccount" and (s.get("namespace") == "kube-system"
                                         or (s.get("namespace"), name) == OWN_CONTROLLER)


def _rules_of(binding: JSON, cluster_roles: Mapping[str, JSON], roles: Mapping[tuple[str, str], JSON],
              namespace: str) -> tuple[str, list[JSON]]:
    ref = binding.get("roleRef") or {}
    name = str(ref.get("name", ""))
    role = cluster_roles.get(name) if ref.get("kind") == "ClusterRole" else roles.get((namespace, name))
    return f"{ref.get('kind', 'Role')} {name}", list((role or {}).get("rules") or [])


def analyse(*, cluster_roles: Iterable[JSON], roles: Iterable[JSON], cluster_role_bindings: Iterable[JSON],
            role_bindings: Iterable[JSON], appliers: Iterable[Account]) -> Analysis:
    """Every binding that lets a subject impersonate an applier or mint its tokens."""
    by_cluster_role = {str(r["metadata"]["name"]): r for r in cluster_roles}
    by_role = {(str(r["metadata"].get("namespace", "")), str(r["metadata"]["name"])): r for r in roles}
    accounts = sorted(set(appliers))
    findings: list[Finding] = []
    expected = 0
    bindings = [(b, True) for b in cluster_role_bindings] + [(b, False) for b in role_bindings]
    for binding, cluster_wide in bindings:
        meta = binding.get("metadata") or {}
        namespace = "" if cluster_wide else str(meta.get("namespace", ""))
        role, rules = _rules_of(binding, by_cluster_role, by_role, namespace)
        reachable = [a for a in accounts if cluster_wide or a.namespace == namespace]
        hits = {a: ways_to_act_as(rules, a, cluster_wide=cluster_wide) for a in reachable}
        hits = {a: w for a, w in hits.items() if w}
        subjects = list(binding.get("subjects") or [])
        if not hits or not subjects:
            continue
        if _expected(binding, subjects, rules):
            expected += 1
            continue
        # An account acting as itself is no bypass (an applier's own admin binding grants that).
        others = {a: [s for s in subjects if not _is_account(s, a)] for a in hits}
        hits = {a: w for a, w in hits.items() if others[a]}
        if not hits:
            continue
        ways = tuple(dict.fromkeys(w for ws in hits.values() for w in ws))
        names = tuple(dict.fromkeys(_subject(s) for a in hits for s in others[a]))
        where = f"ClusterRoleBinding/{meta.get('name', '')}" if cluster_wide else \
            f"RoleBinding {namespace}/{meta.get('name', '')}"
        findings.append(Finding(where, role, names, tuple(hits), ways))
    return Analysis(tuple(findings), expected)


def check_results(analysis: Analysis, appliers: int, max_lines: int = 6) -> list[CheckResult]:
    """`kubectl gitops check` lines: one per finding (a few at most), else one OK line."""
    name = "applier impersonation"
    tail = (f"; {analysis.expected} expected grant(s) to cluster-admin, system:masters and the control "
            "plane (and the project's own controller) not listed") if analysis.expected else ""
    if not analysis.findings:
        return [CheckResult(name, Outcome.OK, f"no binding lets anyone else act as the {appliers} applier "
                            f"account(s){tail}")]
    out = [CheckResult(name, Outcome.WARN, f.message()) for f in analysis.findings[:max_lines]]
    more = len(analysis.findings) - max_lines
    if more > 0:
        out.append(CheckResult(name, Outcome.WARN, f"and {more} more binding(s) like these{tail}"))
    elif tail:
        out.append(CheckResult(name, Outcome.OK, tail.removeprefix("; ")))
    return out
