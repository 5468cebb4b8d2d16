"""The install (manifests/install) and dev (manifests/dev) builds, as the real `kubectl kustomize` renders them.

These are the properties that keep a cluster from being locked out by its own guard, so they are
tested on the rendered output (what `kubectl gitops install` applies), not on the source files:
every webhook skips kube-system and our namespace by `kubernetes.io/metadata.name`, has no side
effects, a short timeout and an explicit failure policy; the scale entry has no objectSelector
(a Scale never carries the labels); the webhook runs twice, under a PDB, as a restricted pod.
`kubectl kustomize` runs offline, so these stay unit tests (a fraction of a second each build).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.constants import DEFAULT_APPLIER_SA, GROUP, LABEL_SYNC, LABEL_TENANT, SYSTEM_NAMESPACE
from kubectl_gitops.core.install import IMAGE_PLACEHOLDER

ROOT = Path(__file__).resolve().parents[2]
JSON = dict[str, Any]
WEBHOOK_KINDS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
DEV_URL = "https://127.0.0.1:9443"

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl on PATH")


def build(overlay: str) -> list[JSON]:
    proc = subprocess.run(["kubectl", "kustomize", str(ROOT / "manifests" / overlay)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="module")
def install() -> list[JSON]:
    return build("install")


@pytest.fixture(scope="module")
def dev() -> list[JSON]:
    return build("dev")


@pytest.fixture(scope="module", params=["install", "dev"])
def any_build(request: pytest.FixtureRequest, install: list[JSON], dev: list[JSON]) -> list[JSON]:
    return install if request.param == "install" else dev


def of_kind(docs: list[JSON], kind: str) -> list[JSON]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[JSON], kind: str, name: str) -> JSON:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def webhooks(docs: list[JSON]) -> Iterator[tuple[str, JSON]]:
    for kind in WEBHOOK_KINDS:
        for config in of_kind(docs, kind):
            for hook in config["webhooks"]:
                yield kind, hook


def is_tenancy(hook: JSON) -> bool:
    return str(hook["name"]).startswith("tenan")


def is_signatures(hook: JSON) -> bool:
    return hook["name"] in ("signatures.kubectl-gitops.dev", "trustpolicies.kubectl-gitops.dev")


def path_of(kind: str, hook: JSON) -> str:
    if kind.startswith("Validating"):
        if is_signatures(hook):
            return "/signatures"
        return "/tenancy" if is_tenancy(hook) else "/validate"
    return "/mutate"


def is_scale(hook: JSON) -> bool:
    return any(res.endswith("/scale") for rule in hook["rules"] for res in rule["resources"])


# --- every webhook, in both builds ---------------------------------------------------------------


def test_both_webhook_configurations_exist(any_build: list[JSON]) -> None:
    one(any_build, "ValidatingWebhookConfiguration", "kubectl-gitops-drift-guard")
    one(any_build, "ValidatingWebhookConfiguration", "kubectl-gitops-tenancy")
    one(any_build, "MutatingWebhookConfiguration", "kubectl-gitops-stamps")
    one(any_build, "ValidatingWebhookConfiguration", "kubectl-gitops-signatures")
    assert len(list(webhooks(any_build))) == 10


def test_every_webhook_skips_the_control_plane_and_itself(any_build: list[JSON]) -> None:
    for _, hook in webhooks(any_build):
        expressions = hook["namespaceSelector"]["matchExpressions"]
        assert expressions[0] == {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                  "values": ["kube-system", SYSTEM_NAMESPACE]}, hook["name"]
        # the only other selector: the tenant label, which narrows (never widens) what is sent
        assert expressions[1:] in ([], [{"key": LABEL_TENANT, "operator": "Exists"}]), hook["name"]
        assert "matchLabels" not in hook["namespaceSelector"]


def test_every_webhook_is_side_effect_free_fast_and_v1(any_build: list[JSON]) -> None:
    for _, hook in webhooks(any_build):
        assert hook["sideEffects"] == "None", hook["name"]
        assert 1 <= hook["timeoutSeconds"] <= 5, hook["name"]
        assert hook["admissionReviewVersions"] == ["v1"], hook["name"]
        assert hook["name"].endswith(f".{GROUP}")


def test_every_webhook_fails_open(any_build: list[JSON]) -> None:
    """Decided in docs/webhook.md: the guard is a second wall, the Sync reverts drift anyway, and a
    webhook outage must never block the applier, the garbage collector or every autoscaler."""
    for _, hook in webhooks(any_build):
        assert hook["failurePolicy"] == "Ignore", hook["name"]


def test_object_selector_is_the_ownership_label_or_absent_for_scale(any_build: list[JSON]) -> None:
    for _, hook in webhooks(any_build):
        if is_tenancy(hook) or is_signatures(hook):
            # labels are the requester's: tenancy sees all; signatures select by matchConditions
            assert "objectSelector" not in hook, hook["name"]
        elif is_scale(hook):
            # A Scale carries no labels: an objectSelector here would silently disable the check.
            assert "objectSelector" not in hook, hook["name"]
        else:
            assert hook["objectSelector"] == {"matchExpressions": [{"key": LABEL_SYNC, "operator": "Exists"}]}


def test_drift_guard_rules(any_build: list[JSON]) -> None:
    guard = one(any_build, "ValidatingWebhookConfiguration", "kubectl-gitops-drift-guard")["webhooks"]
    main = [h for h in guard if not is_scale(h)]
    scale = [h for h in guard if is_scale(h)]
    assert len(main) == 1
    assert len(scale) == 1
    assert main[0]["rules"] == [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["UPDATE", "DELETE"],
                                 "resources": ["*"], "scope": "*"}]
    assert scale[0]["rules"] == [{"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["UPDATE"],
                                  "resources": ["*/scale"], "scope": "*"}]


def test_stamps_rules(any_build: list[JSON]) -> None:
    hook, *tenant_labels = one(any_build, "MutatingWebhookConfiguration", "kubectl-gitops-stamps")["webhooks"]
    assert [h["name"] for h in tenant_labels] == [f"tenant-label.{GROUP}", f"tenant-namespace.{GROUP}"]
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hook["rules"][0]["resources"] == ["*"]
    assert hook["reinvocationPolicy"] in ("IfNeeded", "Never")


def test_no_serving_secret_and_nothing_self_owned(any_build: list[JSON]) -> None:
    assert of_kind(any_build, "Secret") == [], "the serving Secret is made by `kubectl gitops install`"
    for doc in any_build:
        # Carrying the ownership label would put the install under its own drift guard.
        assert LABEL_SYNC not in (doc["metadata"].get("labels") or {}), doc["metadata"]["name"]


def test_namespace_crds_and_identities(any_build: list[JSON]) -> None:
    one(any_build, "Namespace", SYSTEM_NAMESPACE)
    one(any_build, "CustomResourceDefinition", f"gitsources.{GROUP}")
    one(any_build, "CustomResourceDefinition", f"syncs.{GROUP}")
    for name in (DEFAULT_APPLIER_SA, "kubectl-gitops-webhook"):
        assert one(any_build, "ServiceAccount", name)["metadata"]["namespace"] == SYSTEM_NAMESPACE


def test_bindings_point_at_what_the_build_holds(any_build: list[JSON]) -> None:
    roles = {r["metadata"]["name"] for r in of_kind(any_build, "ClusterRole")}
    accounts = {(a["metadata"]["namespace"], a["metadata"]["name"]) for a in of_kind(any_build, "ServiceAccount")}
    bindings = of_kind(any_build, "ClusterRoleBinding")
    assert {b["roleRef"]["name"] for b in bindings} == {
        DEFAULT_APPLIER_SA, "kubectl-gitops-webhook", "kubectl-gitops-webhook-scale-parents",
        "kubectl-gitops-controller", "kubectl-gitops-operator", "kubectl-gitops-tenant-operator"}
    for binding in bindings:
        assert binding["roleRef"]["name"] in roles
        for subject in binding["subjects"]:
            assert (subject["namespace"], subject["name"]) in accounts


def test_operator_may_impersonate_only_the_applier(any_build: list[JSON]) -> None:
    rules = one(any_build, "ClusterRole", "kubectl-gitops-operator")["rules"]
    impersonation = [r for r in rules if "impersonate" in r["verbs"]]
    assert impersonation == [{"apiGroups": [""], "resources": ["serviceaccounts"],
                              "resourceNames": [DEFAULT_APPLIER_SA], "verbs": ["impersonate"]}]
    crud = next(r for r in rules if "syncs" in r.get("resources", []))
    assert {"gitsources", "syncs"} <= set(crud["resources"])
    assert {"get", "list", "create", "update", "patch", "delete"} <= set(crud["verbs"])


def test_webhook_may_read_syncs_and_get_scale_parents(any_build: list[JSON]) -> None:
    rules = one(any_build, "ClusterRole", "kubectl-gitops-webhook")["rules"]
    assert any(r["apiGroups"] == [GROUP] and "syncs" in r["resources"] and "list" in r["verbs"] for r in rules)
    assert {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]} in rules
    assert not any(set(r["verbs"]) - {"get", "list", "watch"} for r in rules), "the webhook only reads"


# --- the in-cluster webhook (install) ----------------------------------------------------------


def test_install_webhooks_call_the_service(install: list[JSON]) -> None:
    service = one(install, "Service", "kubectl-gitops-webhook")
    ports = {p["port"] for p in service["spec"]["ports"]}
    for kind, hook in webhooks(install):
        ref = hook["clientConfig"]["service"]
        assert ref["namespace"] == SYSTEM_NAMESPACE
        assert ref["name"] == service["metadata"]["name"]
        assert ref["port"] == 443
        assert ref["port"] in ports
        assert ref["path"] == path_of(kind, hook)
        assert "url" not in hook["clientConfig"]
        assert "caBundle" in hook["clientConfig"], "placeholder for `kubectl gitops install` to fill"


def test_service_reaches_the_container_port(install: list[JSON]) -> None:
    service = one(install, "Service", "kubectl-gitops-webhook")
    deployment = one(install, "Deployment", "kubectl-gitops-webhook")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    (port,) = service["spec"]["ports"]
    assert port["port"] == 443
    assert named[port["targetPort"]] == 8443
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_webhook_deployment(install: list[JSON]) -> None:
    deployment = one(install, "Deployment", "kubectl-gitops-webhook")
    assert deployment["metadata"]["namespace"] == SYSTEM_NAMESPACE
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "kubectl-gitops-webhook"
    (container,) = pod["containers"]
    assert container["image"] == f"{IMAGE_PLACEHOLDER}@sha256:{'0' * 64}"  # never a tag: install --image sets it
    assert container["command"] + container["args"] == [
        "kubectl-gitops", "webhook", "serve", "--cert-dir", "/certs", "--port", "8443"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert (get["path"], get["scheme"], get["port"]) == (path, "HTTPS", "https")
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/certs"]]["secret"]["secretName"] == "kubectl-gitops-webhook-tls"


def test_webhook_pod_is_restricted(install: list[JSON]) -> None:
    """Pod Security "restricted", which the namespace also enforces."""
    pod = one(install, "Deployment", "kubectl-gitops-webhook")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "add" not in context["capabilities"]
        assert context["readOnlyRootFilesystem"] is True
        assert context.get("privileged") is not True
    labels = one(install, "Namespace", SYSTEM_NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_webhook_replicas_spread_softly(install: list[JSON]) -> None:
    pod = one(install, "Deployment", "kubectl-gitops-webhook")["spec"]["template"]["spec"]
    assert all(c["whenUnsatisfiable"] == "ScheduleAnyway" for c in pod["topologySpreadConstraints"])
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    assert pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]


def test_pdb_keeps_one_webhook_up(install: list[JSON]) -> None:
    pdb = one(install, "PodDisruptionBudget", "kubectl-gitops-webhook")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["metadata"]["namespace"] == SYSTEM_NAMESPACE
    assert pdb["spec"]["minAvailable"] == 1
    pod_labels = one(install, "Deployment", "kubectl-gitops-webhook")["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


# --- the local webhook (dev) -------------------------------------------------------------------


def test_dev_webhooks_call_the_local_process(dev: list[JSON]) -> None:
    for kind, hook in webhooks(dev):
        assert hook["clientConfig"]["url"] == DEV_URL + path_of(kind, hook)
        assert "service" not in hook["clientConfig"]


def test_dev_runs_no_webhook_in_cluster(dev: list[JSON]) -> None:
    for kind in ("Deployment", "Service", "PodDisruptionBudget"):
        assert of_kind(dev, kind) == []


def test_dev_is_the_install_minus_the_in_cluster_webhook(install: list[JSON], dev: list[JSON]) -> None:
    def names(docs: list[JSON]) -> set[tuple[str, str]]:
        return {(d["kind"], d["metadata"]["name"]) for d in docs}

    dropped = {(k, "kubectl-gitops-webhook") for k in ("Deployment", "Service", "PodDisruptionBudget")}
    dropped |= {("Deployment", "kubectl-gitops-controller"), ("Service", "kubectl-gitops-controller-metrics")}
    assert names(dev) == names(install) - dropped
