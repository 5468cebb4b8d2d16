"""Prune everything a Sync's inventory lists (used when the Sync itself is deleted)."""

from __future__ import annotations

from typing import Any

from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.core.spec import parse_sync
from kubectl_gitops.engine.apply import ObjectResult
from kubectl_gitops.engine.reconcile import Engine, read_inventory


def prune_everything(kube: Kube, sync_obj: dict[str, Any]) -> list[ObjectResult]:
    spec = parse_sync(sync_obj)
    inventory = read_inventory(spec.namespace, spec.name, (sync_obj.get("status") or {}).get("inventory"))
    engine = Engine(kube)
    applier = engine.applier_for(spec)
    live = applier.live_objects({(r.api_version, r.kind) for r in inventory})
    results, _keep = applier.prune(list(inventory), live)
    return results
