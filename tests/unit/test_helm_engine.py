"""engine/helm.py's pieces that need no cluster: values from ConfigMaps/Secrets, CRD policies, API versions."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops.core import helm as core
from kubectl_gitops.core.discovery import ResourceInfo, ResourceMap
from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.core.spec import parse_sync
from kubectl_gitops.engine.helm import _crds, api_versions, merged_values


class Reader:
    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects

    def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> Any:
        return self.objects.get((info.kind, name))


def spec(chart: dict[str, Any]) -> Any:
    body = {"sourceRef": {"kind": "HelmRepository", "name": "c"}, "chart": {"name": "app", **chart}}
    return parse_sync({"metadata": {"name": "app", "namespace": "ns"}, "spec": body})


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "data": data}


def secret(name: str, **data: str) -> dict[str, Any]:
    return {"kind": "Secret", "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_values_from_merge_in_order_then_inline_values_win() -> None:
    reader = Reader({("ConfigMap", "base"): cm("base", **{"values.yaml": "a: 1\nimage: {repo: r, tag: '1'}\n"}),
                     ("ConfigMap", "env"): cm("env", custom="image: {tag: '2'}\nb: 2\n"),
                     ("Secret", "auth"): secret("auth", token="s3cret")})
    values, secrets = merged_values(reader, spec({  # type: ignore[arg-type]
        "valuesFrom": [{"kind": "ConfigMap", "name": "base"},
                       {"kind": "ConfigMap", "name": "env", "valuesKey": "custom"},
                       {"kind": "Secret", "name": "auth", "valuesKey": "token", "targetPath": "auth.token"},
                       {"kind": "ConfigMap", "name": "missing", "optional": True}],
        "values": {"b": 3}}))
    assert values == {"a": 1, "image": {"repo": "r", "tag": "2"}, "b": 3, "auth": {"token": "s3cret"}}
    assert secrets == ("s3cret",)


@pytest.mark.parametrize(("objects", "error"), [
    ({}, "valuesFrom ConfigMap ns/v not found"),
    ({("ConfigMap", "v"): cm("v", other="a: 1")}, "valuesFrom ConfigMap ns/v has no key 'values.yaml'"),
    ({("ConfigMap", "v"): cm("v", **{"values.yaml": "[1, 2]"})},
     "valuesFrom ConfigMap ns/v key values.yaml: values must be a mapping (key: value), not a list"),
])
def test_values_from_errors(objects: dict[tuple[str, str], dict[str, Any]], error: str) -> None:
    with pytest.raises(BuildFailed) as err:
        merged_values(Reader(objects), spec({"valuesFrom": [{"kind": "ConfigMap", "name": "v"}]}))  # type: ignore[arg-type]
    assert str(err.value) == error


CRD_STREAM = """---
# Source: app/crds/a.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: as.example.com}
---
# Source: app/crds/b.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: bs.example.com}
"""
OURS = {"metadata": {"labels": {"kubectl-gitops.dev/sync": "app", "kubectl-gitops.dev/sync-namespace": "ns"}}}


@pytest.mark.parametrize(("policy", "names"), [
    ("Create", ["bs.example.com", "cs.example.com"]),  # as: someone else's, left alone
    ("CreateReplace", ["as.example.com", "bs.example.com", "cs.example.com"]),
])
def test_crd_policies_and_crds_are_never_pruned(policy: str, names: list[str]) -> None:
    crds = core.split_rendered(CRD_STREAM + CRD_STREAM.replace("bs.", "cs.").replace("b.yaml", "c.yaml")
                               .replace("as.", "xs.").replace("a.yaml", "x.yaml"), "app").crds
    crds = tuple(m for m in crds if m.obj["metadata"]["name"] != "xs.example.com")
    reader = Reader({("CustomResourceDefinition", "as.example.com"): {"metadata": {}},
                     ("CustomResourceDefinition", "bs.example.com"): OURS})
    out = _crds(reader, spec({"installCRDs": policy}), crds)  # type: ignore[arg-type]
    assert sorted(m.obj["metadata"]["name"] for m in out) == names
    assert all(m.obj["metadata"]["annotations"]["kubectl-gitops.dev/prune"] == "disabled" for m in out)


def test_api_versions_name_groups_and_kinds() -> None:
    resources = ResourceMap([ResourceInfo("apps", "v1", "Deployment", "deployments", True),
                             ResourceInfo("", "v1", "ConfigMap", "configmaps", True)])
    assert api_versions(resources) == ["apps/v1", "apps/v1/Deployment", "v1", "v1/ConfigMap"]


class RepoKube:
    """A HelmRepository to read, and a record of every status write."""

    def __init__(self, url: str) -> None:
        self.obj = {"metadata": {"name": "charts", "namespace": "a-one"}, "spec": {"url": url}}
        self.patches: list[Any] = []

    def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> Any:
        return self.obj if info.kind == "HelmRepository" else None

    def merge_patch(self, *args: Any, **kwargs: Any) -> Any:
        self.patches.append(args)
        return {}


def test_a_tenants_chart_repository_must_match_its_source_urls_before_any_request() -> None:
    from kubectl_gitops.core import lockdown
    from kubectl_gitops.core.tenant import parse_tenant
    from kubectl_gitops.engine.helm import fetch_from_repository

    tenant = parse_tenant({"metadata": {"name": "a"}, "spec": {
        "namespaces": ["a-one"], "people": {"users": ["alice"]}, "sourceURLs": ["https://charts.example/team-a/*"]}})

    def check(repo: core.HelmRepoSpec) -> None:
        lockdown.raise_if(tenant, "a-one/app", lockdown.check_url(tenant, repo.key, repo.url), "before fetching")

    kube = RepoKube("http://169.254.169.254/latest")  # would be a request to the machine's metadata service
    with pytest.raises(lockdown.TenantViolation, match="Tenant a refuses Sync a-one/app before fetching"):
        fetch_from_repository(kube, "a-one", "charts", core.ChartSpec(name="app"), check)  # type: ignore[arg-type]
    assert kube.patches == []


def test_a_chart_in_a_git_tree(tmp_path: Path) -> None:
    from kubectl_gitops.engine.helm import _chart_in
    from kubectl_gitops.engine.source import Tree

    (tmp_path / "charts" / "app").mkdir(parents=True)
    (tmp_path / "plain").mkdir()
    (tmp_path / "charts" / "app" / "Chart.yaml").write_text("apiVersion: v2\nname: app\nversion: 1.2.3\n")
    tree = Tree(tmp_path, "main@sha1:abc", "abc")

    def at(path: str, name: str = "app") -> Any:
        body = {"sourceRef": {"name": "src"}, "path": path, "chart": {"name": name}}
        return _chart_in(parse_sync({"metadata": {"name": "s", "namespace": "ns"}, "spec": body}), tree)

    chart = at("charts/app")
    assert (chart.name, chart.version, chart.identity, chart.git_revision) == (
        "app", "1.2.3", "git:abc:charts/app", "main@sha1:abc")
    with pytest.raises(BuildFailed, match=r"path plain .*no Chart\.yaml: not a chart directory"):
        at("plain")
    with pytest.raises(BuildFailed, match="the chart there is 'app', not 'other'"):
        at("charts/app", "other")
    with pytest.raises(BuildFailed, match="points outside the source tree"):
        at("../etc")
