"""What the engine refuses, before it applies anything, for a Sync in a namespace a Tenant claims (pure).

A tenant's Git repository is untrusted input: whatever it renders is checked here, as a whole,
against the Tenant before a single write, and one violation fails the whole run (nothing of
that Sync applied), with the Tenant rule named so the tenant knows which line to change. The
same goes for the Sync itself (its applier, references, target namespace) and its GitSource's
URL, which are checked before anything is fetched. Like Flux's lockdown flags
(`--no-cross-namespace-refs`, `--default-service-account`) and Argo CD's AppProject, but
answered from the Tenant object, so the platform decides per team.

RBAC on the tenant's applier is the second wall (the applier can only write what its Roles
allow); these checks are the first, and the one that names the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubectl_gitops.constants import GROUP, KIND_SOURCE, KIND_SYNC
from kubectl_gitops.core.spec import InvalidSpec, SyncSpec, parse_sync
from kubectl_gitops.core.tenant import Tenant, kind_id, role_escapes

JSON = dict[str, Any]
RBAC: Final = "rbac.authorization.k8s.io"

NEVER: Final = frozenset({
    ("", "Namespace"),
    (GROUP, "Tenant"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
    ("apiregistration.k8s.io", "APIService"),
    (RBAC, "ClusterRole"),
    (RBAC, "ClusterRoleBinding"),
})
"""Kinds no tenant's Git may hold, whatever its Tenant's `kinds` say: each reaches past the tenant."""


class TenantViolation(InvalidSpec):
    """A Sync (or what it renders) breaks a rule of the Tenant claiming its namespace.

    `tenant` and `rule` (the first violation's) are what the Tenant's status records."""

    reason = "TenantViolation"

    def __init__(self, message: str, tenant: str = "", rule: str = "") -> None:
        super().__init__(message)
        self.tenant = tenant
        self.rule = rule


@dataclass(frozen=True)
class Violation:
    rule: str
    what: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.what}: {self.detail}"


Scope = Callable[[str, str], bool]
"""(apiVersion, kind) -> namespaced?"""
RoleRules = Callable[[str, str], Sequence[Mapping[str, Any]] | None]
"""(namespace, name) of a live Role -> its rules, or None when there is no such Role."""


def raise_if(tenant: Tenant, sync_key: str, violations: Sequence[Violation], stage: str) -> None:
    """One TenantViolation listing every violation (the first ten), or nothing."""
    if not violations:
        return
    shown = "; ".join(str(v) for v in violations[:10])
    more = f" (and {len(violations) - 10} more)" if len(violations) > 10 else ""
    raise TenantViolation(f"Tenant {tenant.name} refuses Sync {sync_key} {stage}; nothing of it was "
                          f"applied: {shown}{more}", tenant.name, violations[0].rule)


# ------------------------------------------------------------------ the Sync itself


def applier_problem(tenant: Tenant, spec: SyncSpec) -> Violation | None:
    """A tenant's Sync must name the tenant's applier (its namespace comes from the Tenant)."""
    if spec.service_account == tenant.applier_name:
        return None
    named = f"serviceAccountName {spec.service_account!r}" if spec.service_account else "no serviceAccountName"
    return Violation("applier", f"Sync {spec.key}",
                     f"{named}; a Sync of tenant {tenant.name} must set serviceAccountName: "
                     f"{tenant.applier_name} (applies as {tenant.applier})")


def check_sync(tenant: Tenant, spec: SyncSpec, owned: Callable[[str], bool]) -> list[Violation]:
    """The Sync's own fields: applier, sourceRef/dependsOn namespaces, targetNamespace.

    `owned(ns)`: does the tenant own namespace `ns`."""
    found: list[Violation] = []
    what = f"Sync {spec.key}"
    problem = applier_problem(tenant, spec)
    if problem:
        found.append(problem)
    if spec.source_namespace and spec.source_namespace != spec.namespace:
        found.append(Violation("crossNamespaceRefs", what,
                               f"sourceRef into namespace {spec.source_namespace}; a tenant's Sync reads "
                               f"only GitSources in its own namespace"))
    for dep in spec.depends_on:
        if not owned(dep.namespace):
            found.append(Violation("crossNamespaceRefs", what, f"dependsOn {dep.namespace}/{dep.name} is "
                                   f"outside tenant {tenant.name}'s namespaces"))
    if spec.target_namespace and not owned(spec.target_namespace):
        found.append(Violation("targetNamespace", what, f"targetNamespace {spec.target_namespace} is not "
                               f"one of tenant {tenant.name}'s namespaces"))
    return found


def file_urls_allowed(tenant: Tenant) -> bool:
    """A file:// URL reads the syncing machine's disk (another tenant's checkout, say): a tenant may
    use one only when the platform wrote a file:// glob into its sourceURLs (`*` alone is not enough)."""
    return any(glob.lower().startswith("file://") for glob in tenant.source_urls)


def is_local(url: str) -> bool:
    """file:// URLs and plain paths (what git reads from the local disk)."""
    lowered = url.strip().lower()
    return lowered.startswith("file:") or lowered.startswith(("/", ".", "~")) or (
        "://" not in lowered and ":" not in lowered)


def check_url(tenant: Tenant, source_key: str, url: str) -> list[Violation]:
    what = f"GitSource {source_key}"
    if is_local(url) and not file_urls_allowed(tenant):
        return [Violation("sourceURLs", what, f"{url} is a local path; a tenant may pull file:// URLs only when "
                                              f"its Tenant's sourceURLs list a file:// glob")]
    verdict = tenant.source_url(url)
    return [] if verdict.allowed else [Violation(verdict.rule, what, verdict.detail)]


# ------------------------------------------------------------------ what the Sync renders


def check_objects(tenant: Tenant, objs: Iterable[JSON], namespaced: Scope, owned: Callable[[str], bool],
                  live_role: RoleRules) -> list[Violation]:
    """Every rendered object against the Tenant; all violations, in manifest order."""
    objs = list(objs)
    roles = {(_ns(o), _name(o)): list(o.get("rules") or []) for o in objs if _gk(o) == (RBAC, "Role")}
    found: list[Violation] = []
    for obj in objs:
        found += _check_one(tenant, obj, namespaced, owned, roles, live_role)
    return found


def _check_one(tenant: Tenant, obj: JSON, namespaced: Scope, owned: Callable[[str], bool],
               roles: Mapping[tuple[str, str], list[Any]], live_role: RoleRules) -> list[Violation]:
    where = _placement(tenant, obj, namespaced, owned)
    if where:
        return [where]
    group, kind = _gk(obj)
    what, ns = _display(obj), _ns(obj)
    if group == RBAC and kind == "Role":
        return _role_verbs(what, obj.get("rules") or [])
    if group == RBAC and kind == "RoleBinding":
        return _binding(tenant, obj, what, owned, roles, live_role)
    if group == GROUP and kind == KIND_SYNC:
        return _nested_sync(tenant, obj, owned)
    if group == GROUP and kind == KIND_SOURCE:
        url = str((obj.get("spec") or {}).get("url") or "")
        return check_url(tenant, f"{ns}/{_name(obj)}", url)
    return []


def _placement(tenant: Tenant, obj: JSON, namespaced: Scope, owned: Callable[[str], bool]) -> Violation | None:
    """May the tenant hold this kind, there? (kinds.never, kinds.*, namespaces)"""
    group, kind = _gk(obj)
    what = _display(obj)
    if (group, kind) in NEVER:
        return Violation("kinds.never", what, f"{kind_id(group, kind)} reaches past the tenant; no Tenant may hold it")
    scoped = namespaced(str(obj.get("apiVersion") or ""), kind)
    verdict = tenant.kind(group, kind, namespaced=scoped)
    if not verdict.allowed:
        return Violation(verdict.rule, what, verdict.detail)
    ns = _ns(obj)
    if scoped and not owned(ns):
        return Violation("namespaces", what,
                         f"namespace {ns or '(none)'} is not one of tenant {tenant.name}'s namespaces")
    return None


def _role_verbs(what: str, rules: Iterable[Mapping[str, Any]]) -> list[Violation]:
    verb = role_escapes(rules)
    if not verb:
        return []
    return [Violation("roles.verbs", what, f"grants {verb!r}, which lets its holder step out of the tenant "
                                           f"(escalate, bind, impersonate and * are refused)")]


def _binding(tenant: Tenant, obj: JSON, what: str, owned: Callable[[str], bool],
             roles: Mapping[tuple[str, str], list[Any]], live_role: RoleRules) -> list[Violation]:
    ns = _ns(obj)
    ref = obj.get("roleRef") or {}
    ref_kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
    found: list[Violation] = []
    rules: Sequence[Mapping[str, Any]] | None = None
    if ref_kind == "Role":
        rules = roles.get((ns, ref_name))
        if rules is None:
            rules = live_role(ns, ref_name)
    verdict = tenant.role(ref_kind, ref_name, own_role=rules is not None)
    if not verdict.allowed:
        found.append(Violation(verdict.rule, what, verdict.detail))
    elif rules is not None:
        found += [Violation(v.rule, what, f"binds Role {ns}/{ref_name}, which {v.detail}")
                  for v in _role_verbs(what, rules)]
    for subject in obj.get("subjects") or []:
        problem = _subject_problem(tenant, subject, ns, owned)
        if problem:
            found.append(Violation("subjects", what, problem))
    return found


def _subject_problem(tenant: Tenant, subject: Mapping[str, Any], ns: str, owned: Callable[[str], bool]) -> str:
    kind, name = str(subject.get("kind") or ""), str(subject.get("name") or "")
    if kind == "ServiceAccount":
        sa_ns = str(subject.get("namespace") or ns)
        return "" if owned(sa_ns) else f"ServiceAccount {sa_ns}/{name} is outside tenant {tenant.name}"
    if kind == "User" and name in tenant.users:
        return ""
    if kind == "Group" and name in tenant.groups:
        return ""
    return f"{kind} {name} is not one of tenant {tenant.name}'s people"


def _nested_sync(tenant: Tenant, obj: JSON, owned: Callable[[str], bool]) -> list[Violation]:
    """A Sync in the tenant's Git is held to the same rules as the one being reconciled."""
    try:
        spec = parse_sync(obj)
    except InvalidSpec as err:
        return [Violation("sync", _display(obj), str(err))]
    return check_sync(tenant, spec, owned)


# ------------------------------------------------------------------ small helpers


def _gk(obj: Mapping[str, Any]) -> tuple[str, str]:
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    return group, str(obj.get("kind") or "")


def _ns(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace") or "")


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _display(obj: Mapping[str, Any]) -> str:
    ns = _ns(obj)
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{_name(obj)}"
