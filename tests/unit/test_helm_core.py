"""The pure Helm rules (core/helm.py): spec, values, index and version choice, rendered stream, hooks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from kubectl_gitops.core import helm
from kubectl_gitops.core.errors import BuildFailed, SourceFailed
from kubectl_gitops.core.spec import InvalidSpec, parse_sync

WHERE = "Sync ns/app"


def sync(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "app", "namespace": "ns"}, "spec": spec}


# ---------------------------------------------------------------- spec


def test_chart_section_defaults() -> None:
    spec = parse_sync(sync({"sourceRef": {"kind": "HelmRepository", "name": "charts"}, "chart": {"name": "app"}}))
    assert spec.source_kind == "HelmRepository"
    assert spec.chart == helm.ChartSpec(name="app", version="*", install_crds="Create")


def test_a_sync_without_chart_is_unchanged() -> None:
    spec = parse_sync(sync({"sourceRef": {"name": "src"}}))
    assert spec.chart is None and spec.source_kind == "GitSource"


@pytest.mark.parametrize(("chart", "error"), [
    ({"name": "app", "installCRDs": "Always"}, "installCRDs must be one of Create, CreateReplace, Skip"),
    ({"name": "app", "releaseName": "Bad_Name"}, "is not a release name"),
    ({"name": "app", "releaseName": "a" * 54}, "is not a release name"),
    ({"name": "app", "values": ["a"]}, "spec.chart.values must be a mapping"),
    ({"name": "app", "valuesFrom": [{"kind": "Pod", "name": "x"}]}, "kind must be ConfigMap or Secret"),
    ({"name": "app", "valuesFrom": [{"kind": "ConfigMap"}]}, "needs a kind (ConfigMap or Secret) and a name"),
    ({"name": "app", "valuesFrom": [{"name": "x", "targetPath": "a..b"}]}, "targetPath 'a..b'"),
    ({"name": "App Name"}, "is not a chart name"),
    ("app", "spec.chart must be an object"),
])
def test_bad_chart_sections_name_the_field(chart: Any, error: str) -> None:
    with pytest.raises(InvalidSpec, match=r"Sync ns/app") as err:
        parse_sync(sync({"sourceRef": {"kind": "HelmRepository", "name": "charts"}, "chart": chart}))
    assert error in str(err.value)


def test_a_helm_repository_source_needs_a_chart_name() -> None:
    with pytest.raises(InvalidSpec, match=r"needs spec\.chart\.name"):
        parse_sync(sync({"sourceRef": {"kind": "HelmRepository", "name": "charts"}}))


def test_unknown_source_kind_is_refused() -> None:
    with pytest.raises(InvalidSpec, match=r"sourceRef\.kind must be GitSource or HelmRepository"):
        parse_sync(sync({"sourceRef": {"kind": "Bucket", "name": "b"}}))


@pytest.mark.parametrize(("url", "oci"), [("https://charts.example.com/", False), ("oci://r.example/charts", True)])
def test_helm_repository(url: str, oci: bool) -> None:
    repo = helm.parse_helm_repository(helm.helm_repository("charts", "ns", url, interval="5m"))
    assert repo.oci is oci and repo.interval == 300 and not repo.url.endswith("/")


@pytest.mark.parametrize("url", ["ftp://x", "charts.example.com", "", "https://"])
def test_helm_repository_url_must_be_http_or_oci(url: str) -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.url must be an http"):
        helm.helm_repository("charts", "ns", url)


# ---------------------------------------------------------------- values


def test_merge_values_is_helms_merge() -> None:
    base = {"image": {"repo": "a", "tag": "1"}, "list": [1, 2], "keep": True}
    overlay = {"image": {"tag": "2"}, "list": [3], "new": None}
    merged = helm.merge_values(base, overlay)
    assert merged == {"image": {"repo": "a", "tag": "2"}, "list": [3], "keep": True, "new": None}
    assert base["image"] == {"repo": "a", "tag": "1"}  # inputs untouched


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text", "string"), ("3", "number")])
def test_values_that_are_not_a_mapping_are_refused(text: str, kind: str) -> None:
    what = "valuesFrom ConfigMap ns/v key values.yaml: values must be a mapping"
    with pytest.raises(BuildFailed, match=rf"{re.escape(what)}.*{kind}"):
        helm.parse_values(text, "valuesFrom ConfigMap ns/v key values.yaml")


def test_values_empty_and_invalid() -> None:
    assert helm.parse_values("", "x") == {} and helm.parse_values("# nothing\n", "x") == {}
    with pytest.raises(BuildFailed, match="x: invalid YAML"):
        helm.parse_values("a: [", "x")


def test_target_path_and_scalars() -> None:
    assert helm.at_path(helm.target_parts("a.b\\.c.d", WHERE), 1) == {"a": {"b.c": {"d": 1}}}
    assert [helm.scalar(s) for s in ("true", "false", "42", "0", "007", "1.5", "x")] == \
        [True, False, 42, 0, "007", "1.5", "x"]


def test_values_digest_ignores_key_order_and_sees_changes() -> None:
    assert helm.values_digest({"a": 1, "b": {"c": 2}}) == helm.values_digest({"b": {"c": 2}, "a": 1})
    assert helm.values_digest({"a": 1}) != helm.values_digest({"a": "1"})


def test_revision_strings() -> None:
    assert helm.revision("app", "1.2.3", "ab") == "app@1.2.3+values:sha256:ab"
    assert helm.revision("app", "1.2.3", "ab", "main@sha1:cd") == "app@1.2.3+values:sha256:ab+git:main@sha1:cd"


# ---------------------------------------------------------------- repositories

INDEX = """
apiVersion: v1
entries:
  app:
    - {version: 1.0.0, urls: [app-1.0.0.tgz], digest: aa}
    - {version: 1.5.0, urls: [app-1.5.0.tgz]}
    - {version: 2.0.0-rc.1, urls: [app-2.0.0-rc.1.tgz]}
    - {version: 2.1.0, urls: [app-2.1.0.tgz]}
  other: []
"""


@pytest.mark.parametrize(("constraint", "version"), [
    ("*", "2.1.0"), (">=1.0.0 <2.0.0", "1.5.0"), ("1.0.0", "1.0.0"), ("~1.0", "1.0.0"), (">=2.0.0-0", "2.1.0"),
    ("2.0.0-rc.1", "2.0.0-rc.1"),
])
def test_pick_version(constraint: str, version: str) -> None:
    entries = helm.parse_index(INDEX, "repo")
    assert helm.pick_version("app", entries["app"], constraint, "repo").version == version


def test_unknown_chart_and_version_name_what_exists() -> None:
    entries = helm.parse_index(INDEX, "repo")
    with pytest.raises(SourceFailed, match="chart 'nope' not found in HelmRepository ns/charts"):
        helm.pick_version("nope", entries.get("nope"), "*", "HelmRepository ns/charts")
    with pytest.raises(SourceFailed, match=r"no version of chart 'app' matches '>=3' in r \(available: 2.1.0, "
                                           r"2.0.0-rc.1, 1.5.0, 1.0.0\)"):
        helm.pick_version("app", entries["app"], ">=3", "r")


@pytest.mark.parametrize("text", ["a: [", "- 1", "apiVersion: v1\n"])
def test_a_broken_index_is_a_source_failure(text: str) -> None:
    with pytest.raises(SourceFailed, match=r"repo: index\.yaml"):
        helm.parse_index(text, "repo")


def test_oci_tags_and_layers() -> None:
    assert [v.version for v in helm.oci_tags(["1.0.0", "1.0.0_build.1"])] == ["1.0.0", "1.0.0+build.1"]
    digest = "sha256:" + "a" * 64
    manifest = {"layers": [{"mediaType": "application/x", "digest": digest},
                           {"mediaType": helm.OCI_CHART_LAYER, "digest": digest, "size": 10}]}
    assert helm.chart_layer(manifest, "r") == (digest, 10)
    with pytest.raises(SourceFailed, match="no Helm chart layer"):
        helm.chart_layer({"layers": [{"mediaType": "application/x", "digest": digest}]}, "r")


# ---------------------------------------------------------------- rendered stream and hooks

STREAM = """---
# Source: app/crds/widgets.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
---
# Source: app/templates/config.yaml
apiVersion: v1
kind: ConfigMap
metadata: {name: c}
---
# Source: app/templates/hooks.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: late
  annotations: {helm.sh/hook: "pre-upgrade", helm.sh/hook-weight: "5", helm.sh/hook-delete-policy: hook-succeeded}
---
# Source: app/templates/hooks.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: early
  annotations: {helm.sh/hook: "pre-install,pre-upgrade", helm.sh/hook-weight: "-1"}
---
# Source: app/templates/tests.yaml
apiVersion: v1
kind: Pod
metadata:
  name: t
  annotations: {helm.sh/hook: test}
"""


def test_split_rendered_keeps_sources_and_sorts_out_crds_and_hooks() -> None:
    out = helm.split_rendered(STREAM, "app-1.0.0")
    assert [m.obj["metadata"]["name"] for m in out.objects] == ["c"]
    assert out.objects[0].source == "app/templates/config.yaml"
    assert [m.obj["metadata"]["name"] for m in out.crds] == ["widgets.example.com"]
    names = {h.obj["metadata"]["name"]: h for h in out.hooks}
    assert set(names) == {"late", "early"}  # the test hook is dropped
    assert names["late"].delete_policies == {"hook-succeeded"}
    assert names["early"].delete_policies == {"before-hook-creation"}
    assert [h.obj["metadata"]["name"] for h in helm.hooks_for(out.hooks, "pre-upgrade")] == ["early", "late"]
    assert [h.obj["metadata"]["name"] for h in helm.hooks_for(out.hooks, "pre-install")] == ["early"]
    assert helm.hooks_for(out.hooks, "post-install") == []


@pytest.mark.parametrize(("annotations", "error"), [
    ('{helm.sh/hook: pre-install, helm.sh/hook-weight: "heavy"}', "hook-weight 'heavy' is not an integer"),
    ("{helm.sh/hook: pre-install, helm.sh/hook-delete-policy: sometimes}", "unknown helm.sh/hook-delete-policy"),
])
def test_bad_hook_annotations_name_the_template(annotations: str, error: str) -> None:
    stream = f"---\n# Source: app/templates/h.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: h\n" \
             f"  annotations: {annotations}\n"
    with pytest.raises(BuildFailed, match=r"app/templates/h\.yaml") as err:
        helm.split_rendered(stream, "app")
    assert error in str(err.value)


def test_template_errors_name_chart_version_and_template() -> None:
    err = helm.template_error("Error: execution error at (app/templates/bad.yaml:1:3): tag is required\n"
                              "Use --debug flag to render out invalid YAML\n", "app", "1.0.0")
    assert str(err) == ("chart app 1.0.0 failed to render: execution error at (app/templates/bad.yaml:1:3): "
                        "tag is required")


def test_the_object_limit_applies_to_a_rendering() -> None:
    from dataclasses import replace

    from kubectl_gitops.core.limits import DEFAULT_LIMITS

    with pytest.raises(BuildFailed, match=r"app-1\.0\.0: the rendering has more than 2 objects"):
        helm.split_rendered(STREAM, "app-1.0.0", replace(DEFAULT_LIMITS, max_objects=2))
