"""Hooks around the apply (engine/helm_hooks.py): order, waiting, deletion policies, failure reasons.

The Kube here is a small in-memory stand-in that finishes Jobs as told; the e2e tests run real Jobs
on the dev control plane (tests/e2e/test_helm.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.core import helm
from kubectl_gitops.core.discovery import ResourceInfo, ResourceMap
from kubectl_gitops.core.spec import parse_sync
from kubectl_gitops.engine.helm_hooks import ANNOTATION_HOOK_OF, HOOK_MANAGER, HookFailed, HookRunner

JOBS = ResourceInfo("batch", "v1", "Job", "jobs", True)
CONFIGMAPS = ResourceInfo("", "v1", "ConfigMap", "configmaps", True)
RESOURCES = ResourceMap([JOBS, CONFIGMAPS])
SPEC = parse_sync({"metadata": {"name": "app", "namespace": "ns"},
                   "spec": {"sourceRef": {"kind": "HelmRepository", "name": "c"}, "chart": {"name": "app"},
                            "timeout": "10s"}})


class FakeKube:
    """Objects by name; a Job gets the outcome `outcomes` names for it (default Complete) when read."""

    def __init__(self, outcomes: dict[str, str] | None = None, existing: tuple[str, ...] = ()) -> None:
        self.objects: dict[str, dict[str, Any]] = {n: {"metadata": {"name": n}} for n in existing}
        self.outcomes = outcomes or {}
        self.log: list[str] = []

    def apply(self, info: ResourceInfo, obj: dict[str, Any], *, field_manager: str, force: bool = True) -> Any:
        assert field_manager == HOOK_MANAGER
        name = obj["metadata"]["name"]
        assert obj["metadata"]["annotations"][ANNOTATION_HOOK_OF] == "ns/app"
        self.log.append(f"apply {name}")
        self.objects[name] = dict(obj)
        return obj

    def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> Any:
        obj = self.objects.get(name)
        if obj is not None and info.kind == "Job":
            outcome = self.outcomes.get(name, "Complete")
            if outcome != "Running":
                message = {"type": outcome, "status": "True", "reason": "BackoffLimitExceeded", "message": "boom"}
                obj = {**obj, "status": {"conditions": [message]}}
        return obj

    def delete(self, info: ResourceInfo, name: str, namespace: str | None = None, **_: Any) -> bool:
        found = self.objects.pop(name, None) is not None
        if found:
            self.log.append(f"delete {name}")
        return found


def hook(name: str, events: str, weight: int = 0, policy: str = "", kind: str = "Job") -> helm.Hook:
    notes = {helm.HOOK_ANNOTATION: events, helm.HOOK_WEIGHT: str(weight)}
    if policy:
        notes[helm.HOOK_DELETE_POLICY] = policy
    api = "batch/v1" if kind == "Job" else "v1"
    stream = helm.split_rendered(
        f"---\n# Source: app/templates/{name}.yaml\napiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n"
        f"  namespace: ns\n  annotations: {notes}\n".replace("'", '"'), "app")
    return stream.hooks[0]


def runner(*hooks: helm.Hook, event: str = "upgrade", previous: str = "app@1.0.0+values:sha256:x") -> HookRunner:
    ticks = iter(range(1000))
    return HookRunner(list(hooks), event, SPEC, previous, clock=lambda: float(next(ticks)), sleep=lambda _s: None)


def test_pre_hooks_run_in_weight_order_and_default_to_before_hook_creation() -> None:
    kube = FakeKube(existing=("b",))
    hooks = runner(hook("b", "pre-upgrade", 5), hook("a", "pre-upgrade", -1), hook("post", "post-upgrade"),
                   hook("c", "pre-install"))
    hooks.before(kube, RESOURCES)  # type: ignore[arg-type]
    assert kube.log == ["apply a", "delete b", "apply b"]
    hooks.after(kube, RESOURCES)  # type: ignore[arg-type]
    assert kube.log[-1] == "apply post"
    assert hooks.ran == ["pre-upgrade Job ns/a", "pre-upgrade Job ns/b", "post-upgrade Job ns/post"]


def test_deletion_policies() -> None:
    kube = FakeKube(outcomes={"bad": "Failed"})
    runner(hook("ok", "pre-install", policy="hook-succeeded"), event="install", previous="").before(
        kube, RESOURCES)  # type: ignore[arg-type]
    assert "ok" not in kube.objects
    with pytest.raises(HookFailed):
        runner(hook("bad", "pre-install", policy="hook-failed"), event="install", previous="").before(
            kube, RESOURCES)  # type: ignore[arg-type]
    assert "bad" not in kube.objects


def test_a_failing_pre_hook_stops_with_its_reason_and_the_previous_revision() -> None:
    kube = FakeKube(outcomes={"migrate": "Failed"})
    hooks = runner(hook("migrate", "pre-upgrade"), hook("after", "pre-upgrade", 9))
    with pytest.raises(HookFailed) as err:
        hooks.before(kube, RESOURCES)  # type: ignore[arg-type]
    message = str(err.value)
    assert "pre-upgrade hook Job ns/migrate (weight 0) failed: BackoffLimitExceeded: boom" in message
    assert "the objects of the previous revision app@1.0.0+values:sha256:x were left as they were" in message
    assert err.value.reason == "HookFailed"
    assert "apply after" not in kube.log  # later hooks do not run


def test_a_job_that_never_finishes_times_out() -> None:
    kube = FakeKube(outcomes={"slow": "Running"})
    with pytest.raises(HookFailed, match="not finished within the Sync's timeout"):
        runner(hook("slow", "pre-upgrade")).before(kube, RESOURCES)  # type: ignore[arg-type]


def test_other_kinds_are_applied_without_waiting() -> None:
    kube = FakeKube()
    runner(hook("cm", "pre-upgrade", kind="ConfigMap")).before(kube, RESOURCES)  # type: ignore[arg-type]
    assert kube.log == ["apply cm"]
