import copy
import json
from fractions import Fraction

import pytest

from kubectl_gitops import constants
from kubectl_gitops.core.objects import ObjectRef, ref_of
from kubectl_gitops.core.plan import (
    OWNERSHIP,
    TOO_DEEP,
    PruneVerb,
    Verb,
    compare,
    diff_paths,
    format_path,
    parse_quantity,
    plan,
    prunable,
    prune_decision,
    stamp,
)
from tests.unit.fakefields import applied

GIT_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "ghcr.io/example/web:1.4.2",
                        "ports": [{"containerPort": 8080, "name": "http"}],
                        "env": [{"name": "MODE", "value": "prod"}],
                        "resources": {"requests": {"cpu": "250m", "memory": "1024Mi"}, "limits": {"cpu": 1}},
                        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                    }
                ],
                "volumes": [],
            },
        },
    },
}

LIVE_DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web",
        "namespace": "shop",
        "uid": "0f1e7c9a-1c2b-4d5e-9f00-123456789abc",
        "resourceVersion": "48213",
        "generation": 3,
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "labels": {"app.kubernetes.io/name": "web", "team": "added-by-someone"},
        "annotations": {"deployment.kubernetes.io/revision": "3"},
        "managedFields": [{"manager": "kubectl-gitops", "operation": "Apply", "fieldsType": "FieldsV1"}],
    },
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "progressDeadlineSeconds": 600,
        "revisionHistoryLimit": 10,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {
            "metadata": {"labels": {"app": "web"}, "creationTimestamp": None},
            "spec": {
                "containers": [
                    {
                        "name": "web",
                        "image": "ghcr.io/example/web:1.4.2",
                        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "prod"}],
                        "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"cpu": "1"}},
                        "readinessProbe": {
                            "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
                            "timeoutSeconds": 1,
                            "periodSeconds": 10,
                            "successThreshold": 1,
                            "failureThreshold": 3,
                        },
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File",
                        "imagePullPolicy": "IfNotPresent",
                    }
                ],
                "restartPolicy": "Always",
                "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst",
                "securityContext": {},
                "schedulerName": "default-scheduler",
            },
        },
    },
    "status": {"observedGeneration": 3, "replicas": 2, "readyReplicas": 2},
}


def live() -> dict:
    return copy.deepcopy(LIVE_DEPLOYMENT)


def git() -> dict:
    return copy.deepcopy(GIT_DEPLOYMENT)


def test_defaulted_live_deployment_is_unchanged():
    assert diff_paths(git(), live()) == []


def test_changed_image_is_reported_at_its_path():
    desired = git()
    desired["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/example/web:1.5.0"
    assert diff_paths(desired, live()) == ["spec.template.spec.containers[0].image"]


def test_several_differences_and_quoted_keys():
    desired = git()
    desired["spec"]["replicas"] = 3
    desired["metadata"]["labels"]["app.kubernetes.io/part-of"] = "shop"
    assert diff_paths(desired, live()) == ['metadata.labels["app.kubernetes.io/part-of"]', "spec.replicas"]


def test_list_length_differences_are_a_change():
    desired = git()
    desired["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "DEBUG", "value": "1"})
    assert diff_paths(desired, live()) == ["spec.template.spec.containers[0].env"]


def test_removed_item_from_git_list_is_a_change():
    current = live()
    current["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EXTRA", "value": "x"})
    assert diff_paths(git(), current) == ["spec.template.spec.containers[0].env"]


def test_quantities_only_normalised_under_resources():
    desired = git()
    desired["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "1000m"
    assert diff_paths(desired, live()) == []
    desired["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "1500m"
    assert diff_paths(desired, live()) == ["spec.template.spec.containers[0].resources.limits.cpu"]
    cm_git = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"cpu": "1000m"}}
    cm_live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"cpu": "1"}}
    assert diff_paths(cm_git, cm_live) == ["data.cpu"]


def test_resource_quota_hard_is_quantity_scoped():
    desired = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q"},
        "spec": {"hard": {"memory": "2048Mi"}},
    }
    current = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q"},
        "spec": {"hard": {"memory": "2Gi"}},
    }
    assert diff_paths(desired, current) == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", Fraction(1)),
        ("1000m", Fraction(1)),
        ("0.5", Fraction(1, 2)),
        ("500m", Fraction(1, 2)),
        ("1Gi", Fraction(1073741824)),
        ("1024Mi", Fraction(1073741824)),
        ("1G", Fraction(10**9)),
        ("1e3", Fraction(1000)),
        ("1E", Fraction(10**18)),
        ("100n", Fraction(1, 10**7)),
        (2, Fraction(2)),
    ],
)
def test_parse_quantity(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["pods", "1Gb", "", "1.2.3", True, None])
def test_parse_quantity_rejects_non_quantities(text):
    assert parse_quantity(text) is None


def test_port_int_vs_string_only_for_port_keys():
    svc_git = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80, "targetPort": 8080}], "selector": {"app": "web"}},
    }
    svc_live = copy.deepcopy(svc_git)
    svc_live["spec"]["ports"][0].update(targetPort="8080", protocol="TCP")
    svc_live["spec"].update(clusterIP="10.96.0.12", type="ClusterIP", sessionAffinity="None")
    assert diff_paths(svc_git, svc_live) == []
    svc_live["spec"]["ports"][0]["targetPort"] = "http"
    assert diff_paths(svc_git, svc_live) == ["spec.ports[0].targetPort"]
    cm_git = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"count": 3}}
    cm_live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"count": "3"}}
    assert diff_paths(cm_git, cm_live) == ["data.count"]


def test_bool_is_not_int():
    a = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}, "spec": {"flag": True}}
    b = {"apiVersion": "v1", "kind": "X", "metadata": {"name": "a"}, "spec": {"flag": 1}}
    assert diff_paths(a, b) == ["spec.flag"]


def test_secret_string_data_matches_base64_data():
    desired = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db"},
        "type": "Opaque",
        "stringData": {"password": "s3cret"},
        "data": {"user": "YWRtaW4="},
    }
    current = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "uid": "u"},
        "type": "Opaque",
        "data": {"user": "YWRtaW4=", "password": "czNjcmV0"},
    }
    assert diff_paths(desired, current) == []
    desired["stringData"]["password"] = "changed"
    assert diff_paths(desired, current) == ["data.password"]


def test_empty_and_null_desired_values_match_absent_fields():
    desired = git()
    desired["metadata"]["annotations"] = {}
    desired["spec"]["template"]["spec"]["nodeSelector"] = None
    assert diff_paths(desired, live()) == []


def test_zero_values_are_not_forgiven():
    desired = git()
    desired["spec"]["template"]["spec"]["automountServiceAccountToken"] = False
    assert diff_paths(desired, live()) == ["spec.template.spec.automountServiceAccountToken"]


def test_server_metadata_status_and_revision_annotation_are_ignored():
    desired = stamp(git(), "apps", "flux-system", "main@sha1:abc")
    desired["metadata"].update(uid="other", resourceVersion="1", generation=9, managedFields=[{}])
    desired["status"] = {"replicas": 7}
    current = stamp(live(), "apps", "flux-system", "main@sha1:old")
    # live carries the digest we applied from this same Git content
    for key in (constants.ANNOTATION_DIGEST, constants.ANNOTATION_FIELDS):
        current["metadata"]["annotations"][key] = desired["metadata"]["annotations"][key]
    assert diff_paths(desired, current) == []


def test_missing_ownership_label_is_a_change():
    desired = stamp(git(), "apps", "flux-system", "r1")
    assert sorted(diff_paths(desired, live())) == [
        f'metadata.annotations["{constants.ANNOTATION_DIGEST}"]',
        f'metadata.annotations["{constants.ANNOTATION_FIELDS}"]',
        f'metadata.labels["{constants.LABEL_SYNC}"]',
        f'metadata.labels["{constants.LABEL_SYNC_NAMESPACE}"]',
    ]


def test_type_mismatch_is_reported():
    desired = git()
    desired["spec"]["selector"] = ["not", "a", "map"]
    assert diff_paths(desired, live()) == ["spec.selector"]


def test_format_path():
    assert format_path(["spec", "containers", 0, "image"]) == "spec.containers[0].image"
    assert format_path(["metadata", "annotations", "a/b"]) == 'metadata.annotations["a/b"]'
    assert format_path([]) == ""


def test_plan_assigns_an_action_per_object():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "new", "namespace": "shop"}, "data": {"a": "1"}}
    changed = git()
    changed["spec"]["replicas"] = 5
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"}, "spec": {}}
    live_map = {
        ref_of(LIVE_DEPLOYMENT): applied(live()),
        ref_of(svc).with_version("v1"): applied({**svc, "spec": {"clusterIP": "10.0.0.1"}}),
    }
    changes = plan([cm, changed, svc], live_map)
    assert [(a.ref.display, a.verb) for a in changes.actions] == [
        ("ConfigMap/shop/new", Verb.CREATE),
        ("Deployment/shop/web", Verb.CONFIGURE),
        ("Service/shop/web", Verb.UNCHANGED),
    ]
    assert changes.actions[1].paths == ("spec.replicas",)
    assert changes.counts() == {"create": 1, "configure": 1, "unchanged": 1}
    assert [a.ref.name for a in changes.writes] == ["new", "web"]
    assert changes.actions[0].obj is cm


def test_plan_finds_live_objects_by_identity_not_version():
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h", "namespace": "a"},
    }
    live_ref = ObjectRef("autoscaling", "v1", "HorizontalPodAutoscaler", "a", "h")
    stamped = stamp(hpa, "s", "n", "r")
    assert plan([stamped], {live_ref: applied(stamped)}).actions[0].verb is Verb.UNCHANGED


def test_stamp_returns_a_labelled_copy():
    original = git()
    stamped = stamp(original, "apps", "flux-system", "main@sha1:abc")
    assert stamped["metadata"]["labels"] == {
        "app.kubernetes.io/name": "web",
        constants.LABEL_SYNC: "apps",
        constants.LABEL_SYNC_NAMESPACE: "flux-system",
    }
    annotations = stamped["metadata"]["annotations"]
    assert annotations[constants.ANNOTATION_REVISION] == "main@sha1:abc"
    assert annotations[constants.ANNOTATION_DIGEST].startswith("sha256:")
    assert set(annotations) == {constants.ANNOTATION_REVISION, constants.ANNOTATION_DIGEST,
                                constants.ANNOTATION_FIELDS}
    fields = json.loads(annotations[constants.ANNOTATION_FIELDS])
    assert fields["metadata"]["labels"] == {"app.kubernetes.io/name": {}}  # the engine's stamps are not Git's
    assert fields["metadata"]["annotations"][constants.ANNOTATION_FIELDS] == {}
    assert fields["spec"]["template"]["spec"]["containers"] == {}  # lists are leaves
    assert original == GIT_DEPLOYMENT
    stamped["spec"]["replicas"] = 9
    assert original["spec"]["replicas"] == 2


REF = ObjectRef("", "v1", "ConfigMap", "shop", "old")


def owned(**annotations: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "old",
            "namespace": "shop",
            "labels": {constants.LABEL_SYNC: "apps", constants.LABEL_SYNC_NAMESPACE: "flux-system"},
            "annotations": annotations,
        },
    }


def test_prunable_when_still_owned():
    ok, reason = prunable(REF, owned(), "apps", "flux-system")
    assert ok
    assert "ConfigMap/shop/old" in reason


def test_not_prunable_when_gone():
    ok, reason = prunable(REF, None, "apps", "flux-system")
    assert not ok and "already gone" in reason


@pytest.mark.parametrize(("name", "namespace"), [("other", "flux-system"), ("apps", "elsewhere")])
def test_not_prunable_when_owned_by_another_sync(name, namespace):
    ok, reason = prunable(REF, owned(), name, namespace)
    assert not ok and "not owned" in reason


def test_not_prunable_without_labels():
    obj = owned()
    del obj["metadata"]["labels"]
    assert prunable(REF, obj, "apps", "flux-system")[0] is False


def test_not_prunable_when_git_disabled_it():
    from_git = applied(owned(**{constants.ANNOTATION_PRUNE: constants.PRUNE_DISABLED}))
    ok, reason = prunable(REF, from_git, "apps", "flux-system")
    assert not ok and constants.ANNOTATION_PRUNE in reason and "from Git" in reason
    assert prunable(REF, applied(owned(**{constants.ANNOTATION_PRUNE: "enabled"})), "apps", "flux-system")[0]


def test_prune_disabled_added_by_someone_else_does_not_count():
    obj = applied(owned())
    obj["metadata"]["annotations"][constants.ANNOTATION_PRUNE] = constants.PRUNE_DISABLED
    obj["metadata"]["managedFields"].append({"manager": "kubectl-annotate", "operation": "Update", "fieldsV1": {
        "f:metadata": {"f:annotations": {f"f:{constants.ANNOTATION_PRUNE}": {}}}}})
    verb, reason = prune_decision(REF, obj, "apps", "flux-system")
    assert verb is PruneVerb.DELETE and "not set by Git" in reason


def test_prune_disabled_from_git_still_counts_after_its_ownership_moved():
    obj = stamp(owned(**{constants.ANNOTATION_PRUNE: constants.PRUNE_DISABLED}), "apps", "flux-system", "r")
    obj = applied(obj)
    fields = obj["metadata"]["managedFields"][0]["fieldsV1"]
    del fields["f:metadata"]["f:annotations"][f"f:{constants.ANNOTATION_PRUNE}"]  # taken by an allowed edit
    assert prune_decision(REF, obj, "apps", "flux-system")[0] is PruneVerb.SKIP
    # ... but a record nobody but us may write must be ours: someone else's record proves nothing.
    del fields["f:metadata"]["f:annotations"][f"f:{constants.ANNOTATION_FIELDS}"]
    assert prune_decision(REF, obj, "apps", "flux-system")[0] is PruneVerb.DELETE


def test_an_object_being_deleted_waits_and_names_its_finalizers():
    obj = owned()
    obj["metadata"]["deletionTimestamp"] = "2024-05-01T10:00:00Z"
    obj["metadata"]["finalizers"] = ["example.com/hold"]
    assert prune_decision(REF, obj, "apps", "flux-system") == (
        PruneVerb.WAIT, "ConfigMap/shop/old is being deleted; waiting on finalizers example.com/hold")
    assert prunable(REF, obj, "apps", "flux-system")[0] is False


def test_values_equal_but_ownership_lost_is_a_write():
    desired = stamp(git(), "apps", "flux-system", "r")
    current = applied(desired)
    assert compare(desired, current) == ()
    fields = current["metadata"]["managedFields"][0]["fieldsV1"]
    del fields["f:spec"]["f:replicas"]
    current["metadata"]["managedFields"].append({"manager": "kubectl-edit", "operation": "Update",
                                                 "fieldsV1": {"f:spec": {"f:replicas": {}}}})
    assert compare(desired, current) == (OWNERSHIP + "spec.replicas",)
    assert plan([desired], {ref_of(current): current}).actions[0].verb is Verb.CONFIGURE


def test_a_comparison_too_deep_for_python_is_a_write_not_a_crash():
    deep: dict = {}
    node = deep
    for _ in range(3000):
        node["a"] = {}
        node = node["a"]
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"}, "spec": deep}
    assert compare(desired, dict(desired)) == (TOO_DEEP,)


def test_digest_changes_when_a_field_leaves_git_so_the_object_is_rewritten() -> None:
    from kubectl_gitops.core.objects import ref_of
    from kubectl_gitops.core.plan import Verb, plan, stamp

    before = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n",
              "labels": {"team": "a"}}, "data": {"a": "1", "b": "2"}}
    after = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
             "data": {"a": "1"}}
    live = applied(stamp(before, "s", "n", "rev1"))
    same_content_new_revision = stamp(before, "s", "n", "rev2")
    assert plan([same_content_new_revision], {ref_of(live): live}).actions[0].verb is Verb.UNCHANGED
    removed = stamp(after, "s", "n", "rev2")
    action = plan([removed], {ref_of(live): live}).actions[0]
    assert action.verb is Verb.CONFIGURE
    assert any("digest" in p for p in action.paths)


# The digest is stored on every live object (constants.ANNOTATION_DIGEST): a change in how it is
# computed would rewrite every object in every cluster once. These values pin it.
PINNED_SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {
        "name": "db",
        "namespace": "shop",
        "labels": {"app": "db"},
        "annotations": {
            "note": "x",
            constants.ANNOTATION_REVISION: "old",
            constants.ANNOTATION_DIGEST: "sha256:old",
        },
    },
    "type": "Opaque",
    "stringData": {"password": "hunter2", "n": "1"},
    "data": {"k": "dmFsdWU="},
}


def test_digest_value_is_pinned() -> None:
    from kubectl_gitops.core.plan import digest

    before = copy.deepcopy(PINNED_SECRET)
    assert digest(PINNED_SECRET) == "sha256:cf77f79f1e50a6c1fb54"
    assert before == PINNED_SECRET  # digest does not touch its input
    odd = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "labels": None, "annotations": {}},
        "data": {"x": None, "y": [1, 2.5, True]},
    }
    assert digest(odd) == "sha256:9139cf63a46999a3046b"


def test_stamped_digest_values_are_pinned() -> None:
    bare = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"on": "true", "n": "1"}}
    odd = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "labels": None, "annotations": {}},
        "data": {"x": None, "y": [1, 2.5, True]},
    }
    expected = [
        (bare, "sha256:d07b8df1e350429f3b33"),
        (PINNED_SECRET, "sha256:966aea5048e07f17b179"),
        (GIT_DEPLOYMENT, "sha256:935ab669d303d12e5fab"),
        (odd, "sha256:408803b9a1d2eb272f64"),
    ]
    for obj, value in expected:
        before = copy.deepcopy(obj)
        stamped = stamp(obj, "apps" if obj is not odd else "s", "flux-system" if obj is not odd else "n", "r")
        assert stamped["metadata"]["annotations"][constants.ANNOTATION_DIGEST] == value
        assert obj == before  # stamp does not mutate its input


def test_stamp_output_shares_no_mutable_state_with_its_input() -> None:
    original = copy.deepcopy(PINNED_SECRET)
    stamped = stamp(original, "apps", "flux-system", "r")
    stamped["metadata"]["labels"]["extra"] = "1"
    stamped["metadata"]["annotations"]["extra"] = "1"
    stamped["stringData"]["password"] = "changed"
    assert original == PINNED_SECRET
