"""Who can act as an applier (core/impersonation.py): the RBAC matching and what check prints."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.core.checks import Outcome
from kubectl_gitops.core.impersonation import Account, analyse, check_results, ways_to_act_as

JSON = dict[str, Any]
DEFAULT = Account("kubectl-gitops-system", "kubectl-gitops-applier")
TENANT = Account("team-a", "deployer")

# The parts of the built-in `edit` ClusterRole that matter here (as aggregated on a v1.37 server).
EDIT_RULES: list[JSON] = [
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]},
    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["create", "update", "patch", "delete"]},
]


def role(name: str, rules: list[JSON], namespace: str | None = None) -> JSON:
    meta: JSON = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"metadata": meta, "rules": rules}


def binding(name: str, role_name: str, subjects: list[JSON], namespace: str | None = None,
            kind: str = "ClusterRole") -> JSON:
    meta: JSON = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"metadata": meta, "roleRef": {"kind": kind, "name": role_name}, "subjects": subjects}


def user(name: str) -> JSON:
    return {"kind": "User", "name": name}


CLUSTER_ROLES = [
    role("edit", EDIT_RULES),
    role("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    role("kubectl-gitops-applier", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
    role("system:kube-controller-manager", [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                                             "verbs": ["create"]}]),
    role("impersonate-users", [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"]}]),
    role("impersonate-one", [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"],
                              "resourceNames": [TENANT.username]}]),
    role("view", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]),
]


def run(crbs: list[JSON] = [], rbs: list[JSON] = [], roles: list[JSON] = []) -> Any:  # noqa: B006
    return analyse(cluster_roles=CLUSTER_ROLES, roles=roles, cluster_role_bindings=crbs, role_bindings=rbs,
                   appliers=[DEFAULT, TENANT])


def test_edit_in_the_namespace_of_a_syncs_own_applier_is_flagged() -> None:
    out = run(rbs=[binding("bob-edit", "edit", [user("bob")], "team-a")])
    (finding,) = out.findings
    assert finding.binding == "RoleBinding team-a/bob-edit"
    assert finding.accounts == (TENANT,)
    assert finding.ways == ("impersonate", "create tokens for")
    message = finding.message()
    assert "User bob" in message and "team-a/deployer" in message and "drop the binding" in message


def test_edit_in_another_namespace_reaches_no_applier() -> None:
    assert run(rbs=[binding("bob-edit", "edit", [user("bob")], "team-b")]).findings == ()


def test_the_default_applier_is_out_of_reach_of_tenant_edit() -> None:
    out = run(rbs=[binding("bob-edit", "edit", [user("bob")], "team-a"),
                   binding("carol-edit", "edit", [user("carol")], "kubectl-gitops-system")])
    assert {f.binding: f.accounts for f in out.findings} == {
        "RoleBinding team-a/bob-edit": (TENANT,), "RoleBinding kubectl-gitops-system/carol-edit": (DEFAULT,)}


def test_a_cluster_wide_edit_binding_reaches_every_applier() -> None:
    (finding,) = run(crbs=[binding("devs-edit", "edit", [{"kind": "Group", "name": "devs"}])]).findings
    assert set(finding.accounts) == {DEFAULT, TENANT}
    assert finding.subjects == ("Group devs",)


def test_impersonating_the_service_account_user_counts_cluster_wide_only() -> None:
    crb = binding("imp", "impersonate-users", [user("eve")])
    assert run(crbs=[crb]).findings[0].ways == ("impersonate",)
    # A RoleBinding can't grant the cluster-scoped `users` resource.
    assert run(rbs=[binding("imp", "impersonate-users", [user("eve")], "team-a")]).findings == ()


def test_resource_names_limit_the_grant() -> None:
    (finding,) = run(crbs=[binding("imp", "impersonate-one", [user("eve")])]).findings
    assert finding.accounts == (TENANT,)


@pytest.mark.parametrize("rule, hit", [
    ({"apiGroups": ["*"], "resources": ["*/token"], "verbs": ["create"]}, True),
    ({"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create"]}, False),  # not the token
    ({"apiGroups": ["apps"], "resources": ["serviceaccounts/token"], "verbs": ["create"]}, False),
    ({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["*"]}, True),
    ({"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"],
      "resourceNames": ["other"]}, False),
    ({"apiGroups": [""], "resources": ["*"], "verbs": ["impersonate"]}, True),
])
def test_rbac_matching(rule: JSON, hit: bool) -> None:
    assert bool(ways_to_act_as([rule], TENANT, cluster_wide=False)) is hit


def test_cluster_admin_masters_control_plane_and_all_powerful_roles_are_expected() -> None:
    out = run(crbs=[
        binding("cluster-admin", "cluster-admin", [{"kind": "Group", "name": "system:masters"}]),
        binding("system:kube-controller-manager", "system:kube-controller-manager",
                [user("system:kube-controller-manager")]),
        binding("kubectl-gitops-applier", "kubectl-gitops-applier",
                [{"kind": "ServiceAccount", "namespace": DEFAULT.namespace, "name": DEFAULT.name}]),
        binding("ops-admin", "cluster-admin", [user("ops")]),
    ])
    assert out.findings == () and out.expected == 4


def test_a_binding_without_subjects_or_to_a_missing_role_is_harmless() -> None:
    assert run(crbs=[binding("empty", "edit", [])]).findings == ()
    assert run(rbs=[binding("gone", "no-such-role", [user("bob")], "team-a", kind="Role")]).findings == ()


def test_namespaced_roles_are_resolved_in_the_bindings_namespace() -> None:
    roles = [role("minter", [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}],
                  "team-a")]
    (finding,) = run(rbs=[binding("m", "minter", [user("bob")], "team-a", kind="Role")], roles=roles).findings
    assert finding.role == "Role minter" and finding.ways == ("create tokens for",)


def test_check_output_is_aggregated() -> None:
    many = run(rbs=[binding(f"u{i}-edit", "edit", [user(f"u{i}")], "team-a") for i in range(20)],
               crbs=[binding("cluster-admin", "cluster-admin", [{"kind": "Group", "name": "system:masters"}])])
    lines = check_results(many, 2, max_lines=6)
    assert len(lines) == 7
    assert all(r.outcome is Outcome.WARN for r in lines)
    assert "14 more" in lines[-1].detail and "1 expected" in lines[-1].detail


def test_check_output_when_clean() -> None:
    (line,) = check_results(run(), 2)
    assert line.outcome is Outcome.OK and "2 applier account(s)" in line.detail


def test_a_long_subject_list_is_shortened() -> None:
    (finding,) = run(rbs=[binding("crowd", "edit", [user(f"u{i}") for i in range(9)], "team-a")]).findings
    assert "and 6 more" in finding.message()


def test_an_applier_acting_as_itself_is_no_finding() -> None:
    me = {"kind": "ServiceAccount", "namespace": TENANT.namespace, "name": TENANT.name}
    assert run(rbs=[binding("deployer-admin", "edit", [me], "team-a")]).findings == ()
    (finding,) = run(rbs=[binding("shared", "edit", [me, user("bob")], "team-a")]).findings
    assert finding.subjects == ("User bob",)


def test_the_projects_own_controller_may_impersonate_appliers_but_a_look_alike_may_not() -> None:
    """The in-cluster controller applies as each Sync's applier by design (like an operator's sync);
    the same ServiceAccount name in another namespace is anyone's and is flagged."""
    own = {"kind": "ServiceAccount", "namespace": "kubectl-gitops-system", "name": "kubectl-gitops-controller"}
    fake = {"kind": "ServiceAccount", "namespace": "team-a", "name": "kubectl-gitops-controller"}
    out = run(crbs=[binding("controller-operator", "impersonate-users", [own])])
    assert out.findings == () and out.expected == 1
    flagged = run(crbs=[binding("look-alike", "impersonate-users", [fake])])
    assert [f.binding for f in flagged.findings] == ["ClusterRoleBinding/look-alike"]
