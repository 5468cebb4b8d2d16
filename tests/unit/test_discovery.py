"""Aggregated discovery (apidiscovery.k8s.io/v2) parsed into the kind lookup table, and CRD kinds added to it."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.core.discovery import (
    DISCOVERY_ACCEPT,
    ResourceInfo,
    ResourceMap,
    from_crd,
    parse_aggregated,
    split_api_version,
)

JSON = dict[str, Any]
RW = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def res(plural: str, kind: str, scope: str, *, group: str = "", version: str = "v1", singular: str = "",
        subresources: list[JSON] | None = None, verbs: list[str] | None = None) -> JSON:
    """One resource entry as the API server writes it in an APIGroupDiscoveryList."""
    out: JSON = {"resource": plural, "responseKind": {"group": group, "kind": kind, "version": version},
                 "scope": scope, "singularResource": singular or kind.lower(), "verbs": verbs or RW}
    if subresources:
        out["subresources"] = subresources
    return out


def sub(name: str, kind: str, *, group: str = "", version: str = "v1", verbs: list[str] | None = None) -> JSON:
    return {"subresource": name, "responseKind": {"group": group, "kind": kind, "version": version},
            "verbs": verbs or ["get", "patch", "update"]}


# GET /api with Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList
CORE: JSON = {
    "kind": "APIGroupDiscoveryList",
    "apiVersion": "apidiscovery.k8s.io/v2",
    "metadata": {},
    "items": [{
        "metadata": {"creationTimestamp": None},
        "versions": [{
            "version": "v1",
            "resources": [
                res("pods", "Pod", "Namespaced", subresources=[
                    sub("status", "Pod"), sub("log", "Pod", verbs=["get"]),
                    sub("eviction", "Eviction", group="policy", verbs=["create"]),
                    sub("exec", "PodExecOptions", verbs=["create", "get"])]),
                res("namespaces", "Namespace", "Cluster", verbs=["create", "delete", "get", "list", "patch",
                                                                 "update", "watch"],
                    subresources=[sub("finalize", "Namespace", verbs=["update"]), sub("status", "Namespace")]),
                res("configmaps", "ConfigMap", "Namespaced"),
                res("secrets", "Secret", "Namespaced"),
                res("services", "Service", "Namespaced", subresources=[sub("proxy", "ServiceProxyOptions")]),
                res("nodes", "Node", "Cluster"),
                # a resource with no kind of its own (as some aggregated APIs list): not a kind
                {"resource": "componentstatuses-legacy", "scope": "Cluster", "verbs": ["get"]},
            ],
            "freshness": "Current",
        }],
    }],
}

# GET /apis (trimmed to apps, a group with two versions, and a CRD group)
APIS: JSON = {
    "kind": "APIGroupDiscoveryList",
    "apiVersion": "apidiscovery.k8s.io/v2",
    "metadata": {},
    "items": [
        {
            "metadata": {"name": "apps", "creationTimestamp": None},
            "versions": [{
                "version": "v1",
                "resources": [
                    res("deployments", "Deployment", "Namespaced", group="apps", subresources=[
                        sub("scale", "Scale", group="autoscaling"), sub("status", "Deployment", group="apps")]),
                    res("statefulsets", "StatefulSet", "Namespaced", group="apps",
                        subresources=[sub("scale", "Scale", group="autoscaling")]),
                    res("controllerrevisions", "ControllerRevision", "Namespaced", group="apps"),
                ],
                "freshness": "Current",
            }],
        },
        {
            "metadata": {"name": "autoscaling", "creationTimestamp": None},
            "versions": [
                {"version": "v2", "resources": [
                    res("horizontalpodautoscalers", "HorizontalPodAutoscaler", "Namespaced",
                        group="autoscaling", version="v2")], "freshness": "Current"},
                {"version": "v1", "resources": [
                    res("horizontalpodautoscalers", "HorizontalPodAutoscaler", "Namespaced",
                        group="autoscaling", version="v1")], "freshness": "Current"},
            ],
        },
        {
            "metadata": {"name": "rbac.authorization.k8s.io", "creationTimestamp": None},
            "versions": [{"version": "v1", "resources": [
                res("clusterroles", "ClusterRole", "Cluster", group="rbac.authorization.k8s.io"),
                res("roles", "Role", "Namespaced", group="rbac.authorization.k8s.io"),
            ], "freshness": "Current"}],
        },
        {
            "metadata": {"name": "cert-manager.io", "creationTimestamp": None},
            "versions": [{"version": "v1", "resources": [
                res("certificates", "Certificate", "Namespaced", group="cert-manager.io", version="v1",
                    subresources=[sub("status", "Certificate", group="cert-manager.io")]),
                res("clusterissuers", "ClusterIssuer", "Cluster", group="cert-manager.io", version="v1",
                    subresources=[sub("status", "ClusterIssuer", group="cert-manager.io")]),
            ], "freshness": "Current"}],
        },
    ],
}

CRD: JSON = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {"name": "v1", "served": True, "storage": True,
             "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
            {"name": "v1beta1", "served": True, "storage": False,
             "schema": {"openAPIV3Schema": {"type": "object"}}},
            {"name": "v1alpha1", "served": False, "storage": False,
             "schema": {"openAPIV3Schema": {"type": "object"}}},
        ],
    },
}


@pytest.fixture()
def rmap() -> ResourceMap:
    return ResourceMap(parse_aggregated(CORE) + parse_aggregated(APIS))


def test_accept_header_asks_for_aggregated_v2() -> None:
    assert DISCOVERY_ACCEPT == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


def test_split_api_version() -> None:
    assert split_api_version("apps/v1") == ("apps", "v1")
    assert split_api_version("v1") == ("", "v1")
    assert split_api_version("cert-manager.io/v1") == ("cert-manager.io", "v1")


def test_core_group_has_no_name() -> None:
    infos = parse_aggregated(CORE)
    pod = next(i for i in infos if i.kind == "Pod")
    assert pod == ResourceInfo("", "v1", "Pod", "pods", True, tuple(RW))
    assert pod.api_version == "v1"
    assert {i.group for i in infos} == {""}


def test_parse_core_kinds_and_scopes() -> None:
    infos = {i.kind: i for i in parse_aggregated(CORE)}
    assert set(infos) == {"Pod", "Namespace", "ConfigMap", "Secret", "Service", "Node"}
    assert infos["Namespace"].namespaced is False
    assert infos["Namespace"].plural == "namespaces"
    assert "deletecollection" not in infos["Namespace"].verbs
    assert infos["Node"].namespaced is False
    assert infos["ConfigMap"].namespaced is True


def test_subresources_are_not_kinds() -> None:
    infos = parse_aggregated(CORE) + parse_aggregated(APIS)
    kinds = {i.kind for i in infos}
    plurals = {i.plural for i in infos}
    assert not kinds & {"Scale", "Eviction", "PodExecOptions", "ServiceProxyOptions"}
    assert not any("/" in p for p in plurals)
    # one entry per (group, version, resource): subresources don't duplicate their parent
    assert sum(1 for i in infos if i.kind == "Deployment") == 1
    assert sum(1 for i in infos if i.kind == "Pod") == 1


def test_parse_apis_groups_and_versions() -> None:
    infos = parse_aggregated(APIS)
    deploy = next(i for i in infos if i.kind == "Deployment")
    assert (deploy.group, deploy.version, deploy.plural, deploy.namespaced) == ("apps", "v1", "deployments", True)
    assert deploy.api_version == "apps/v1"
    hpas = [i.api_version for i in infos if i.kind == "HorizontalPodAutoscaler"]
    assert hpas == ["autoscaling/v2", "autoscaling/v1"]  # server's preference order kept
    cert = next(i for i in infos if i.kind == "Certificate")
    assert cert.api_version == "cert-manager.io/v1"
    issuer = next(i for i in infos if i.kind == "ClusterIssuer")
    assert issuer.namespaced is False


def test_parse_empty_documents() -> None:
    assert parse_aggregated({}) == []
    assert parse_aggregated({"items": None}) == []
    assert parse_aggregated({"items": [{"metadata": {"name": "x"}, "versions": [{"version": "v1"}]}]}) == []


def test_get_and_known(rmap: ResourceMap) -> None:
    info = rmap.get("apps/v1", "Deployment")
    assert info is not None
    assert info.plural == "deployments"
    assert rmap.known("v1", "ConfigMap")
    assert rmap.known("cert-manager.io/v1", "Certificate")
    assert not rmap.known("apps/v1", "ConfigMap")  # right kind, wrong group
    assert not rmap.known("v1", "Deployment")
    assert not rmap.known("example.com/v1", "Widget")
    assert rmap.get("autoscaling/v1", "HorizontalPodAutoscaler") is not None
    assert rmap.get("autoscaling/v2", "HorizontalPodAutoscaler") is not None


def test_get_is_exact_about_the_version(rmap: ResourceMap) -> None:
    assert rmap.get("apps/v1beta2", "Deployment") is None
    assert not rmap.known("cert-manager.io/v1alpha2", "Certificate")


def test_namespaced(rmap: ResourceMap) -> None:
    assert rmap.namespaced("apps/v1", "Deployment") is True
    assert rmap.namespaced("v1", "Namespace") is False
    assert rmap.namespaced("rbac.authorization.k8s.io/v1", "ClusterRole") is False
    assert rmap.namespaced("rbac.authorization.k8s.io/v1", "Role") is True
    assert rmap.namespaced("example.com/v1", "Widget") is None


def test_namespaced_falls_back_to_group_kind_for_another_version(rmap: ResourceMap) -> None:
    # the scope of a kind is the same in every version: answer it even for a version not served
    assert rmap.namespaced("apps/v1beta1", "Deployment") is True
    assert rmap.namespaced("cert-manager.io/v1alpha2", "ClusterIssuer") is False
    assert rmap.namespaced("rbac.authorization.k8s.io/v1beta1", "ClusterRole") is False
    # ... but not across groups
    assert rmap.namespaced("extensions/v1beta1", "Deployment") is None


def test_len_counts_distinct_group_version_kinds(rmap: ResourceMap) -> None:
    # 6 core + 3 apps + 2 autoscaling + 2 rbac + 2 cert-manager
    assert len(rmap) == 15
    doubled = ResourceMap(parse_aggregated(CORE) * 2)
    assert len(doubled) == 6


def test_from_crd_serves_only_served_versions() -> None:
    infos = from_crd(CRD)
    assert infos == [
        ResourceInfo("example.com", "v1", "Widget", "widgets", True),
        ResourceInfo("example.com", "v1beta1", "Widget", "widgets", True),
    ]


def test_from_crd_cluster_scope() -> None:
    crd = {**CRD, "spec": {**CRD["spec"], "scope": "Cluster"}}
    assert all(not i.namespaced for i in from_crd(crd))


def test_with_extra_adds_crd_kinds_without_changing_the_original(rmap: ResourceMap) -> None:
    bigger = rmap.with_extra(from_crd(CRD))
    assert bigger.known("example.com/v1", "Widget")
    assert bigger.known("example.com/v1beta1", "Widget")
    assert not bigger.known("example.com/v1alpha1", "Widget")
    widget = bigger.get("example.com/v1", "Widget")
    assert widget is not None
    assert (widget.plural, widget.namespaced) == ("widgets", True)
    assert bigger.namespaced("example.com/v1alpha1", "Widget") is True  # group-kind fallback
    assert len(bigger) == len(rmap) + 2
    assert bigger.known("apps/v1", "Deployment")
    assert not rmap.known("example.com/v1", "Widget")  # the original map is untouched


def test_with_extra_does_not_override_what_the_server_serves(rmap: ResourceMap) -> None:
    clash = ResourceInfo("apps", "v1", "Deployment", "wrong-plural", False)
    merged = rmap.with_extra([clash])
    info = merged.get("apps/v1", "Deployment")
    assert info is not None
    assert info.plural == "deployments"
    assert info.namespaced is True
