"""Rollback pins and history, decided purely (core/history.py), and their place in the CRD and spec."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from kubectl_gitops.core.history import (
    RevisionNotInHistory,
    changes,
    pin_sha,
    pinned,
    records,
    rollback_target,
    sha_of,
    short,
)
from kubectl_gitops.core.spec import InvalidSpec, parse_sync
from kubectl_gitops.core.status import RunRecord

A, B, C = "a" * 40, "b" * 40, "c" * 40
CRD = Path(__file__).resolve().parents[2] / "manifests" / "crds" / "syncs.yaml"


def run(sha: str, result: str = "ReconciliationSucceeded", **kw: object) -> RunRecord:
    return RunRecord.of(f"main@sha1:{sha}", "2026-01-01T00:00:00Z", 1.5, result, {"created": 1}, **kw)  # type: ignore[arg-type]


def test_pin_forms():
    assert pin_sha(A) == A
    assert pin_sha(f"main@sha1:{A}") == A
    assert pin_sha(f"sha1:{A}") == A
    assert pin_sha(f"v1.2.3@sha1:{A}") == A
    for bad in ("", "main", A[:12], A.upper(), f"main@sha1:{A}x", f"main@sha256:{A}", f"a@b@sha1:{A}"):
        with pytest.raises(ValueError):
            pin_sha(bad)
    assert sha_of("main@sha1:" + B) == B and sha_of("nothing") == ""
    assert short(f"main@sha1:{A}") == "main@sha1:" + A[:12]
    assert short("weird") == "weird"


def test_default_target_is_the_previous_applied_revision():
    history = [run(C), run(B, "BuildFailed"), run(C), run(B), run(A)]
    target = rollback_target(history, f"main@sha1:{C}", "", "Sync ns/app")
    assert target.revision == f"main@sha1:{B}" and target.sha == B


def test_target_by_revision_sha_and_prefix():
    history = [run(C), run(B), run(A)]
    assert rollback_target(history, "", f"main@sha1:{A}", "S").sha == A
    assert rollback_target(history, "", A, "S").sha == A
    assert rollback_target(history, "", A[:7], "S").sha == A
    assert rollback_target(history, "", f"sha1:{B}", "S").sha == B


def test_a_revision_not_in_history_is_one_clear_error():
    history = [run(C), run(B)]
    with pytest.raises(RevisionNotInHistory, match=r"'dddddddd' is not in the history of Sync ns/app \(applied: "):
        rollback_target(history, "", "dddddddd", "Sync ns/app")
    with pytest.raises(RevisionNotInHistory, match="not in the history"):
        rollback_target(history, "", "main", "Sync ns/app")
    with pytest.raises(RevisionNotInHistory, match="not in the history"):
        rollback_target(history, "", "abc", "Sync ns/app")  # too short to be a prefix


def test_a_revision_that_only_failed_cannot_be_pinned():
    history = [run(C), run(B, "BuildFailed"), run(B, "ApplyFailed")]
    with pytest.raises(RevisionNotInHistory, match=r"never applied successfully .*ApplyFailed, BuildFailed"):
        rollback_target(history, "", B, "Sync ns/app")


def test_nothing_earlier_to_roll_back_to():
    with pytest.raises(RevisionNotInHistory, match="no earlier applied revision"):
        rollback_target([run(C), run(C)], f"main@sha1:{C}", "", "Sync ns/app")
    with pytest.raises(RevisionNotInHistory, match="no applied revisions recorded"):
        rollback_target([], "", "", "Sync ns/app")


def test_ambiguous_prefix():
    d1, d2 = "d" * 8 + "1" * 32, "d" * 8 + "2" * 32
    with pytest.raises(RevisionNotInHistory, match="ambiguous"):
        rollback_target([run(d1), run(d2)], "", "dddddddd", "S")


def test_records_and_changes():
    sync = {"spec": {"revision": f"main@sha1:{A}"},
            "status": {"history": [run(A, by="alice", pinned=True).to_dict(), "junk", {"durationSeconds": "x"}]}}
    got = records(sync)
    assert len(got) == 1 and got[0].by == "alice" and got[0].pinned
    assert pinned(sync) == f"main@sha1:{A}" and pinned({}) == ""
    assert changes({"created": 2, "unchanged": 5, "configured": 1}) == "2 created, 1 configured"
    assert changes({"unchanged": 5}) == "-"


def test_run_record_who_and_pin_round_trip_and_stay_out_when_unset():
    plain = run(A).to_dict()
    assert "by" not in plain and "pinned" not in plain
    full = run(A, by="system:admin", pinned=True)
    assert RunRecord.from_dict(full.to_dict()) == full
    assert full.to_dict()["by"] == "system:admin" and full.to_dict()["pinned"] is True


def test_spec_revision_parsed_and_checked():
    base = {"metadata": {"name": "app", "namespace": "ns"}, "spec": {"sourceRef": {"name": "src"}}}
    assert parse_sync(base).revision == ""
    assert parse_sync({**base, "spec": {**base["spec"], "revision": f"main@sha1:{A}"}}).revision == f"main@sha1:{A}"
    with pytest.raises(InvalidSpec, match=r"Sync ns/app: spec.revision: 'main' is not a full commit SHA"):
        parse_sync({**base, "spec": {**base["spec"], "revision": "main"}})


def test_crd_declares_the_pin_and_the_new_history_fields():
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    pin = schema["spec"]["properties"]["revision"]
    pattern = re.compile(pin["pattern"])
    for good in (A, f"main@sha1:{A}", f"sha1:{A}"):
        assert pattern.match(good) and pin_sha(good) == A
    assert not pattern.match("main")
    entry = schema["status"]["properties"]["history"]["items"]["properties"]
    assert entry["by"]["type"] == "string" and entry["pinned"]["type"] == "boolean"
    columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Pinned"] == ".spec.revision"
