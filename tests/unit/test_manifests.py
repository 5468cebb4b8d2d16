import pytest

from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.core.manifests import (
    Manifest,
    apply_target_namespace,
    check_duplicates,
    check_known_kinds,
    crd_scopes,
    default_namespace,
    parse_documents,
    validate,
)

APP = """\
# leading comment
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  released: 2024-01-01
  enabled: "true"
---
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
"""

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"kind": "Widget", "plural": "widgets"},
        "versions": [{"name": "v1", "served": True, "storage": True}, {"name": "v1beta1", "served": True}],
    },
}

BUILTIN = {
    ("v1", "ConfigMap"): True,
    ("v1", "Namespace"): False,
    ("apps/v1", "Deployment"): True,
    ("v1", "Service"): True,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): False,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): True,
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"): False,
}


def known(api_version: str, kind: str) -> bool | None:
    return BUILTIN.get((api_version, kind))


def m(obj: dict, source: str = "app.yaml", index: int = 0) -> Manifest:
    return Manifest(obj, source, index)


def test_parse_multi_document_yaml_skips_empty_docs_and_counts_them():
    manifests = parse_documents(APP, "apps/app.yaml")
    assert [x.obj["kind"] for x in manifests] == ["ConfigMap", "Deployment"]
    assert [x.index for x in manifests] == [0, 2]
    assert manifests[1].location == "apps/app.yaml document 3"


def test_timestamps_stay_strings():
    cm = parse_documents(APP, "app.yaml")[0].obj
    assert cm["data"]["released"] == "2024-01-01"


def test_non_string_keys_become_strings():
    (doc,) = parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  on: x\n  1: y\n", "a.yaml")
    assert doc.obj["data"] == {"true": "x", "1": "y"}


def test_yaml_error_names_file_document_and_line():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [unclosed\n"
    with pytest.raises(BuildFailed) as err:
        parse_documents(text, "base/cm.yaml")
    message = str(err.value)
    assert "base/cm.yaml document 2" in message
    assert "line " in message
    assert "invalid YAML" in message


def test_tab_indentation_error_points_at_the_line():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: a\n"
    with pytest.raises(BuildFailed, match=r"cm.yaml document 1, line 4"):
        parse_documents(text, "cm.yaml")


def test_duplicate_key_in_a_mapping_is_an_error():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  x: '1'\n  x: '2'\n"
    with pytest.raises(BuildFailed, match=r"'x' is defined twice"):
        parse_documents(text, "cm.yaml")


def test_merge_keys_still_work():
    text = "base: &b {a: '1'}\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  <<: *b\n  c: '2'\n"
    (doc,) = parse_documents(text, "cm.yaml")
    assert doc.obj["data"] == {"a": "1", "c": "2"}


def test_list_kinds_are_flattened():
    text = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
---
apiVersion: v1
kind: ConfigMapList
items:
- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}
"""
    manifests = parse_documents(text, "list.yaml")
    assert [x.obj["metadata"]["name"] for x in manifests] == ["a", "b", "c"]
    assert manifests[1].location == "list.yaml document 1 item 2"
    assert manifests[2].index == 1


def test_json_file():
    text = '{\n\t"apiVersion": "v1",\n\t"kind": "ConfigMap",\n\t"metadata": {"name": "j"}\n}\n'
    (doc,) = parse_documents(text, "cm.json")
    assert doc.obj["metadata"]["name"] == "j"
    with pytest.raises(BuildFailed, match=r"cm.json document 1, line 2: invalid JSON"):
        parse_documents('{\n  "a": ,\n}', "cm.json")
    assert parse_documents("  \n", "empty.json") == []


def test_validate_accepts_good_objects():
    validate(parse_documents(APP, "app.yaml"))
    validate(
        [
            m(
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": "system:aggregate-to-view"},
                }
            )
        ]
    )


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (["a"], "expected a Kubernetes object"),
        ({"kind": "ConfigMap", "metadata": {"name": "a"}}, "apiVersion is missing"),
        ({"apiVersion": "a/b/c", "kind": "X", "metadata": {"name": "a"}}, "not <group>/<version>"),
        ({"apiVersion": "v1", "metadata": {"name": "a"}}, "kind is missing"),
        ({"apiVersion": "v1", "kind": "ConfigMap"}, "metadata is missing"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}, "metadata.name is missing"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": 5}}, "metadata.name is missing"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "My_Config"}}, "not a valid name"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a" * 254}}, "longer than 253"),
        ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "Bad.NS"}}, "namespace"),
        (
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "a/b"}},
            "may not be",
        ),
    ],
)
def test_validate_names_file_document_and_reason(obj, reason):
    with pytest.raises(BuildFailed) as err:
        validate([m({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ok"}}), m(obj, "x/y.yaml", 4)])
    assert "x/y.yaml document 5" in str(err.value)
    assert reason in str(err.value)


def test_duplicates_name_both_places():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "shop"}}
    other_ns = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "dev"}}
    check_duplicates([m(cm, "a.yaml", 0), m(other_ns, "b.yaml", 0)])  # different namespace: fine
    with pytest.raises(BuildFailed) as err:
        check_duplicates([m(cm, "a.yaml", 0), m(other_ns, "b.yaml", 0), m(dict(cm), "c.yaml", 2)])
    assert "ConfigMap/shop/a" in str(err.value)
    assert "a.yaml document 1" in str(err.value) and "c.yaml document 3" in str(err.value)


def test_duplicates_ignore_version():
    v1 = {
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h", "namespace": "a"},
    }
    v2 = {**v1, "apiVersion": "autoscaling/v2"}
    with pytest.raises(BuildFailed):
        check_duplicates([m(v1), m(v2)])


def test_crd_scopes_reads_all_versions_and_scope():
    cluster = {**CRD, "spec": {**CRD["spec"], "scope": "Cluster", "names": {"kind": "Gadget"}}}
    assert crd_scopes([m(CRD), m(cluster)]) == {
        ("example.com/v1", "Widget"): True,
        ("example.com/v1beta1", "Widget"): True,
        ("example.com/v1", "Gadget"): False,
        ("example.com/v1beta1", "Gadget"): False,
    }


def test_known_kinds_include_crds_from_the_same_manifests():
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    check_known_kinds([m(CRD), m(widget)], known)
    with pytest.raises(BuildFailed) as err:
        check_known_kinds([m(widget, "w.yaml", 1)], known)
    assert "w.yaml document 2" in str(err.value)
    assert "unknown kind Widget in example.com/v1" in str(err.value)


def test_unknown_kinds_are_all_reported():
    a = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    b = {"apiVersion": "v1", "kind": "Servce", "metadata": {"name": "s"}}
    with pytest.raises(BuildFailed) as err:
        check_known_kinds([m(a, "a.yaml"), m(b, "b.yaml")], known)
    assert "Widget" in str(err.value) and "Servce" in str(err.value)


def test_target_namespace_sets_and_overrides_namespaced_objects_only():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "other"}}
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "r", "namespace": "x"},
    }
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    out = apply_target_namespace([m(cm), m(svc), m(role), m(unknown)], "prod", known)
    assert [o.obj["metadata"].get("namespace") for o in out] == ["prod", "prod", None, None]
    assert "namespace" not in cm["metadata"]  # inputs untouched
    assert svc["metadata"]["namespace"] == "other"
    assert out[1].source == "app.yaml" and out[1].index == 0


def test_target_namespace_moves_service_references_and_default_subjects():
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "guard"},
        "webhooks": [{"name": "a.example.com", "clientConfig": {"service": {"name": "guard", "namespace": "system"}}}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "b"},
        "subjects": [
            {"kind": "ServiceAccount", "name": "default", "namespace": "old"},
            {"kind": "ServiceAccount", "name": "app", "namespace": "old"},
        ],
    }
    out = apply_target_namespace([m(webhook), m(binding)], "prod", known)
    assert out[0].obj["webhooks"][0]["clientConfig"]["service"]["namespace"] == "prod"
    assert [s["namespace"] for s in out[1].obj["subjects"]] == ["prod", "old"]
    assert out[1].obj["metadata"]["namespace"] == "prod"


def test_default_namespace_only_fills_missing():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "other"}}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}
    out = default_namespace([m(cm), m(svc), m(ns)], "default", known)
    assert [o.obj["metadata"].get("namespace") for o in out] == ["default", "other", None]


def test_keys_equal_after_json_conversion_are_duplicates():
    with pytest.raises(BuildFailed, match="defined twice"):
        parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  on: x\n  'true': y\n", "a.yaml")


def test_explicit_keys_override_merged_ones():
    text = (
        "base: &b {a: '1', c: '0'}\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  <<: *b\n  c: '2'\n"
    )
    (doc,) = parse_documents(text, "cm.yaml")
    assert doc.obj["data"] == {"a": "1", "c": "2"}


def test_duplicate_key_error_names_the_document_and_the_line():
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: b\n  labels:\n    x: '1'\n    x: '2'\n"
    )
    with pytest.raises(BuildFailed, match=r"cm.yaml document 2, line 11: .*'x' is defined twice in one mapping"):
        parse_documents(text, "cm.yaml")


def test_duplicate_key_next_to_a_merge_key_is_still_an_error():
    text = (
        "base: &b {a: '1'}\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
        "data:\n  <<: *b\n  c: '2'\n  c: '3'\n"
    )
    with pytest.raises(BuildFailed, match=r"line 8: .*'c' is defined twice"):
        parse_documents(text, "cm.yaml")


def test_scalars_resolve_as_pyyaml_resolves_them():
    import yaml

    text = (
        "a: [1, -2, 0x1f, 0o17, 1_000, 2.5, .inf, -.Inf, .nan, true, false, yes, on, null, ~, '', '1', x,"
        " 2024-01-01]\n"
    )
    (value,) = [v for v in yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))]
    expected = [*value["a"][:18], "2024-01-01"]  # timestamps stay strings
    (doc,) = parse_documents("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  " + text, "cm.yaml")
    got = doc.obj["data"]["a"]
    assert repr(got) == repr(expected)  # repr: nan != nan, and True == 1
    assert [type(v) for v in got] == [type(v) for v in expected]


def test_an_alias_that_contains_itself_is_a_build_error():
    with pytest.raises(BuildFailed, match=r"cm.yaml document 1: (invalid YAML|is nested too deeply)"):
        parse_documents("a: &x [1, *x]\n", "cm.yaml")


def test_aliases_do_not_share_objects_between_places():
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: &l {x: '1'}, annotations: *l}\n"
    (doc,) = parse_documents(text, "cm.yaml")
    assert doc.obj["metadata"]["labels"] == doc.obj["metadata"]["annotations"] == {"x": "1"}
    assert doc.obj["metadata"]["labels"] is not doc.obj["metadata"]["annotations"]


def test_namespace_functions_do_not_modify_their_inputs():
    import copy

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "b", "namespace": "old"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "old"}],
    }
    before = copy.deepcopy([cm, binding])
    defaulted = default_namespace([m(cm), m(binding)], "shop", known)
    moved = apply_target_namespace([m(cm), m(binding)], "target", known)
    assert [cm, binding] == before
    assert defaulted[0].obj["metadata"]["namespace"] == "shop"
    assert moved[1].obj["metadata"]["namespace"] == "target"
    assert moved[1].obj["subjects"][0]["namespace"] == "target"
    assert binding["subjects"][0]["namespace"] == "old"
