"""The refusal names the revision stamped on the object, which is right even when the Sync's
status lags (the webhook caches Syncs, and the very first run writes status only at its end)."""

from __future__ import annotations

import dataclasses
from typing import Any

from kubectl_gitops.constants import ANNOTATION_REVISION
from tests.unit.test_drift import SYNC, judge, request


def _stamp(revision: str) -> Any:
    def edit(r: dict[str, Any]) -> None:
        r["oldObject"]["metadata"].setdefault("annotations", {})[ANNOTATION_REVISION] = revision
    return edit


def test_message_prefers_the_objects_revision_stamp() -> None:
    stamped = "main@sha1:" + "a" * 40
    resp = judge(request("deployment_update_kubectl_edit.json", _stamp(stamped)))
    assert not resp.allowed
    assert stamped in resp.message and SYNC.revision not in resp.message


def _unstamped(r: dict[str, Any]) -> None:
    r["oldObject"]["metadata"].get("annotations", {}).pop(ANNOTATION_REVISION, None)


def test_message_falls_back_to_the_sync_status_then_unknown() -> None:
    resp = judge(request("deployment_update_kubectl_edit.json", _unstamped))
    assert SYNC.revision in resp.message
    never_applied = dataclasses.replace(SYNC, revision="")
    resp = judge(request("deployment_update_kubectl_edit.json", _unstamped), never_applied)
    assert "revision unknown" in resp.message
