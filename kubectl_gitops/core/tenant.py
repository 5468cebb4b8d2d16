"""A typed view of the cluster-scoped Tenant, and the questions every tenancy rule asks of it (pure).

The webhook (at admission), the engine (before it applies) and `audit` (over the live cluster) all
ask the same few questions: which Tenant claims this namespace, may it hold this kind, may its
Sync pull this URL, may its RoleBindings grant this role, is this user one of its people. They are
answered here, once, from plain dicts, so enforcement and the plugin can never disagree on what
a Tenant allows. Every refusal carries the rule's name (`kinds.deny`, `sourceURLs`, ...), which
the messages quote so people know which line of which Tenant to change.

Kinds are written `GROUP/KIND` with shell-style globs (`apps/*`, `*/ConfigMap`, `*`); the core
group is `core` (or empty: `/ConfigMap`). A KIND without a slash means any group.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from kubectl_gitops.constants import SYSTEM_NAMESPACE
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.spec import InvalidSpec

DEFAULT_ROLES: Final = ("edit", "view")
"""ClusterRoles a Tenant's RoleBindings may grant unless `roles` says otherwise."""
FORBIDDEN_ROLES: Final = frozenset({"cluster-admin", "admin", "system:masters"})
"""Never grantable by a tenant, whatever its Tenant says (admin may create RoleBindings to anything)."""
FORBIDDEN_VERBS: Final = frozenset({"escalate", "bind", "impersonate", "*"})
"""A role carrying one of these verbs lets its holder step out of the tenant."""
_DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Verdict:
    """An answer with the rule that gave it; `rule` is "" when allowed by default."""

    allowed: bool
    rule: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Tenant:
    name: str
    namespaces: tuple[str, ...] = ()
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    applier_namespace: str = SYSTEM_NAMESPACE
    applier_name: str = ""
    allow_kinds: tuple[str, ...] = ("*",)
    deny_kinds: tuple[str, ...] = ()
    cluster_kinds: tuple[str, ...] = ()
    source_urls: tuple[str, ...] = ()
    roles: tuple[str, ...] = DEFAULT_ROLES
    may_suspend: bool = True
    may_relax_guard: bool = False

    @property
    def applier(self) -> str:
        """The applier's username, as `userInfo` carries it."""
        return f"system:serviceaccount:{self.applier_namespace}:{self.applier_name}"

    # -------------------------------------------------------------- questions

    def claims(self, namespace: str, labels: Mapping[str, str] | None = None) -> bool:
        """Does this Tenant own `namespace` (by name, or by its labels matching the selector)?"""
        if namespace in self.namespaces:
            return True
        if not self.namespace_labels or labels is None:
            return False
        return all(labels.get(k) == v for k, v in self.namespace_labels.items())

    def is_person(self, username: str, groups: Iterable[str] = ()) -> bool:
        return username in self.users or not set(self.groups).isdisjoint(groups)

    def kind(self, group: str, kind: str, *, namespaced: bool) -> Verdict:
        """May this Tenant hold objects of this kind? Deny wins over allow; cluster kinds need `kinds.cluster`."""
        what = kind_id(group, kind)
        if _matches_any(self.deny_kinds, group, kind):
            return Verdict(False, "kinds.deny", f"{what} is denied")
        if not namespaced:
            if _matches_any(self.cluster_kinds, group, kind):
                return Verdict(True, "kinds.cluster")
            return Verdict(False, "kinds.cluster", f"cluster-scoped {what} is not allowed")
        if _matches_any(self.allow_kinds, group, kind):
            return Verdict(True, "kinds.allow")
        return Verdict(False, "kinds.allow", f"{what} is not in the allowed kinds")

    def source_url(self, url: str) -> Verdict:
        if any(fnmatch.fnmatchcase(url, glob) for glob in self.source_urls):
            return Verdict(True, "sourceURLs")
        return Verdict(False, "sourceURLs", f"{url} matches none of {', '.join(self.source_urls) or '(none)'}")

    def role(self, kind: str, name: str, *, own_role: bool = False) -> Verdict:
        """May a RoleBinding of this Tenant grant `kind`/`name`? `own_role`: a Role in the tenant's namespace."""
        if name in FORBIDDEN_ROLES or name.startswith("system:"):
            return Verdict(False, "roles", f"{kind} {name} is never grantable by a tenant")
        if kind == "Role" and own_role:
            return Verdict(True, "roles")
        if kind == "ClusterRole" and name in self.roles:
            return Verdict(True, "roles")
        return Verdict(False, "roles", f"{kind} {name} is not among the grantable roles "
                                       f"({', '.join(self.roles) or 'none'} and the tenant's own Roles)")


def kind_id(group: str, kind: str) -> str:
    return f"{group or 'core'}/{kind}"


def _matches_any(globs: Sequence[str], group: str, kind: str) -> bool:
    return any(_matches(glob, group, kind) for glob in globs)


def _matches(glob: str, group: str, kind: str) -> bool:
    if "/" not in glob:
        return fnmatch.fnmatchcase(kind, glob)
    want_group, _, want_kind = glob.partition("/")
    group_ok = group == "" if want_group in ("", "core") else fnmatch.fnmatchcase(group, want_group)
    return group_ok and fnmatch.fnmatchcase(kind, want_kind)


def role_escapes(rules: Iterable[Mapping[str, Any]]) -> str:
    """The first verb in a Role's rules that would let its holder leave the tenant, or ""."""
    for rule in rules:
        for verb in rule.get("verbs") or []:
            if verb in FORBIDDEN_VERBS:
                return str(verb)
    return ""


# ------------------------------------------------------------------ parsing


def parse_tenant(obj: Mapping[str, Any]) -> Tenant:
    """A Tenant from its object; InvalidSpec names the field that is wrong."""
    meta = _map(obj.get("metadata"), "metadata")
    name = str(meta.get("name") or "")
    if not name:
        raise InvalidSpec("Tenant: metadata.name is missing")
    spec = _map(obj.get("spec"), f"Tenant {name}: spec")
    where = f"Tenant {name}: spec"
    selector = _map(spec.get("namespaceSelector"), f"{where}.namespaceSelector")
    people = _map(spec.get("people"), f"{where}.people")
    applier = _map(spec.get("applier"), f"{where}.applier")
    kinds = _map(spec.get("kinds"), f"{where}.kinds")
    permissions = _map(spec.get("permissions"), f"{where}.permissions")
    namespaces = _strings(spec.get("namespaces"), f"{where}.namespaces")
    for ns in namespaces:
        if not _DNS_LABEL.match(ns):
            raise InvalidSpec(f"{where}.namespaces: {ns!r} is not a namespace name")
    labels = _map(selector.get("matchLabels"), f"{where}.namespaceSelector.matchLabels")
    if not namespaces and not labels:
        raise InvalidSpec(f"{where}: give namespaces or namespaceSelector.matchLabels")
    return Tenant(
        name=name,
        namespaces=namespaces,
        namespace_labels={str(k): str(v) for k, v in labels.items()},
        users=_strings(people.get("users"), f"{where}.people.users"),
        groups=_strings(people.get("groups"), f"{where}.people.groups"),
        applier_namespace=str(applier.get("namespace") or SYSTEM_NAMESPACE),
        applier_name=str(applier.get("name") or default_applier_name(name)),
        allow_kinds=_globs(kinds.get("allow"), f"{where}.kinds.allow", default=("*",)),
        deny_kinds=_globs(kinds.get("deny"), f"{where}.kinds.deny"),
        cluster_kinds=_globs(kinds.get("cluster"), f"{where}.kinds.cluster"),
        source_urls=_globs(spec.get("sourceURLs"), f"{where}.sourceURLs", kinds=False),
        roles=_strings(spec.get("roles"), f"{where}.roles") if spec.get("roles") is not None else DEFAULT_ROLES,
        may_suspend=_bool(permissions.get("suspend"), True, f"{where}.permissions.suspend"),
        may_relax_guard=_bool(permissions.get("relaxDriftGuard"), False, f"{where}.permissions.relaxDriftGuard"),
    )


def default_applier_name(tenant: str) -> str:
    return f"tenant-{tenant}-applier"


def _map(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(f"{where} must be an object")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InvalidSpec(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _globs(value: object, where: str, default: tuple[str, ...] = (), *, kinds: bool = True) -> tuple[str, ...]:
    if value is None:
        return default
    globs = _strings(value, where)
    for glob in globs:
        if glob.count("[") != glob.count("]"):
            raise InvalidSpec(f"{where}: {glob!r} is not a valid glob (unbalanced [ ])")
        if kinds and glob.count("/") > 1:
            raise InvalidSpec(f"{where}: {glob!r} is not a valid kind glob (GROUP/KIND, e.g. apps/*)")
    return globs


def _bool(value: object, default: bool, where: str) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise InvalidSpec(f"{where} must be true or false")
    return value


# ------------------------------------------------------------------ the set of Tenants


def parse_tenants(objs: Iterable[Mapping[str, Any]]) -> tuple[tuple[Tenant, ...], dict[str, str]]:
    """Every Tenant object that parses, by name, and why each other one does not (name -> reason).

    One that does not parse is not enforced (admission refuses such a spec; one stored before the
    webhook ran is reported: by the webhook's log, and by `audit` as a finding)."""
    tenants, invalid = [], {}
    for obj in sorted(objs, key=_object_name):
        try:
            tenants.append(parse_tenant(obj))
        except GitOpsError as err:  # InvalidSpec, or anything else the parser refuses with
            invalid[_object_name(obj)] = str(err)
    return tuple(tenants), invalid


def _object_name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, Mapping) else ""


def tenant_for(tenants: Iterable[Tenant], namespace: str, labels: Mapping[str, str] | None = None) -> Tenant | None:
    """The Tenant claiming `namespace`, or None (a namespace no Tenant claims is the platform's)."""
    for tenant in tenants:
        if tenant.claims(namespace, labels):
            return tenant
    return None


def overlaps(tenant: Tenant, others: Iterable[Tenant]) -> list[str]:
    """Namespaces (by name) that `tenant` lists and another Tenant already claims."""
    found = []
    for other in others:
        if other.name == tenant.name:
            continue
        found += [f"{ns} (claimed by Tenant {other.name})" for ns in tenant.namespaces if other.claims(ns, None)]
    return found
