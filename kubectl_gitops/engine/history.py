"""Read a Sync for the inspecting commands, and write or clear its rollback pin.

The pin is one field, `spec.revision` (core/history.py says why it lives in the spec); writing
it is a JSON merge patch on the Sync, so it changes the generation and nothing else.
"""

from __future__ import annotations

from typing import Any

from kubectl_gitops.adapters.kube import Kube
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.engine import record

JSON = dict[str, Any]


def load_sync(kube: Kube, namespace: str, name: str) -> JSON:
    """The Sync, or one clear error: not installed, or not found (naming namespace and name)."""
    found = kube.get(record.SYNCS, name, namespace)
    if found is None:
        record.require_installed(kube)
        raise GitOpsError(f"Sync {namespace}/{name} not found")
    return found


def set_pin(kube: Kube, namespace: str, name: str, revision: str | None) -> JSON:
    """Pin the Sync to `revision` (spec.revision), or clear the pin with None."""
    return kube.merge_patch(record.SYNCS, name, namespace, {"spec": {"revision": revision}})
