"""What the sync e2e tests share: one namespace, one Git repository, and short ways to drive and read them.

Every assertion goes to the cluster through the real `kubectl` (objects, the Sync's and GitSource's
status); the plugin's own output (`sync -o json`) is read for what only it can say (per-object
results of one run), never trusted for the cluster's state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from kubectl_gitops.constants import FIELD_MANAGER
from kubectl_gitops.core import resources
from tests.e2e.gitrepo import GitRepo
from tests.helpers import Run, gitops, kubectl

SYNC_RESOURCE = "syncs.kubectl-gitops.dev"
SOURCE_RESOURCE = "gitsources.kubectl-gitops.dev"


def configmap(name: str, data: dict[str, str] | None = None, *, annotations: dict[str, str] | None = None,
              namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"name": name}}


def deployment(name: str, replicas: int = 1, node_selector: dict[str, str] | None = None) -> dict[str, Any]:
    pod_spec: dict[str, Any] = {"containers": [{"name": "app", "image": "registry.example/app:1"}]}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}}


def docs(*objs: dict[str, Any] | str) -> str:
    """A multi-document YAML file; strings are taken verbatim (for deliberately broken documents)."""
    return "---\n".join(o if isinstance(o, str) else yaml.safe_dump(o, sort_keys=False) for o in objs)


@dataclass(frozen=True)
class SyncRun:
    """One `kubectl gitops sync NAME -o json`: its exit code and what it said."""

    returncode: int
    data: dict[str, Any]
    output: str

    @property
    def reason(self) -> str:
        return str(self.data.get("reason"))

    @property
    def message(self) -> str:
        return str(self.data.get("message"))

    @property
    def results(self) -> dict[str, str]:
        """object display (Kind/namespace/name) -> created|configured|unchanged|pruned|failed|skipped"""
        return {o["object"]: o["result"] for o in self.data.get("objects", [])}


@dataclass(frozen=True)
class World:
    kubeconfig: str
    ns: str
    repo: GitRepo

    # ------------------------------------------------------------ drive

    def gitops(self, *args: str, check: bool = True, timeout: float = 120) -> Run:
        return gitops("-n", self.ns, *args, kubeconfig=self.kubeconfig, check=check, timeout=timeout)

    def kubectl(self, *args: str, check: bool = True) -> Run:
        return kubectl("-n", self.ns, *args, kubeconfig=self.kubeconfig, check=check)

    def create_source(self, name: str = "src", *ref: str) -> None:
        self.gitops("create", "source", name, "--url", self.repo.url, *(ref or ("--branch", "main")))

    def create_sync(self, name: str, *args: str, source: str = "src") -> None:
        self.gitops("create", "sync", name, "--source", source, *args)

    def setup(self, syncs: dict[str, dict[str, Any]], **ref: str) -> None:
        """GitSource `src` (ref as `create source` takes it; default branch main) and the Syncs
        (name -> keyword arguments of `core.resources.sync`) in one server-side apply.

        The objects are the very ones `kubectl gitops create` builds and applies (same builder,
        same field manager); this only saves the plugin's start-up per object, which dominates
        these tests' runtime. Tests about the `create` flags use `create_source`/`create_sync`."""
        objs = [resources.git_source("src", self.ns, self.repo.url, **(ref or {"branch": "main"}))]
        objs += [resources.sync(name, self.ns, "src", **kwargs) for name, kwargs in syncs.items()]
        kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}-cli", "-f", "-",
                kubeconfig=self.kubeconfig, input=docs(*objs))

    def sync(self, name: str, *extra: str, timeout: float = 120) -> SyncRun:
        run = self.gitops("sync", name, "-o", "json", *extra, check=False, timeout=timeout)
        try:
            data = json.loads(run.stdout)
        except json.JSONDecodeError:
            data = {}
        return SyncRun(run.returncode, data, run.output)

    def sync_ok(self, name: str) -> SyncRun:
        run = self.sync(name)
        assert run.returncode == 0 and run.data.get("ready") is True, f"sync {name} failed:\n{run.output}"
        return run

    # ------------------------------------------------------------ read the cluster

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        got = self.kubectl("get", kind, name, "-o", "json", check=False)
        if got.returncode != 0:
            assert "NotFound" in got.stderr, got.stderr
            return None
        obj: dict[str, Any] = json.loads(got.stdout)
        return obj

    def exists(self, kind: str, name: str) -> bool:
        return self.get(kind, name) is not None

    def names(self, kind: str) -> set[str]:
        out = self.kubectl("get", kind, "-o", "jsonpath={.items[*].metadata.name}").stdout
        return set(out.split())

    def sync_status(self, name: str) -> dict[str, Any]:
        obj = self.get(SYNC_RESOURCE, name)
        assert obj is not None, f"Sync {self.ns}/{name} not found"
        status: dict[str, Any] = obj.get("status") or {}
        return status

    def source_status(self, name: str = "src") -> dict[str, Any]:
        obj = self.get(SOURCE_RESOURCE, name)
        assert obj is not None, f"GitSource {self.ns}/{name} not found"
        status: dict[str, Any] = obj.get("status") or {}
        return status

    def inventory(self, name: str) -> set[str]:
        return {e["id"] for e in (self.sync_status(name).get("inventory") or {}).get("entries") or []}

    def cm_id(self, name: str) -> str:
        """The Flux inventory id of a ConfigMap in this namespace."""
        return f"{self.ns}_{name}__ConfigMap"

    def condition(self, sync: str, kind: str) -> dict[str, Any]:
        for cond in self.sync_status(sync).get("conditions") or []:
            if cond.get("type") == kind:
                found: dict[str, Any] = cond
                return found
        raise AssertionError(f"Sync {self.ns}/{sync} has no {kind} condition: {self.sync_status(sync)}")

    def events(self, sync: str) -> list[tuple[str, str, str]]:
        """(type, reason, note) of the events.k8s.io Events regarding the Sync, oldest first."""
        items = json.loads(self.kubectl("get", "events.events.k8s.io", "-o", "json").stdout)["items"]
        mine = [e for e in items if (e.get("regarding") or {}).get("kind") == "Sync"
                and e["regarding"].get("name") == sync]
        mine.sort(key=lambda e: str(e.get("eventTime") or e["metadata"].get("creationTimestamp")))
        return [(str(e.get("type")), str(e.get("reason")), str(e.get("note"))) for e in mine]
