"""Apply stages: which objects must exist before others can be written.

Like Flux's server-side apply, objects go in three waves:

0. definitions the rest depends on: CustomResourceDefinitions (the caller waits for them to be
   Established before stage 1, or the API server rejects their custom resources), Namespaces
   (namespaced objects need them), and cluster-wide RBAC and class objects from built-in API groups
   (ClusterRole, ClusterRoleBinding, StorageClass, PriorityClass, IngressClass, RuntimeClass).
   Class kinds that come from CRDs (GatewayClass, VolumeSnapshotClass, ...) are *not* here: their
   CRD may be in this very stage and not yet Established.
1. everything else, including namespaced RBAC (Role, RoleBinding, ServiceAccount): it lives in a
   Namespace, so it cannot go first.
2. admission webhooks and admission policies, last: registering a webhook before its Service and
   Deployment exist would make the API server call a backend that is not there, failing (or, with
   `failurePolicy: Fail`, blocking) the writes of stage 1 itself.

Order inside a stage is kept as rendered, so output stays predictable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from kubectl_gitops.core.objects import split_api_version

DEFINITIONS: Final = 0
RESOURCES: Final = 1
ADMISSION: Final = 2
STAGE_NAMES: Final = ("definitions", "resources", "admission")

_STAGE_ZERO: Final = frozenset(
    {
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("", "Namespace"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("networking.k8s.io", "IngressClass"),
        ("node.k8s.io", "RuntimeClass"),
    }
)
_ADMISSION_GROUP: Final = "admissionregistration.k8s.io"
_ADMISSION_KINDS: Final = frozenset(
    {
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
    }
)


def stage_of(obj: Mapping[str, Any]) -> int:
    """0, 1 or 2 (see the module docstring). Decided by group and kind, never by name."""
    group, _ = split_api_version(str(obj.get("apiVersion", "")))
    kind = str(obj.get("kind", ""))
    if (group, kind) in _STAGE_ZERO:
        return DEFINITIONS
    if group == _ADMISSION_GROUP and kind in _ADMISSION_KINDS:
        return ADMISSION
    return RESOURCES


def split_stages(objs: Iterable[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Always three lists (some may be empty), index = stage, input order kept within each."""
    stages: list[list[dict[str, Any]]] = [[], [], []]
    for obj in objs:
        stages[stage_of(obj)].append(obj)
    return stages
