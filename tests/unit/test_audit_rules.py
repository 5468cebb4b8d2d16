"""Every audit rule on pure snapshots: what it finds, what it must leave alone, and that it agrees
with the decision admission makes (the webhook's tenancy review, the guard's declared-field rule,
`kubectl gitops check`'s impersonation analysis and webhook results)."""

from __future__ import annotations

import datetime as dt

import pytest

from kubectl_gitops.constants import LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core import tenancy
from kubectl_gitops.core.admission import AdmissionRequest, GroupVersionKind, GroupVersionResource, UserInfo
from kubectl_gitops.core.audit import object_rules
from kubectl_gitops.core.audit.context import Scope
from kubectl_gitops.core.audit.model import CLUSTER, AuditResult, Rule, Severity
from kubectl_gitops.core.audit.registry import RULES, by_id, run_cluster, run_object
from kubectl_gitops.core.checks import CLIENT_AUTH, CheckResult, Outcome
from kubectl_gitops.core.drift import review
from kubectl_gitops.core.tenant_objects import PEOPLE_BINDING
from tests.unit.audit_world import (
    BINDER,
    NOW,
    account,
    applied,
    audit_objects,
    binding,
    co_owned,
    configmap,
    context,
    edited,
    namespace,
    rules_of,
    sync,
    tenant,
    user,
)

APP_SYNC = sync("s", "app", inventory=["app_cfg__ConfigMap"])
CFG = applied(configmap("cfg", "app"))


# ------------------------------------------------------------------ the registry


def test_rule_ids_are_unique_and_every_rule_has_one_check_a_title_and_a_fix() -> None:
    assert len(by_id()) == len(RULES)
    for rule in RULES:
        assert rule.title and rule.fix, rule.id
        assert (rule.on_object is None) != (rule.on_cluster is None), rule.id
    with pytest.raises(ValueError, match="exactly one"):
        Rule("x/y", Severity.ERROR, "t", "f")


def test_a_new_rule_plugs_in_as_one_entry() -> None:
    """How the signature rule is wired: one more object rule, picked up by the loop and the counts."""
    unsigned = Rule("signature/missing", Severity.ERROR, "unsigned", "sign it",
                    on_object=lambda rule, obj, ctx: [rule.finding(object_rules.ref_of(obj), "no signature")])
    ctx = context(syncs=[APP_SYNC], namespaces=[namespace("app")])
    found = run_object(CFG, ctx, (*RULES, unsigned))
    assert rules_of(found) == ["signature/missing"]
    result = AuditResult.of(found, (*RULES, unsigned))
    assert result.counts_by_rule["signature/missing"] == 1
    assert result.counts_by_rule["drift/changed"] == 0


# ------------------------------------------------------------------ tenancy/boundary


TENANT_WORLD = {"tenants": [tenant()], "namespaces": [namespace("ta"), namespace("platform")]}


def test_a_grant_no_tenant_may_make_is_reported_with_the_webhooks_own_message() -> None:
    ctx = context(**TENANT_WORLD)
    root = binding("RoleBinding", "tina-root", "cluster-admin", user("tina"), namespace="ta")
    found = audit_objects(ctx, root)
    assert rules_of(found) == ["tenancy/boundary"]
    message = found[0].message
    assert message.startswith("Tenant team-a refuses RoleBinding ta/tina-root: roles:"), message
    # The very answer of the webhook's /tenancy endpoint to the tenant's applier creating it.
    answer = tenancy.review(object_rules._request(root, ctx, ctx.tenants[0].applier), ctx.tenancy_facts)
    assert not answer.allowed and answer.message == message


@pytest.mark.parametrize("obj", [
    configmap("settings", "ta"),
    binding("RoleBinding", "tina-edit", "edit", user("tina"), namespace="ta"),
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "ta"}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ta",
                                                      "ownerReferences": [{"uid": "1", "kind": "ReplicaSet"}]}},
    binding("RoleBinding", PEOPLE_BINDING, "edit", user("tina"), namespace="ta"),  # `create tenant` made it
    binding("RoleBinding", "kubectl-gitops-tenant-applier", "kubectl-gitops-tenant-applier",
            account("kubectl-gitops-system", "tenant-team-a-applier"), namespace="ta", role_kind="Role"),
], ids=["allowed-kind", "grantable-role", "default-sa", "controller-made", "people-binding", "applier-binding"])
def test_what_a_tenant_may_hold_and_what_the_platform_made_is_not_reported(obj: dict) -> None:
    ctx = context(**TENANT_WORLD)
    assert [f for f in audit_objects(ctx, obj) if f.rule == "tenancy/boundary"] == []


def test_a_denied_kind_in_a_tenant_namespace_is_reported() -> None:
    ctx = context(tenants=[tenant(kinds={"deny": ["core/ConfigMap"]})], namespaces=[namespace("ta")])
    found = audit_objects(ctx, configmap("settings", "ta"))
    assert rules_of(found) == ["tenancy/boundary"] and "kinds.deny" in found[0].message


def test_a_cluster_scoped_object_a_tenants_sync_applied_is_judged_by_that_tenant() -> None:
    ctx = context(syncs=[sync("s", "ta", account="tenant-team-a-applier")], **TENANT_WORLD)
    role = applied({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                    "metadata": {"name": "mine"}, "rules": []}, sync=("ta", "s"))
    found = audit_objects(ctx, role)
    assert rules_of(found) == ["tenancy/boundary"] and "kinds.cluster" in found[0].message


def test_what_a_platform_sync_put_in_a_tenant_namespace_is_the_platforms_choice() -> None:
    ctx = context(syncs=[sync("infra", "platform", inventory=["ta_tina-root_rbac.authorization.k8s.io_RoleBinding"])],
                  **TENANT_WORLD)
    root = applied(binding("RoleBinding", "tina-root", "cluster-admin", user("tina"), namespace="ta"),
                   sync=("platform", "infra"))
    assert rules_of(audit_objects(ctx, root)) == []


def test_a_tenant_the_webhook_would_refuse_is_reported() -> None:
    ctx = context(tenants=[tenant(), tenant("team-b", namespaces=["ta"])], namespaces=[namespace("ta")])
    found = audit_objects(ctx, tenant("team-b", namespaces=["ta"]))
    assert rules_of(found) == ["tenancy/boundary"]
    assert "claimed by Tenant team-a" in found[0].message


# ------------------------------------------------------------------ drift/changed, drift/ownership


def test_a_synced_object_as_applied_has_no_drift() -> None:
    ctx = context(syncs=[APP_SYNC], namespaces=[namespace("app")])
    assert audit_objects(ctx, CFG) == []


def test_a_changed_declared_field_is_drift_naming_the_manager() -> None:
    ctx = context(syncs=[APP_SYNC], namespaces=[namespace("app")])
    found = audit_objects(ctx, edited(CFG, ("data", "a"), "2"))
    assert rules_of(found) == ["drift/changed"]
    assert found[0].message.startswith("data.a changed by kubectl-edit (Update) since Sync app/s applied")
    assert found[0].severity is Severity.ERROR and "kubectl gitops sync s -n app" in found[0].fix


def test_a_removed_declared_field_and_a_forced_apply_are_drift_too() -> None:
    ctx = context(syncs=[APP_SYNC], namespaces=[namespace("app")])
    removed = audit_objects(ctx, edited(CFG, ("data", "a"), None))
    assert rules_of(removed) == ["drift/changed"] and "data.a removed" in removed[0].message
    forced = audit_objects(ctx, edited(CFG, ("data", "a"), "3", manager="other-tool", operation="Apply"))
    assert rules_of(forced) == ["drift/changed"] and "other-tool (Apply)" in forced[0].message


def test_the_guard_refuses_the_very_edit_the_audit_reports_once_it_got_through() -> None:
    """The same edit, judged at admission (core/drift.review) and found afterwards by the audit."""
    after = edited(CFG, ("data", "a"), "2")
    req = AdmissionRequest(uid="u", kind=GroupVersionKind("", "v1", "ConfigMap"),
                           resource=GroupVersionResource("", "v1", "configmaps"), operation="UPDATE",
                           user_info=UserInfo("bob"), name="cfg", namespace="app", object=after, old_object=CFG)
    ctx = context(syncs=[APP_SYNC], namespaces=[namespace("app")])
    answer = review(req, lambda ns, name: ctx.sync_infos.get((ns, name)), break_glass_group="bg")
    assert not answer.allowed and "change to data.a refused" in answer.message
    assert audit_objects(ctx, after)[0].message.startswith("data.a changed by kubectl-edit")


def test_a_field_another_manager_applies_as_well_is_shared_ownership() -> None:
    ctx = context(syncs=[APP_SYNC], namespaces=[namespace("app")])
    found = audit_objects(ctx, co_owned(CFG, ("data", "a")))
    assert rules_of(found) == ["drift/ownership"]
    assert "data.a" in found[0].message and "intruder (Apply)" in found[0].message
    assert found[0].severity is Severity.WARNING


def test_another_managers_field_inside_a_declared_list_is_not_gits() -> None:
    """As the guard says: an env var added to a Git-owned container is not drift."""
    deploy = applied({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "app"},
                      "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    deploy["metadata"]["managedFields"].append({
        "manager": "kubectl-set", "operation": "Update", "fieldsType": "FieldsV1",
        "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
            'k:{"name":"web"}': {"f:env": {}}}}}}}})
    ctx = context(syncs=[sync("s", "app", inventory=["app_web_apps_Deployment"])], namespaces=[namespace("app")])
    assert audit_objects(ctx, deploy) == []


def test_drift_is_not_judged_without_the_record_nor_for_a_missing_sync() -> None:
    ctx = context(syncs=[APP_SYNC], namespaces=[namespace("app")])
    bare = edited(CFG, ("data", "a"), "2")
    del bare["metadata"]["annotations"]
    assert audit_objects(ctx, bare) == []
    gone = context(namespaces=[namespace("app")])
    assert rules_of(audit_objects(gone, edited(CFG, ("data", "a"), "2"))) == ["orphan/unowned"]


def test_an_object_too_big_to_analyse_is_reported_not_skipped() -> None:
    ctx = context(syncs=[APP_SYNC], namespaces=[namespace("app")])
    hostile = edited(CFG, ("data", "a"), "2")
    hostile["metadata"]["managedFields"] += [{"manager": f"m{i}", "operation": "Update", "fieldsV1": {}}
                                             for i in range(300)]
    found = audit_objects(ctx, hostile)
    assert rules_of(found) == ["drift/changed"] and "could not be compared" in found[0].message


# ------------------------------------------------------------------ rbac/*


def test_a_tenant_person_bound_to_cluster_admin_outside_the_tenant_is_escalation() -> None:
    ctx = context(**TENANT_WORLD)
    crb = binding("ClusterRoleBinding", "tina-root", "cluster-admin", user("tina"))
    found = audit_objects(ctx, crb)
    assert rules_of(found) == ["rbac/tenant-escalation"]
    assert "User tina of Tenant team-a" in found[0].message


def test_a_tenant_account_bound_to_a_role_that_binds_is_escalation() -> None:
    ctx = context(**TENANT_WORLD)
    rb = binding("RoleBinding", "x", BINDER["metadata"]["name"], account("ta", "robot"), namespace="platform")
    found = audit_objects(ctx, rb)
    assert rules_of(found) == ["rbac/tenant-escalation"] and "'bind'" in found[0].message


@pytest.mark.parametrize("obj", [
    binding("ClusterRoleBinding", "ops-root", "cluster-admin", user("ops")),
    binding("ClusterRoleBinding", "tina-view", "view", user("tina")),
    binding("RoleBinding", "tina-root", "cluster-admin", user("tina"), namespace="ta"),  # tenancy/boundary's
], ids=["not-a-tenant", "harmless-role", "inside-the-tenant"])
def test_no_escalation_without_a_tenant_subject_and_a_dangerous_role_outside_the_tenant(obj: dict) -> None:
    ctx = context(**TENANT_WORLD)
    assert "rbac/tenant-escalation" not in rules_of(audit_objects(ctx, obj))


def test_edit_where_a_syncs_own_applier_lives_lets_someone_act_as_it() -> None:
    ctx = context(syncs=[sync("s", "imp", account="imp-applier")], namespaces=[namespace("imp")])
    found = audit_objects(ctx, binding("RoleBinding", "bob-edit", "edit", user("bob"), namespace="imp"))
    assert rules_of(found) == ["rbac/applier-impersonation"]
    assert "User bob impersonate and create tokens for applier imp/imp-applier" in found[0].message


@pytest.mark.parametrize("obj", [
    binding("RoleBinding", "bob-edit", "edit", user("bob"), namespace="elsewhere"),
    binding("ClusterRoleBinding", "ops", "kubectl-gitops-operator", user("ops")),
    binding("ClusterRoleBinding", "root", "cluster-admin", user("ops")),
], ids=["other-namespace", "operators", "cluster-admin-is-expected"])
def test_grants_that_reach_no_applier_or_are_expected_are_not_reported(obj: dict) -> None:
    ctx = context(syncs=[sync("s", "imp", account="imp-applier")], namespaces=[namespace("imp")])
    assert "rbac/applier-impersonation" not in rules_of(audit_objects(ctx, obj))


# ------------------------------------------------------------------ orphan/unowned


ORPHAN_WORLD = {"syncs": [APP_SYNC], "namespaces": [namespace("app"), namespace("free")]}


def test_an_object_no_sync_owns_in_a_managed_namespace_is_an_orphan() -> None:
    stray = configmap("stray", "app")
    stray["metadata"]["managedFields"] = [{"manager": "kubectl-create", "operation": "Update"}]
    found = audit_objects(context(**ORPHAN_WORLD), stray)
    assert rules_of(found) == ["orphan/unowned"] and "kubectl-create" in found[0].message


@pytest.mark.parametrize("obj", [
    configmap("cfg", "app"),  # in the Sync's inventory
    configmap("kube-root-ca.crt", "app"),
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": "app"}},
    {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync", "metadata": {"name": "s", "namespace": "app"}},
    {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
     "metadata": {"name": "t", "namespace": "app"}},
    configmap("x", "free"),  # no Sync applies there
    configmap("x", "kube-system"),
], ids=["inventory", "root-ca", "default-sa", "gitops-config", "token", "unmanaged-namespace", "system"])
def test_the_usual_exceptions_are_not_orphans(obj: dict) -> None:
    assert audit_objects(context(**ORPHAN_WORLD), obj) == []


def test_labels_naming_a_sync_that_is_gone_or_that_does_not_list_it_are_orphans() -> None:
    ctx = context(**ORPHAN_WORLD)
    gone = configmap("x", "free", labels={LABEL_SYNC: "old", LABEL_SYNC_NAMESPACE: "free"})
    found = audit_objects(ctx, gone)
    assert rules_of(found) == ["orphan/unowned"] and "Sync free/old, which does not exist" in found[0].message
    copied = configmap("y", "app", labels={LABEL_SYNC: "s", LABEL_SYNC_NAMESPACE: "app"})
    found = audit_objects(ctx, copied)
    assert rules_of(found) == ["orphan/unowned"] and "not in its inventory" in found[0].message


def test_a_tenant_violation_is_reported_as_that_not_also_as_an_orphan() -> None:
    ctx = context(syncs=[sync("s", "ta", account="tenant-team-a-applier", inventory=["ta_a__ConfigMap"])],
                  **TENANT_WORLD)
    root = binding("RoleBinding", "tina-root", "cluster-admin", user("tina"), namespace="ta")
    assert rules_of(audit_objects(ctx, root)) == ["tenancy/boundary"]
    assert rules_of(audit_objects(ctx, configmap("b", "ta"))) == ["orphan/unowned"]


# ------------------------------------------------------------------ sync/*


def test_stalled_not_ready_and_never_reconciled_syncs() -> None:
    ctx = context(syncs=[sync("a", "x", ready="False", stalled=True, reason="DependencyCycle"),
                         sync("b", "x", ready="False", reason="SourceFailed"),
                         sync("c", "x", ready=None), sync("d", "x")])
    found = run_cluster(ctx)
    assert [(f.rule, f.object.name) for f in found] == [("sync/stalled", "a"), ("sync/not-ready", "b"),
                                                        ("sync/not-ready", "c")]
    assert "DependencyCycle" in found[0].message and "SourceFailed" in found[1].message
    assert "never reconciled" in found[2].message


def test_a_sync_suspended_longer_than_the_threshold_dated_by_its_managed_fields() -> None:
    def suspended(name: str, when: str) -> dict:
        entry = {"manager": "kubectl-gitops", "operation": "Update", "time": when,
                 "fieldsV1": {"f:spec": {"f:suspend": {}}}}
        return sync(name, "x", suspend=True, ready="False", managed_fields=[entry])

    ctx = context(syncs=[suspended("old", "2026-11-20T00:00:00Z"), suspended("new", "2026-11-27T11:00:00Z")])
    found = run_cluster(ctx)
    assert [(f.rule, f.object.name) for f in found] == [("sync/suspended", "old")]
    assert "since 2026-11-20T00:00:00Z (longer than 1d)" in found[0].message
    shorter = context(syncs=ctx.facts.syncs, max_suspended=dt.timedelta(minutes=30))
    assert sorted(f.object.name for f in run_cluster(shorter)) == ["new", "old"]


def test_sync_rules_follow_the_scope() -> None:
    syncs = [sync("a", "x", ready="False"), sync("b", "y", ready="False")]
    assert [f.object.name for f in run_cluster(context(syncs=syncs, scope=Scope(frozenset({"y"}))))] == ["b"]
    assert [f.object.name for f in run_cluster(context(syncs=syncs, scope=Scope(None, "a")))] == ["a"]


# ------------------------------------------------------------------ webhook/*


SKIPPED = ("kube-system", "kubectl-gitops-system")


def hook(name: str, policy: str = "Ignore", excluded: tuple[str, ...] = SKIPPED) -> dict:
    return {"name": name, "failurePolicy": policy, "rules": [{"operations": ["UPDATE"]}],
            "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": list(excluded)}]}}


def config(kind: str, name: str, *hooks: dict) -> dict:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind, "metadata": {"name": name},
            "webhooks": list(hooks)}


GUARD = config("ValidatingWebhookConfiguration", "kubectl-gitops-drift-guard", hook("drift-guard.kubectl-gitops.dev"),
               hook("drift-guard-scale.kubectl-gitops.dev"))
STAMPS = config("MutatingWebhookConfiguration", "kubectl-gitops-stamps", hook("stamps.kubectl-gitops.dev"))
SHIPPED = [GUARD, STAMPS]


def webhook_findings(live: list[dict], probe: list[CheckResult] | None = None,
                     scope: Scope | None = None) -> list[tuple[str, str, str]]:
    ctx = context(webhook_configurations=live, shipped_webhooks=SHIPPED, webhook_probe=probe, scope=scope or Scope())
    return [(f.rule, f.severity.value, f.message) for f in run_cluster(ctx)]


def test_a_webhook_as_installed_is_clean() -> None:
    assert webhook_findings(SHIPPED) == []


def test_no_webhook_at_all_is_one_warning_and_half_a_webhook_an_error() -> None:
    assert [(r, s) for r, s, _ in webhook_findings([])] == [("webhook/configuration", "warning")]
    half = webhook_findings([GUARD])
    assert [(r, s) for r, s, _ in half] == [("webhook/configuration", "error")]
    assert "kubectl-gitops-stamps" in half[0][2]
    one_entry = config("ValidatingWebhookConfiguration", "kubectl-gitops-drift-guard",
                       hook("drift-guard.kubectl-gitops.dev"))
    found = webhook_findings([one_entry, STAMPS])
    assert [(r, s) for r, s, _ in found] == [("webhook/configuration", "error")]
    assert "drift-guard-scale.kubectl-gitops.dev" in found[0][2]


def test_an_entry_that_skips_more_namespaces_than_shipped_is_named() -> None:
    wider = config("ValidatingWebhookConfiguration", "kubectl-gitops-drift-guard",
                   hook("drift-guard.kubectl-gitops.dev", excluded=("kube-system", "kubectl-gitops-system", "prod")),
                   hook("drift-guard-scale.kubectl-gitops.dev"))
    found = webhook_findings([wider, STAMPS])
    assert [(r, s) for r, s, _ in found] == [("webhook/exclusions", "error")]
    assert "drift-guard.kubectl-gitops.dev: namespaceSelector differ" in found[0][2] and "prod" in found[0][2]


def test_fail_closed_is_fine_where_install_sets_it_and_a_lockout_elsewhere() -> None:
    closed = config("ValidatingWebhookConfiguration", "kubectl-gitops-drift-guard",
                    hook("drift-guard.kubectl-gitops.dev", "Fail"), hook("drift-guard-scale.kubectl-gitops.dev"))
    assert webhook_findings([closed, STAMPS]) == []
    stuck = config("MutatingWebhookConfiguration", "kubectl-gitops-stamps", hook("stamps.kubectl-gitops.dev", "Fail"))
    assert [(r, s) for r, s, _ in webhook_findings([GUARD, stuck])] == [("webhook/failure-policy", "error")]


def test_the_signatures_configuration_is_judged_like_the_others() -> None:
    signatures = config("ValidatingWebhookConfiguration", "kubectl-gitops-signatures",
                        hook("signatures.kubectl-gitops.dev"), hook("trustpolicies.kubectl-gitops.dev"))
    shipped = [GUARD, STAMPS, signatures]

    def found(live: list[dict]) -> list[tuple[str, str]]:
        ctx = context(webhook_configurations=live, shipped_webhooks=shipped)
        return [(f.rule, f.severity.value) for f in run_cluster(ctx)]

    assert found(shipped) == []
    assert found([GUARD, STAMPS]) == [("webhook/configuration", "error")]
    closed = config("ValidatingWebhookConfiguration", "kubectl-gitops-signatures",
                    hook("signatures.kubectl-gitops.dev", "Fail"), hook("trustpolicies.kubectl-gitops.dev", "Fail"))
    assert found([GUARD, STAMPS, closed]) == []  # what install --fail-closed sets
    wider = config("ValidatingWebhookConfiguration", "kubectl-gitops-signatures",
                   hook("signatures.kubectl-gitops.dev", excluded=(*SKIPPED, "prod")),
                   hook("trustpolicies.kubectl-gitops.dev"))
    assert found([GUARD, STAMPS, wider]) == [("webhook/exclusions", "error")]


@pytest.mark.parametrize(("name", "outcome", "rule", "severity"), [
    ("webhook caBundle", Outcome.FAILED, "webhook/ca-bundle", "error"),
    ("webhook certificate", Outcome.WARN, "webhook/certificate", "warning"),
    ("webhook certificate", Outcome.FAILED, "webhook/certificate", "error"),
    ("webhook endpoint", Outcome.FAILED, "webhook/endpoint", "error"),
    (CLIENT_AUTH, Outcome.WARN, "webhook/client-auth", "warning"),
])
def test_each_line_check_finds_wrong_with_the_webhook_is_a_finding(name: str, outcome: Outcome, rule: str,
                                                                   severity: str) -> None:
    probe = [CheckResult("webhook", Outcome.OK, "present"), CheckResult(name, outcome, "what check said"),
             CheckResult("webhook endpoint" if name != "webhook endpoint" else "webhook caBundle", Outcome.OK, "")]
    found = webhook_findings(SHIPPED, probe)
    assert found == [(rule, severity, f"{name}: what check said")]


def test_the_certificate_expiry_rule_is_checks_own_30_days() -> None:
    from kubectl_gitops.core.checks import cert_expiry

    probe = [cert_expiry("2026-12-10T00:00:00Z", 13), cert_expiry("2027-12-10T00:00:00Z", 378)]
    found = webhook_findings(SHIPPED, probe)
    assert [(r, s) for r, s, _ in found] == [("webhook/certificate", "warning")] and "13 days" in found[0][2]


def test_webhook_rules_run_only_for_the_whole_cluster() -> None:
    assert webhook_findings([], scope=Scope(frozenset({"app"}))) == []
    probe = [CheckResult("webhook endpoint", Outcome.FAILED, "down")]
    assert webhook_findings(SHIPPED, probe, scope=Scope(None, "s")) == []


# ------------------------------------------------------------------ results


def test_findings_sort_by_object_and_the_exit_code_follows_the_threshold() -> None:
    warn = by_id()["orphan/unowned"].finding(object_rules.ref_of(configmap("b", "n")), "w")
    err = by_id()["drift/changed"].finding(object_rules.ref_of(configmap("a", "n")), "e")
    cluster = by_id()["webhook/endpoint"].finding(CLUSTER, "down")
    result = AuditResult.of([warn, err, cluster, warn], RULES, 3)
    assert [f.message for f in result.findings] == ["down", "e", "w"]
    assert result.counts_by_severity == {"error": 2, "warning": 1}
    assert result.exit_code(Severity.ERROR) == 1 and result.exit_code(Severity.WARNING) == 1
    only_warn = AuditResult.of([warn], RULES)
    assert only_warn.exit_code(Severity.ERROR) == 0 and only_warn.exit_code(Severity.WARNING) == 1
    assert AuditResult.of([], RULES).exit_code(Severity.WARNING) == 0
    assert AuditResult.of([], RULES, errors=["pods: forbidden"]).exit_code(Severity.ERROR) == 2


def test_objects_outside_the_scope_are_not_judged() -> None:
    ctx = context(scope=Scope(frozenset({"other"})), **ORPHAN_WORLD)
    assert audit_objects(ctx, configmap("stray", "app")) == []
    ctx = context(scope=Scope(frozenset({"app"}), "s"), **ORPHAN_WORLD)
    assert audit_objects(ctx, configmap("stray", "app")) == []
    cluster_scoped = binding("ClusterRoleBinding", "r", "cluster-admin", user("tina"))
    assert audit_objects(context(scope=Scope(frozenset({"ta"})), **TENANT_WORLD), cluster_scoped) == []


def test_the_time_of_a_finding_never_changes_its_text() -> None:
    assert NOW.tzinfo is not None
    first = audit_objects(context(syncs=[APP_SYNC]), edited(CFG, ("data", "a"), "2"))
    second = audit_objects(context(syncs=[APP_SYNC]), edited(CFG, ("data", "a"), "2"))
    assert first == second


def test_tenants_that_do_not_parse_are_named_not_enforced() -> None:
    from kubectl_gitops.core.tenant import parse_tenants

    broken = tenant("broken")
    broken["spec"]["namespaces"] = ["Not_A_Namespace"]
    tenants, invalid = parse_tenants([tenant("zeta", namespaces=["z"]), broken, tenant("alpha", namespaces=["a"])])
    assert [t.name for t in tenants] == ["alpha", "zeta"]
    assert list(invalid) == ["broken"] and "is not a namespace name" in invalid["broken"]
    ctx = context(tenants=[broken], namespaces=[namespace("ta")])
    assert ctx.invalid_tenants == invalid and ctx.tenants == ()
    found = audit_objects(ctx, broken)
    assert rules_of(found) == ["tenancy/boundary"] and "is not a namespace name" in found[0].message


def test_a_tenants_sync_and_source_are_held_to_the_tenancy_rules_too() -> None:
    ctx = context(tenants=[tenant(sourceURLs=["https://git.example/team-a/*"])], namespaces=[namespace("ta")])
    wrong_applier = sync("s", "ta", account="kubectl-gitops-applier")
    source = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "GitSource",
              "metadata": {"name": "src", "namespace": "ta"}, "spec": {"url": "https://evil.example/x"}}
    found = audit_objects(ctx, wrong_applier, source)
    assert [(f.rule, f.object.kind) for f in found] == [("tenancy/boundary", "Sync"), ("tenancy/boundary", "GitSource")]
    assert "applier:" in found[0].message and "sourceURLs:" in found[1].message
    report = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "AuditReport",
              "metadata": {"name": "kubectl-gitops-audit", "namespace": "ta"}}
    denied = context(tenants=[tenant(kinds={"deny": ["kubectl-gitops.dev/*"]})], namespaces=[namespace("ta")])
    assert audit_objects(denied, report) == []  # our own reports are never a tenant's doing


def test_a_fail_closed_install_as_shaped_is_not_an_exclusion_on_the_real_manifests() -> None:
    from kubectl_gitops.core.install import select
    from kubectl_gitops.engine.audit import shipped_webhooks

    shipped = shipped_webhooks()
    closed = select(shipped, webhook=True, fail_closed=True)
    ctx = context(webhook_configurations=closed, shipped_webhooks=shipped)
    assert [(f.rule, f.message) for f in run_cluster(ctx)] == []
    opened = [dict(c) for c in closed]
    for c in opened:  # the signatures entry left Fail but its scale writes back on it: a lockout
        if c["metadata"]["name"] == "kubectl-gitops-signatures":
            c["webhooks"] = [h for h in c["webhooks"] if h["name"] != "signatures-scale.kubectl-gitops.dev"]
            c["webhooks"][0] = {**c["webhooks"][0], "rules": shipped_rules(shipped)}
    ctx = context(webhook_configurations=opened, shipped_webhooks=shipped)
    assert [f.rule for f in run_cluster(ctx)] == ["webhook/exclusions"]


def shipped_rules(shipped: list[dict]) -> list[dict]:
    return next(h["rules"] for c in shipped for h in c["webhooks"] if h["name"] == "signatures.kubectl-gitops.dev")
