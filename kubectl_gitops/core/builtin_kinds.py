"""The kinds every Kubernetes cluster serves, with their scope: discovery for `build --offline`.

A build decides each object's namespace from its kind's scope (a cluster-scoped object loses
any namespace, a namespaced one gets the Sync's), which a sync asks the API server. CI building
a pull request has no API server, so these tables stand in for it: the built-in kinds of
Kubernetes and kubectl-gitops' own. Kinds defined by CRDs in the same build are known from the
CRDs (core/manifests.py); any other kind fails an offline build by name rather than being
guessed at.
"""

from __future__ import annotations

from typing import Final

from kubectl_gitops.constants import GROUP, VERSION
from kubectl_gitops.core.discovery import ResourceInfo

# (apiVersion, kind, plural) of the namespaced and the cluster-scoped built-in kinds.
_NAMESPACED: Final = (
    ("v1", "ConfigMap", "configmaps"), ("v1", "Secret", "secrets"), ("v1", "Service", "services"),
    ("v1", "ServiceAccount", "serviceaccounts"), ("v1", "Pod", "pods"), ("v1", "PodTemplate", "podtemplates"),
    ("v1", "ReplicationController", "replicationcontrollers"), ("v1", "Endpoints", "endpoints"),
    ("v1", "PersistentVolumeClaim", "persistentvolumeclaims"), ("v1", "ResourceQuota", "resourcequotas"),
    ("v1", "LimitRange", "limitranges"), ("v1", "Event", "events"),
    ("apps/v1", "Deployment", "deployments"), ("apps/v1", "StatefulSet", "statefulsets"),
    ("apps/v1", "DaemonSet", "daemonsets"), ("apps/v1", "ReplicaSet", "replicasets"),
    ("apps/v1", "ControllerRevision", "controllerrevisions"),
    ("batch/v1", "Job", "jobs"), ("batch/v1", "CronJob", "cronjobs"),
    ("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ("autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    ("networking.k8s.io/v1", "Ingress", "ingresses"), ("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    ("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
    ("rbac.authorization.k8s.io/v1", "Role", "roles"), ("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    ("coordination.k8s.io/v1", "Lease", "leases"), ("events.k8s.io/v1", "Event", "events"),
    ("storage.k8s.io/v1", "CSIStorageCapacity", "csistoragecapacities"),
    (f"{GROUP}/{VERSION}", "Sync", "syncs"), (f"{GROUP}/{VERSION}", "GitSource", "gitsources"),
)
_CLUSTER: Final = (
    ("v1", "Namespace", "namespaces"), ("v1", "Node", "nodes"), ("v1", "PersistentVolume", "persistentvolumes"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings"),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions"),
    ("apiregistration.k8s.io/v1", "APIService", "apiservices"),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies"),
    ("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", "validatingadmissionpolicybindings"),
    ("storage.k8s.io/v1", "StorageClass", "storageclasses"), ("storage.k8s.io/v1", "CSIDriver", "csidrivers"),
    ("storage.k8s.io/v1", "CSINode", "csinodes"), ("storage.k8s.io/v1", "VolumeAttachment", "volumeattachments"),
    ("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses"),
    ("node.k8s.io/v1", "RuntimeClass", "runtimeclasses"),
    ("networking.k8s.io/v1", "IngressClass", "ingressclasses"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest", "certificatesigningrequests"),
    ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "flowschemas"),
    ("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration", "prioritylevelconfigurations"),
    (f"{GROUP}/{VERSION}", "Tenant", "tenants"), (f"{GROUP}/{VERSION}", "TrustPolicy", "trustpolicies"),
)


def _info(api_version: str, kind: str, plural: str, namespaced: bool) -> ResourceInfo:
    group, _, version = api_version.rpartition("/")
    return ResourceInfo(group, version, kind, plural, namespaced)


BUILTIN: Final = tuple(_info(*row, namespaced=True) for row in _NAMESPACED) + tuple(
    _info(*row, namespaced=False) for row in _CLUSTER)
"""Every built-in kind as discovery would describe it."""
