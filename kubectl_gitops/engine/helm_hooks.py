"""Helm hooks as steps of a sync: pre-install/pre-upgrade before the apply, post-* after it.

A chart's hooks (objects annotated `helm.sh/hook`) are not release objects: Helm creates them at
their moment, waits for Jobs and Pods to finish, and deletes them by their deletion policy. We do
the same around the staged apply: the pre hooks of the event (install when the Sync never applied,
upgrade otherwise) run in weight order and are waited for until they complete; a failing one stops
the run before anything of the new revision is written, so the previous revision's objects stay as
they were and the Sync records `HookFailed` with the hook's reason. Post hooks run after the apply
(and the health wait). Hooks run only when the revision (chart version or values) changed, not on
every periodic re-sync. Where this differs from Helm: docs/helm.md.

Hooks are applied as the Sync's applier (impersonated, so its RBAC bounds them) under their own
field manager and without the Sync's ownership labels: they are not in the inventory, never
pruned, and the drift guard does not protect them (Helm does not track them either).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.constants import GROUP
from kubectl_gitops.core import helm as core
from kubectl_gitops.core.discovery import ResourceMap
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.spec import SyncSpec

JSON = dict[str, Any]
HOOK_MANAGER = "kubectl-gitops-hook"
ANNOTATION_HOOK_OF = f"{GROUP}/hook-of"
POLL = 0.5


class HookFailed(GitOpsError):
    reason = "HookFailed"


class HookRunner:
    """The hooks of one event (install or upgrade) of one run."""

    def __init__(self, hooks: list[core.Hook], event: str, spec: SyncSpec, previous: str,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.hooks = hooks
        self.event = event
        self.spec = spec
        self.previous = previous
        self.clock = clock
        self.sleep = sleep
        self.ran: list[str] = []

    @property
    def objects(self) -> list[JSON]:
        return [h.obj for h in self.hooks]

    def before(self, kube: Kube, resources: ResourceMap) -> None:
        """pre-<event>: a failure leaves everything of the previous revision as it was."""
        kept = (f"the objects of the previous revision {self.previous} were left as they were"
                if self.previous else "nothing of the release was applied")
        self._run(kube, resources, f"pre-{self.event}", f"; {kept}")

    def after(self, kube: Kube, resources: ResourceMap) -> None:
        self._run(kube, resources, f"post-{self.event}", "; the release's objects were applied")

    def _run(self, kube: Kube, resources: ResourceMap, event: str, consequence: str) -> None:
        deadline = self.clock() + self.spec.timeout
        for hook in core.hooks_for(self.hooks, event):
            self._one(kube, resources, hook, event, deadline, consequence)
            self.ran.append(f"{event} {_display(hook.obj)}")

    def _one(self, kube: Kube, resources: ResourceMap, hook: core.Hook, event: str, deadline: float,
             consequence: str) -> None:
        obj = _marked(hook.obj, self.spec)
        info = resources.get(str(obj.get("apiVersion")), str(obj.get("kind")))
        what = f"{event} hook {_display(obj)} (weight {hook.weight})"
        if info is None:
            raise HookFailed(f"{what}: kind not served by the API server{consequence}")
        meta = obj["metadata"]
        name, namespace = str(meta.get("name")), meta.get("namespace") or None
        try:
            if "before-hook-creation" in hook.delete_policies:
                self._delete(kube, info, name, namespace, deadline, what)
            kube.apply(info, obj, field_manager=HOOK_MANAGER, force=True)
        except ApiError as err:
            raise HookFailed(f"{what}: {err}{consequence}") from None
        failure = self._wait(kube, info, name, namespace, str(obj.get("kind")), deadline)
        policy = "hook-failed" if failure else "hook-succeeded"
        if policy in hook.delete_policies:
            # a leftover hook is harmless; the next before-hook-creation replaces it
            with contextlib.suppress(ApiError):
                kube.delete(info, name, namespace)
        if failure:
            raise HookFailed(f"{what} failed: {failure}{consequence}")

    def _delete(self, kube: Kube, info: Any, name: str, namespace: str | None, deadline: float, what: str) -> None:
        if not kube.delete(info, name, namespace):
            return
        while kube.get(info, name, namespace) is not None:
            if self.clock() > deadline:
                raise HookFailed(f"{what}: the previous hook object is still being deleted")
            self.sleep(POLL)

    def _wait(self, kube: Kube, info: Any, name: str, namespace: str | None, kind: str, deadline: float) -> str:
        """"" once the hook finished well; else why not. Only Jobs and Pods are waited for, as in Helm."""
        if kind not in ("Job", "Pod"):
            return ""
        while True:
            live = kube.get(info, name, namespace)
            if live is None:
                return "it was deleted before it finished"
            verdict = job_outcome(live) if kind == "Job" else pod_outcome(live)
            if verdict is not None:
                return verdict
            if self.clock() > deadline:
                return f"not finished within the Sync's timeout ({self.spec.timeout:.0f}s)"
            self.sleep(POLL)


def job_outcome(job: JSON) -> str | None:
    """None while running, "" when Complete, the Failed condition's reason and message otherwise."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return ""
        if cond.get("type") == "Failed":
            return f"{cond.get('reason') or 'Failed'}: {cond.get('message') or 'the Job failed'}"
    return None


def pod_outcome(pod: JSON) -> str | None:
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Succeeded":
        return ""
    if phase == "Failed":
        return f"pod failed: {(pod.get('status') or {}).get('message') or (pod.get('status') or {}).get('reason')}"
    return None


def _marked(obj: JSON, spec: SyncSpec) -> JSON:
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), ANNOTATION_HOOK_OF: f"{spec.namespace}/{spec.name}"}
    out["metadata"] = meta
    return out


def _display(obj: JSON) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"
