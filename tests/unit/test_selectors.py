"""core.selectors: kubectl's label selector grammar and Flux's status selector."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.core.errors import UsageError
from kubectl_gitops.core.selectors import (
    labels_match,
    parse_label_selector,
    parse_status_selector,
    status_matches,
)


def obj(labels: dict[str, str] | None = None, **conditions: str) -> dict[str, Any]:
    return {"metadata": {"name": "x", "labels": labels or {}},
            "status": {"conditions": [{"type": k, "status": v} for k, v in conditions.items()]}}


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("team=a", {"team": "a"}, True),
    ("team==a", {"team": "a"}, True),
    ("team=a", {"team": "b"}, False),
    ("team!=a", {"team": "b"}, True),
    ("team!=a", {}, True),  # as in Kubernetes: an absent key is "not a"
    ("team", {"team": ""}, True),
    ("!team", {"team": "a"}, False),
    ("!team", {}, True),
    ("tier in (web, db)", {"tier": "db"}, True),
    ("tier notin (web,db)", {"tier": "db"}, False),
    ("tier notin (web,db)", {}, True),
    ("team=a,tier in (web,db)", {"team": "a", "tier": "web"}, True),
    ("team=a,tier in (web,db)", {"team": "b", "tier": "web"}, False),
    ("app.kubernetes.io/name=podinfo", {"app.kubernetes.io/name": "podinfo"}, True),
    ("", {"any": "thing"}, True),
])
def test_label_selectors_match_as_the_api_server_does(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert labels_match(obj(labels), parse_label_selector(selector)) is expected


@pytest.mark.parametrize("bad", ["team=a=b", "=a", "tier in web", "a b", "team=(a)"])
def test_a_malformed_label_selector_is_a_usage_error_naming_the_part(bad: str) -> None:
    with pytest.raises(UsageError, match="-l/--selector"):
        parse_label_selector(bad)


def test_status_selectors_are_case_insensitive_and_unknown_covers_a_missing_condition() -> None:
    assert parse_status_selector("Ready=FALSE") == (("ready", "False"),)
    assert status_matches(obj(Ready="False"), parse_status_selector("ready=false"))
    assert not status_matches(obj(Ready="True"), parse_status_selector("ready=false"))
    assert status_matches(obj(), parse_status_selector("ready=unknown"))
    assert status_matches(obj(Ready="True", Healthy="False"), parse_status_selector("ready=true,healthy=false"))
    assert status_matches({"status": "garbage"}, parse_status_selector("ready=unknown"))


@pytest.mark.parametrize("bad", ["ready", "ready=maybe", "=true"])
def test_a_malformed_status_selector_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="--status-selector"):
        parse_status_selector(bad)
