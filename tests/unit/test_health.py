import copy

import pytest

from kubectl_gitops.core.health import Health, HealthStatus, assess

CURRENT, IN_PROGRESS, FAILED = HealthStatus.CURRENT, HealthStatus.IN_PROGRESS, HealthStatus.FAILED

ROLLED_OUT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop", "generation": 4},
    "spec": {"replicas": 3, "progressDeadlineSeconds": 600},
    "status": {
        "observedGeneration": 4,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ],
    },
}


def deployment(**status_changes) -> dict:
    obj = copy.deepcopy(ROLLED_OUT)
    obj["status"].update(status_changes)
    return obj


def test_rolled_out_deployment_is_current():
    health = assess(deployment())
    assert health.status is CURRENT
    assert health.done


def test_deployment_generation_not_observed():
    obj = deployment(observedGeneration=3)
    health = assess(obj)
    assert health.status is IN_PROGRESS
    assert health.reason == "LatestGenerationNotObserved"
    assert not health.done


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"replicas": 2}, "LessReplicas"),
        ({"updatedReplicas": 1}, "LessUpdated"),
        ({"replicas": 4}, "ExtraPods"),
        ({"availableReplicas": 2}, "LessAvailable"),
        ({"readyReplicas": 2}, "LessReady"),
    ],
)
def test_deployment_rollout_counters(changes, reason):
    health = assess(deployment(**changes))
    assert (health.status, health.reason) == (IN_PROGRESS, reason)


def test_deployment_waits_for_new_replicaset_and_available():
    obj = deployment()
    obj["status"]["conditions"][1] = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
    assert assess(obj).reason == "ReplicaSetNotAvailable"
    obj = deployment()
    obj["status"]["conditions"][0]["status"] = "False"
    assert assess(obj).reason == "DeploymentNotAvailable"


def test_deployment_progress_deadline_exceeded_is_failed():
    obj = deployment(updatedReplicas=1, availableReplicas=1)
    obj["status"]["conditions"][1] = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "web-7d9c" has timed out progressing.',
    }
    health = assess(obj)
    assert health.status is FAILED
    assert "timed out progressing" in health.message


def test_deployment_replicas_default_to_one():
    obj = deployment(replicas=1, updatedReplicas=1, readyReplicas=1, availableReplicas=1)
    del obj["spec"]["replicas"]
    assert assess(obj).status is CURRENT


def sts(**status) -> dict:
    base = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "generation": 2},
        "spec": {"replicas": 3, "updateStrategy": {"type": "RollingUpdate"}},
        "status": {
            "observedGeneration": 2,
            "replicas": 3,
            "readyReplicas": 3,
            "currentReplicas": 3,
            "updatedReplicas": 3,
            "currentRevision": "db-5f7",
            "updateRevision": "db-5f7",
        },
    }
    base["status"].update(status)
    return base


def test_statefulset():
    assert assess(sts()).status is CURRENT
    assert assess(sts(readyReplicas=2)).reason == "LessReady"
    assert assess(sts(updateRevision="db-6a1", updatedReplicas=1, currentReplicas=3)).reason == "RevisionMismatch"


def test_statefulset_partition_and_on_delete():
    obj = sts(updateRevision="db-6a1", updatedReplicas=1)
    obj["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}
    assert assess(obj).status is CURRENT
    obj["status"]["updatedReplicas"] = 0
    assert assess(obj).reason == "PartitionRollout"
    obj["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert assess(obj).status is CURRENT


def daemonset(**status) -> dict:
    base = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "agent", "generation": 1},
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3,
            "updatedNumberScheduled": 3,
            "numberAvailable": 3,
            "numberReady": 3,
        },
    }
    base["status"].update(status)
    return base


def test_daemonset():
    assert assess(daemonset()).status is CURRENT
    assert assess(daemonset(updatedNumberScheduled=2)).reason == "LessUpdated"
    assert assess(daemonset(numberAvailable=1)).reason == "LessAvailable"
    fresh = daemonset()
    fresh["status"] = {}
    assert assess(fresh).reason == "NoObservedGeneration"


def job(*conditions: dict) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "status": {"active": 1, "conditions": list(conditions)},
    }


def test_job():
    assert assess(job()).status is IN_PROGRESS
    assert assess(job({"type": "Complete", "status": "True"})).status is CURRENT
    failed = assess(job({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "too many"}))
    assert (failed.status, failed.reason) == (FAILED, "BackoffLimitExceeded")
    assert assess(job({"type": "Failed", "status": "False"})).status is IN_PROGRESS


def crd(*conditions: dict) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com", "generation": 1},
        "status": {"conditions": list(conditions)},
    }


def test_crd():
    assert (
        assess(crd({"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"})).status
        is CURRENT
    )
    assert assess(crd({"type": "NamesAccepted", "status": "True"})).status is IN_PROGRESS
    conflict = assess(crd({"type": "NamesAccepted", "status": "False", "reason": "ListKindConflict"}))
    assert conflict.status is FAILED


def test_namespace_and_pvc():
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}, "status": {"phase": "Active"}}
    assert assess(ns).status is CURRENT
    ns["status"]["phase"] = "Terminating"
    assert assess(ns).status is IN_PROGRESS
    ns["metadata"]["deletionTimestamp"] = "2024-05-01T10:00:00Z"
    assert assess(ns).status is HealthStatus.TERMINATING
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "status": {"phase": "Pending"},
    }
    assert assess(pvc).status is IN_PROGRESS
    pvc["status"]["phase"] = "Bound"
    assert assess(pvc).status is CURRENT


def test_pod_crash_loop_is_failed():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}],
        },
    }
    assert assess(pod).status is FAILED
    pod["status"]["containerStatuses"] = []
    assert assess(pod).status is IN_PROGRESS
    pod["status"]["conditions"][0]["status"] = "True"
    assert assess(pod).status is CURRENT


def custom(generation: int = 2, observed: int = 2, *conditions: dict) -> dict:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "tls", "generation": generation},
        "status": {"observedGeneration": observed, "conditions": list(conditions)},
    }


def test_ready_condition_on_custom_resources():
    assert assess(custom(2, 2, {"type": "Ready", "status": "True"})).status is CURRENT
    not_ready = assess(custom(2, 2, {"type": "Ready", "status": "False", "reason": "Issuing", "message": "issuing"}))
    assert (not_ready.status, not_ready.reason) == (IN_PROGRESS, "Issuing")
    assert "issuing" in not_ready.message
    assert assess(custom(2, 2, {"type": "Ready", "status": "Unknown"})).status is IN_PROGRESS


def test_kstatus_conditions_win_over_ready():
    stalled = custom(
        2, 2, {"type": "Ready", "status": "False"}, {"type": "Stalled", "status": "True", "reason": "BuildFailed"}
    )
    assert (assess(stalled).status, assess(stalled).reason) == (FAILED, "BuildFailed")
    reconciling = custom(2, 2, {"type": "Ready", "status": "True"}, {"type": "Reconciling", "status": "True"})
    assert assess(reconciling).status is IN_PROGRESS
    behind = custom(3, 2, {"type": "Ready", "status": "True"})
    assert assess(behind).status is IN_PROGRESS


def test_objects_without_status_are_current():
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {}}
    assert assess(cm) == Health(CURRENT, "Resource is current")


def test_not_an_object_is_unknown():
    assert assess({"metadata": {}}).status is HealthStatus.UNKNOWN
