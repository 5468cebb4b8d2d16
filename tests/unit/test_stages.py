import pytest

from kubectl_gitops.core.stages import ADMISSION, DEFINITIONS, RESOURCES, split_stages, stage_of


def obj(api_version: str, kind: str, name: str = "x") -> dict:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}


@pytest.mark.parametrize(
    ("api_version", "kind", "stage"),
    [
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition", DEFINITIONS),
        ("v1", "Namespace", DEFINITIONS),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", DEFINITIONS),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", DEFINITIONS),
        ("storage.k8s.io/v1", "StorageClass", DEFINITIONS),
        ("scheduling.k8s.io/v1", "PriorityClass", DEFINITIONS),
        ("networking.k8s.io/v1", "IngressClass", DEFINITIONS),
        ("node.k8s.io/v1", "RuntimeClass", DEFINITIONS),
        ("rbac.authorization.k8s.io/v1", "Role", RESOURCES),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", RESOURCES),
        ("v1", "ServiceAccount", RESOURCES),
        ("apps/v1", "Deployment", RESOURCES),
        ("gateway.networking.k8s.io/v1", "GatewayClass", RESOURCES),  # from a CRD: needs it Established
        ("example.com/v1", "Namespace", RESOURCES),  # a custom kind that happens to share the name
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", ADMISSION),
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", ADMISSION),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", ADMISSION),
        ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", ADMISSION),
    ],
)
def test_stage_of(api_version, kind, stage):
    assert stage_of(obj(api_version, kind)) == stage


def test_split_stages_keeps_order_within_a_stage():
    objs = [
        obj("apps/v1", "Deployment", "web"),
        obj("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "guard"),
        obj("v1", "Namespace", "shop"),
        obj("v1", "Service", "web"),
        obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
    ]
    stages = split_stages(objs)
    names = [[o["metadata"]["name"] for o in stage] for stage in stages]
    assert names == [["shop", "widgets.example.com"], ["web", "web"], ["guard"]]
    assert stages[1][0]["kind"] == "Deployment"


def test_split_stages_always_returns_three():
    assert split_stages([]) == [[], [], []]
