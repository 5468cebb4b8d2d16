"""Engine status writes: optimistic concurrency, and the union of inventories on a conflict."""

from __future__ import annotations

import copy
from typing import Any

from kubectl_gitops.adapters.kube import ApiError, Kube
from kubectl_gitops.core.inventory import Inventory
from kubectl_gitops.core.objects import ObjectRef
from kubectl_gitops.core.status import Outcome, RunRecord
from kubectl_gitops.engine.reconcile import Engine

JSON = dict[str, Any]


def cm(name: str) -> ObjectRef:
    return ObjectRef("", "v1", "ConfigMap", "ns", name)


class FakeSyncs:
    """The Sync and its status subresource, with resourceVersion preconditions like the API server."""

    def __init__(self, inventory: Inventory) -> None:
        self.obj: JSON = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
                          "metadata": {"name": "app", "namespace": "ns", "resourceVersion": "1"},
                          "status": {"inventory": inventory.to_status()}}
        self.patches: list[JSON] = []

    def write_elsewhere(self, inventory: Inventory) -> None:
        """Another run records its inventory (bumping the resourceVersion)."""
        self.obj["status"]["inventory"] = inventory.to_status()
        self.obj["metadata"]["resourceVersion"] = str(int(self.obj["metadata"]["resourceVersion"]) + 1)

    def merge_patch(self, info: Any, name: str, namespace: str | None, patch: JSON, *,
                    subresource: str | None = None) -> JSON:
        self.patches.append(copy.deepcopy(patch))
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != self.obj["metadata"]["resourceVersion"]:
            raise ApiError(409, "the object has been modified", "Conflict")
        self.obj["status"].update(patch["status"])
        self.write_elsewhere(Inventory.from_status(self.obj["status"]["inventory"]))
        return copy.deepcopy(self.obj)

    def get(self, info: Any, name: str, namespace: str | None = None) -> JSON:
        return copy.deepcopy(self.obj)


def test_a_conflicting_status_write_is_retried_with_the_union_of_inventories() -> None:
    syncs = FakeSyncs(Inventory([cm("a")]))
    engine = Engine(Kube.__new__(Kube), fetcher=object())  # type: ignore[arg-type]
    engine.kube = syncs  # type: ignore[assignment]
    read = copy.deepcopy(syncs.obj)  # what this run read at its start
    syncs.write_elsewhere(Inventory([cm("a"), cm("c")]))  # meanwhile, a concurrent run recorded c

    entry = RunRecord.of("r", "2026-01-01T00:00:00Z", 1.0, "ReconciliationSucceeded")
    outcome = Outcome(True, "ReconciliationSucceeded", "", 1, "r", inventory=Inventory([cm("a"), cm("b")]), run=entry)
    engine._write_status(read, outcome)

    assert len(syncs.patches) == 2
    assert syncs.patches[0]["metadata"] == {"resourceVersion": "1"}
    assert syncs.patches[1]["metadata"] == {"resourceVersion": "2"}
    recorded = Inventory.from_status(syncs.obj["status"]["inventory"])
    assert [r.name for r in recorded] == ["a", "b", "c"]  # neither run's object is orphaned
    assert syncs.obj["status"]["history"][0]["revision"] == "r"


def test_without_a_conflict_the_run_inventory_is_written_as_is() -> None:
    syncs = FakeSyncs(Inventory([cm("a"), cm("gone")]))
    engine = Engine(Kube.__new__(Kube), fetcher=object())  # type: ignore[arg-type]
    engine.kube = syncs  # type: ignore[assignment]
    engine._write_status(copy.deepcopy(syncs.obj), None, Inventory([cm("a")]))
    assert [r.name for r in Inventory.from_status(syncs.obj["status"]["inventory"])] == ["a"]
