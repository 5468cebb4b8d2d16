"""What the API server records in managedFields for a server-side apply, closely enough for unit
tests: every map key of the applied object as an `f:` node, lists and scalars as owned leaves."""

from __future__ import annotations

import copy
from typing import Any

from kubectl_gitops.constants import FIELD_MANAGER

_SKIPPED = frozenset({"apiVersion", "kind", "status"})
_SERVER_META = frozenset({"name", "namespace", "uid", "resourceVersion", "creationTimestamp", "managedFields",
                          "generation"})


def fields_v1(value: Any, top: bool = True) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, Any] = {}
    for key, child in value.items():
        if child is None or (top and key in _SKIPPED):
            continue
        if top and key == "metadata" and isinstance(child, dict):
            out[f"f:{key}"] = fields_v1({k: v for k, v in child.items() if k not in _SERVER_META}, top=False)
        else:
            out[f"f:{key}"] = fields_v1(child, top=False)
    return out


def applied(obj: dict[str, Any], manager: str = FIELD_MANAGER) -> dict[str, Any]:
    """A copy of `obj` as if `manager` had just server-side applied it."""
    out = copy.deepcopy(obj)
    entry = {"manager": manager, "operation": "Apply", "apiVersion": obj.get("apiVersion", "v1"),
             "fieldsType": "FieldsV1", "fieldsV1": fields_v1(obj)}
    out.setdefault("metadata", {})["managedFields"] = [entry]
    return out
