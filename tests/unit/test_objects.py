import pytest

from kubectl_gitops.core.objects import ObjectRef, ref_of, split_api_version


def deployment() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}}


def test_ref_of_namespaced_object():
    ref = ref_of(deployment())
    assert ref == ObjectRef("apps", "v1", "Deployment", "shop", "web")
    assert ref.api_version == "apps/v1"
    assert ref.id == "shop_web_apps_Deployment"
    assert ref.display == "Deployment/shop/web"


def test_ref_of_core_cluster_scoped_object():
    ref = ref_of({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    assert ref == ObjectRef("", "v1", "Namespace", "", "shop")
    assert ref.api_version == "v1"
    assert ref.id == "_shop__Namespace"
    assert ref.display == "Namespace/shop"


@pytest.mark.parametrize(
    "obj",
    [
        {"kind": "X", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "metadata": {"name": "a"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
        {"apiVersion": "v1", "kind": "ConfigMap"},
    ],
)
def test_ref_of_rejects_incomplete_objects(obj):
    with pytest.raises(ValueError):
        ref_of(obj)


def test_split_api_version():
    assert split_api_version("v1") == ("", "v1")
    assert split_api_version("rbac.authorization.k8s.io/v1") == ("rbac.authorization.k8s.io", "v1")


@pytest.mark.parametrize(
    "ref",
    [
        ObjectRef("apps", "v1", "Deployment", "shop", "web"),
        ObjectRef("", "v1", "ConfigMap", "shop", "settings.v2"),
        ObjectRef("", "v1", "Namespace", "", "shop"),
        ObjectRef("rbac.authorization.k8s.io", "v1", "ClusterRole", "", "system:my_odd_role"),
        ObjectRef("kubectl-gitops.dev", "v1alpha1", "Sync", "flux-system", "apps"),
    ],
)
def test_inventory_entry_round_trip(ref):
    assert ObjectRef.from_inventory_entry(ref.id, ref.version) == ref


def test_from_inventory_entry_reads_flux_ids():
    ref = ObjectRef.from_inventory_entry("default_podinfo_apps_Deployment", "v1")
    assert (ref.namespace, ref.name, ref.group, ref.kind, ref.version) == (
        "default",
        "podinfo",
        "apps",
        "Deployment",
        "v1",
    )
    crd = ObjectRef.from_inventory_entry(
        "_alerts.notification.toolkit.fluxcd.io_apiextensions.k8s.io_CustomResourceDefinition", "v1"
    )
    assert crd.namespace == "" and crd.name == "alerts.notification.toolkit.fluxcd.io"


@pytest.mark.parametrize("bad", ["", "a_b", "ns_name_group", "ns__apps_Deployment", "ns_name_apps_"])
def test_from_inventory_entry_rejects_malformed_ids(bad):
    with pytest.raises(ValueError):
        ObjectRef.from_inventory_entry(bad, "v1")


def test_key_ignores_version_but_equality_does_not():
    a = ObjectRef("autoscaling", "v1", "HorizontalPodAutoscaler", "shop", "web")
    b = a.with_version("v2")
    assert a.key == b.key
    assert a != b


def test_sort_key_orders_by_namespace_then_name():
    refs = [
        ObjectRef("apps", "v1", "Deployment", "b", "x"),
        ObjectRef("", "v1", "Namespace", "", "z"),
        ObjectRef("", "v1", "Service", "a", "y"),
    ]
    assert [r.display for r in sorted(refs, key=lambda r: r.sort_key)] == [
        "Namespace/z",
        "Service/a/y",
        "Deployment/b/x",
    ]
