"""`history`, `rollback` and `resume` end to end: a real Git repository (file://), the real API server.

Rollback pins the Sync (`spec.revision`) to a revision its history shows applied; the pinned
commit is checked out instead of the branch tip until `rollback --cancel` or `resume` clears it.
Every claim is checked on the cluster (objects, the Sync's spec and status), not on exit codes only.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.syncworld import SYNC_RESOURCE, World, configmap, docs
from tests.e2e.test_commit_signatures import setup as signed_setup
from tests.e2e.test_commit_signatures import ssh_commit, ssh_key, trust


def version(w: World) -> str:
    obj = w.get("configmap", "app")
    assert obj is not None, "ConfigMap app is missing"
    return str(obj["data"]["version"])


def pin(w: World) -> str | None:
    obj = w.get(SYNC_RESOURCE, "app")
    assert obj is not None
    return obj["spec"].get("revision")


def two_revisions(w: World) -> tuple[str, str]:
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "1"})))
    first = w.repo.commit("v1")
    w.setup({"app": {"path": "apps", "prune": True}})
    w.sync_ok("app")
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "2"}), configmap("extra")))
    second = w.repo.commit("v2")
    w.sync_ok("app")
    return first, second


def test_rollback_to_the_previous_revision_and_back(w: World) -> None:
    first, second = two_revisions(w)
    table = w.gitops("history", "app").stdout
    assert f"main@sha1:{second[:12]}" in table and f"main@sha1:{first[:12]}" in table
    assert table.splitlines()[0].split() == ["REVISION", "STARTED", "DURATION", "RESULT", "CHANGES", "BY"]
    assert "1 configured, 1 created" in table or "1 created, 1 configured" in table

    rolled = w.gitops("rollback", "app", check=False)
    assert rolled.returncode == 0, rolled.output
    assert f"pinned to main@sha1:{first[:12]}" in rolled.stderr
    assert version(w) == "1" and not w.exists("configmap", "extra")  # v1 applied, what v2 added pruned
    assert pin(w) == f"main@sha1:{first}"
    assert w.sync_status("app")["lastAppliedRevision"] == f"main@sha1:{first}"
    listed = w.gitops("get", "sync", "app").stdout
    assert "(pinned)" in listed, listed

    # New commits on the branch don't move a pinned Sync (the GitSource still follows the tip).
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "3"})))
    third = w.repo.commit("v3")
    assert w.sync_ok("app").data["revision"] == f"main@sha1:{first}"
    assert version(w) == "1"
    assert w.source_status()["artifact"]["revision"] == f"main@sha1:{third}"

    history = json.loads(w.gitops("history", "app", "-o", "json").stdout)
    assert history["pinned"] == f"main@sha1:{first}"
    runs = history["history"]
    assert [r["revision"] for r in runs] == [f"main@sha1:{s}" for s in (first, first, second, first)]
    assert runs[0]["pinned"] is True and "pinned" not in runs[2]
    assert all(r["by"] for r in runs), runs  # who ran it is recorded
    table = w.gitops("history", "app").stdout
    assert f"main@sha1:{first[:12]} (pinned)" in table

    back = w.gitops("rollback", "app", "--cancel", check=False)
    assert back.returncode == 0, back.output
    assert pin(w) is None and version(w) == "3"
    assert w.sync_status("app")["lastAppliedRevision"] == f"main@sha1:{third}"
    assert "(pinned)" not in w.gitops("get", "sync", "app").stdout
    revisions = [r["revision"] for r in json.loads(w.gitops("history", "app", "-o", "json").stdout)["history"]]
    assert revisions[:2] == [f"main@sha1:{third}", f"main@sha1:{first}"]


def test_rollback_to_a_named_revision_then_resume_tracks_the_branch(w: World) -> None:
    first, second = two_revisions(w)
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "3"})))
    w.repo.commit("v3")
    w.sync_ok("app")
    done = w.gitops("rollback", "app", "--to", first[:8], "-o", "json")
    assert json.loads(done.stdout)["revision"] == f"main@sha1:{first}"
    assert version(w) == "1"
    again = w.gitops("rollback", "app", "--to", f"main@sha1:{second}", "--no-sync")
    assert pin(w) == f"main@sha1:{second}" and version(w) == "1", again.output  # --no-sync: pinned, not applied
    resumed = w.gitops("resume", "sync", "app")
    assert pin(w) is None, resumed.output
    w.sync_ok("app")
    assert version(w) == "3"


def test_bad_input_is_one_clear_line(w: World) -> None:
    first, _ = two_revisions(w)
    missing = w.gitops("rollback", "app", "--to", "0123456789abcdef", check=False)
    assert missing.returncode != 0 and pin(w) is None
    assert missing.stderr.strip().splitlines() == [
        f"error: revision '0123456789abcdef' is not in the history of Sync {w.ns}/app "
        f"(applied: main@sha1:{_short(w, 'app')}, main@sha1:{first[:12]})"]
    for args in (("history", "nope"), ("rollback", "nope")):
        out = w.gitops(*args, check=False)
        assert out.returncode == 1 and out.stderr.strip().splitlines() == [f"error: Sync {w.ns}/nope not found"]


def test_a_pin_outside_the_branch_is_refused_and_nothing_applied(w: World) -> None:
    two_revisions(w)
    w.repo.checkout("side", create=True)
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"version": "side"})))
    side = w.repo.commit("side")
    w.repo.checkout("main")
    w.kubectl("patch", SYNC_RESOURCE, "app", "--type=merge", "-p", json.dumps({"spec": {"revision": side}}))
    run = w.sync("app")
    assert run.returncode == 1 and run.reason == "SourceFailed", run.output
    assert f"the pinned revision {side} (spec.revision) is not in the history of branch main" in run.message
    assert version(w) == "2"


def _short(w: World, sync: str) -> str:
    return str(w.sync_status(sync)["lastAppliedRevision"]).split("sha1:")[1][:12]


def test_a_pin_is_verified_when_the_source_verifies(w: World, tmp_path: Path) -> None:
    """Signed S1, S2 on main, an unsigned commit U before them: rolling back to S1 works; a pin to U
    (written by hand: U was never applied) fails VerificationFailed and applies nothing from U."""
    key, public = ssh_key(tmp_path, "signer")
    try:
        trust(w, {"name": "signer", "type": "ssh", "publicKey": public})
        w.repo.write("apps/cm.yaml", docs(configmap("unsigned-only")))
        unsigned = w.repo.commit("unsigned")
        w.repo.remove("apps/cm.yaml").write("apps/app.yaml", docs(configmap("app", {"version": "1"})))
        first = ssh_commit(w.repo, key, "s1")
        signed_setup(w)
        w.sync_ok("app")
        w.repo.write("apps/app.yaml", docs(configmap("app", {"version": "2"})))
        ssh_commit(w.repo, key, "s2")
        w.sync_ok("app")
        rolled = w.gitops("rollback", "app", check=False)
        assert rolled.returncode == 0 and version(w) == "1", rolled.output
        assert w.sync_status("app")["lastAppliedRevision"] == f"main@sha1:{first}"
        w.kubectl("patch", SYNC_RESOURCE, "app", "--type=merge", "-p",
                  json.dumps({"spec": {"revision": f"main@sha1:{unsigned}"}}))
        run = w.sync("app")
        assert run.returncode == 1 and run.reason == "VerificationFailed", run.output
        assert f"pinned commit {unsigned} refused" in run.message
        assert not w.exists("configmap", "unsigned-only") and version(w) == "1"
    finally:
        w.kubectl("delete", "trustpolicy", w.ns, "--ignore-not-found", check=False)
