"""kubectl-style tables and ages (cli/render_table.py) and the `get` rows (cli/get_cmd.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubectl_gitops.cli.get_cmd import HEADERS, source_row, sync_row
from kubectl_gitops.cli.render_table import age, echo_table, table

JSON = dict[str, Any]
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def ts(delta: timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(delta: timedelta) -> str:
    """A timestamp relative to the real clock (the `get` rows compute ages against it)."""
    return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- table ---------------------------------------------------------------------------------------


def test_table_aligns_columns_three_spaces_apart() -> None:
    out = table(["NAME", "READY", "MESSAGE"],
                [["podinfo", "True", "stored artifact"], ["a", "False", "authentication required"]])
    assert out.splitlines() == [
        "NAME      READY   MESSAGE",
        "podinfo   True    stored artifact",
        "a         False   authentication required",
    ]


def test_table_columns_start_at_the_same_offset_on_every_line() -> None:
    rows = [["x" * n, "y" * (5 - n), "z"] for n in range(1, 5)]
    lines = table(["A", "B", "C"], rows).splitlines()
    offsets = {line.index("C") if i == 0 else line.index("z") for i, line in enumerate(lines)}
    assert len(offsets) == 1


def test_table_strips_trailing_spaces() -> None:
    out = table(["NAME", "MESSAGE"], [["longer-name", ""]])
    assert all(line == line.rstrip() for line in out.splitlines())
    assert out.splitlines()[1] == "longer-name"


def test_table_with_no_rows_is_the_header() -> None:
    assert table(["NAME", "READY"], []) == "NAME   READY"


def test_table_rejects_ragged_rows() -> None:
    with pytest.raises(ValueError):
        table(["NAME", "READY"], [["only-name"]])


def test_echo_table_empty_message_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    echo_table(["NAME"], [], "No Sync resources found in default namespace.")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "No Sync resources found in default namespace.\n"
    echo_table(["NAME"], [["apps"]], "unused")
    out, err = capsys.readouterr()
    assert out == "NAME\napps\n"
    assert err == ""


# --- age -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(seconds=0), "0s"),
    (timedelta(seconds=45), "45s"),
    (timedelta(seconds=59), "59s"),
    (timedelta(seconds=60), "1m"),
    (timedelta(minutes=12, seconds=30), "12m"),
    (timedelta(minutes=90), "90m"),
    (timedelta(hours=2), "2h"),
    (timedelta(hours=3, minutes=59), "3h"),
    (timedelta(hours=47), "47h"),
    (timedelta(days=2), "2d"),
    (timedelta(days=400), "400d"),
])
def test_age_like_kubectl(delta: timedelta, text: str) -> None:
    assert age(ts(delta), NOW) == text


def test_age_in_the_future_is_zero() -> None:
    assert age(ts(timedelta(seconds=-30)), NOW) == "0s"


@pytest.mark.parametrize("bad", [None, "", "yesterday", "2026-03-01 12:00:00", "2026-03-01T12:00:00.123Z",
                                 "2026-13-01T00:00:00Z", "1709294400"])
def test_age_bad_timestamps(bad: str | None) -> None:
    assert age(bad, NOW) == "<unknown>"


def test_age_defaults_to_now() -> None:
    recent = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert age(recent) in ("4m", "5m")


# --- get rows ------------------------------------------------------------------------------------

SOURCE: JSON = {
    "apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "GitSource",
    "metadata": {"name": "podinfo", "namespace": "flux-demo", "generation": 1,
                 "creationTimestamp": ago(timedelta(hours=3))},
    "spec": {"url": "https://github.com/stefanprodan/podinfo", "ref": {"branch": "master"}, "interval": "1m"},
    "status": {
        "observedGeneration": 1,
        "artifact": {"revision": "master@sha1:4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"},
        "conditions": [
            {"type": "Reconciling", "status": "False", "reason": "Succeeded", "message": "done",
             "lastTransitionTime": ts(timedelta(minutes=1))},
            {"type": "Ready", "status": "True", "reason": "Succeeded",
             "message": "stored artifact for revision 'master@sha1:4c3b2a1f'",
             "lastTransitionTime": ts(timedelta(minutes=1))},
        ],
    },
}

SYNC: JSON = {
    "apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
    "metadata": {"name": "apps", "namespace": "team-a", "generation": 4, "creationTimestamp": ago(timedelta(days=2))},
    "spec": {"sourceRef": {"kind": "GitSource", "name": "podinfo"}, "path": "./kustomize", "prune": True,
             "interval": "10m", "driftGuard": "warn"},
    "status": {
        "observedGeneration": 4,
        "lastAppliedRevision": "master@sha1:4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b",
        "inventory": {"entries": [{"id": "team-a_podinfo_apps_Deployment", "v": "v1"},
                                  {"id": "team-a_podinfo__Service", "v": "v1"},
                                  {"id": "team-a_podinfo_autoscaling_HorizontalPodAutoscaler", "v": "v2"}]},
        "conditions": [{"type": "Ready", "status": "False", "reason": "HealthCheckFailed",
                        "message": "timeout after 300s waiting for 1 object(s)",
                        "lastTransitionTime": ts(timedelta(minutes=2))}],
    },
}


def test_source_row() -> None:
    row = source_row(SOURCE, wide=False)
    assert row[0] == "podinfo"
    assert row[1] == "True"
    assert row[2] == "master@sha1:4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"
    assert row[3] == "3h"
    assert row[-1] == "stored artifact for revision 'master@sha1:4c3b2a1f'"
    assert len(row) == len(HEADERS["sources"][0]) + 1  # + MESSAGE


def test_source_row_wide() -> None:
    obj = {**SOURCE, "spec": {**SOURCE["spec"], "suspend": True, "ref": {"branch": "main", "commit": "abc"}}}
    row = source_row(obj, wide=True)
    base, extra = HEADERS["sources"]
    assert len(row) == len(base) + len(extra) + 1
    assert row[4:7] == ["https://github.com/stefanprodan/podinfo", "branch=main, commit=abc", "True"]
    assert row[-1] == SOURCE["status"]["conditions"][1]["message"]


def test_source_row_not_reconciled_yet() -> None:
    obj = {"apiVersion": SOURCE["apiVersion"], "kind": "GitSource",
           "metadata": {"name": "new", "namespace": "flux-demo"}, "spec": {"url": "file:///srv/git/r"}}
    assert source_row(obj, wide=False) == ["new", "Unknown", "", "<unknown>", "not reconciled yet"]
    assert source_row(obj, wide=True)[4:7] == ["file:///srv/git/r", "", "False"]


def test_sync_row() -> None:
    row = sync_row(SYNC, wide=False)
    assert row == ["apps", "False", "master@sha1:4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b", "2d",
                   "timeout after 300s waiting for 1 object(s)"]


def test_sync_row_wide() -> None:
    row = sync_row(SYNC, wide=True)
    base, extra = HEADERS["syncs"]
    assert len(row) == len(base) + len(extra) + 1
    assert dict(zip(extra, row[len(base):-1], strict=True)) == {
        "SOURCE": "podinfo", "PATH": "./kustomize", "OBJECTS": "3", "SUSPENDED": "False", "DRIFTGUARD": "warn"}


def test_sync_row_wide_defaults() -> None:
    obj = {"apiVersion": SYNC["apiVersion"], "kind": "Sync",
           "metadata": {"name": "fresh", "namespace": "team-a", "creationTimestamp": "not-a-time"},
           "spec": {"sourceRef": {"name": "podinfo"}, "path": "./", "prune": False, "suspend": True}}
    row = sync_row(obj, wide=True)
    assert row == ["fresh", "Unknown", "", "<unknown>", "podinfo", "./", "0", "True", "enforce",
                   "not reconciled yet"]


def test_rows_render_as_an_aligned_table() -> None:
    headers = [*HEADERS["syncs"][0], "MESSAGE"]
    out = table(headers, [sync_row(SYNC, wide=False)]).splitlines()
    assert out[0].split() == headers
    assert out[1].index("False") == out[0].index("READY")
    assert out[1].index("master@") == out[0].index("REVISION")
