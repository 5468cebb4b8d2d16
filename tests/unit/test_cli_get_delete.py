"""The CLI side of get, delete and uninstall: flags, kubectl's output conventions, confirmation.

The cluster is the in-memory one (tests/unit/fakecluster.py) or a scripted LIST; the real one is
tests/e2e/test_get_delete.py's.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from click.testing import CliRunner

from kubectl_gitops.cli import context, delete_cmd
from kubectl_gitops.cli.main import cli
from kubectl_gitops.cli.render_results import result_data, result_lines
from kubectl_gitops.core.objects import ObjectRef
from kubectl_gitops.core.status import ObjectAction
from kubectl_gitops.engine.apply import ObjectResult
from tests.unit.fakecluster import SYNCS
from tests.unit.test_engine_run import NS, World, cm
from tests.unit.test_queries import ScriptedKube, sync


def run(kube: Any, monkeypatch: pytest.MonkeyPatch, *args: str, tty: bool = False, answer: str = "") -> Any:
    monkeypatch.setattr(context, "connect", lambda _opts: kube)
    monkeypatch.setattr(delete_cmd, "on_terminal", lambda: tty)
    return CliRunner().invoke(cli, list(args), input=answer, catch_exceptions=False)


def listing(*objs: dict[str, Any]) -> ScriptedKube:
    kube = ScriptedKube([(list(objs), "9")], [])
    kube.default_namespace = "ns"  # type: ignore[attr-defined]
    return kube


def test_get_o_name_prints_kubectls_resource_names(monkeypatch: pytest.MonkeyPatch) -> None:
    out = run(listing(sync("a", "1"), sync("b", "2")), monkeypatch, "get", "syncs", "-o", "name")
    assert out.output.splitlines() == ["sync.kubectl-gitops.dev/a", "sync.kubectl-gitops.dev/b"]


def test_get_no_headers_drops_only_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    out = run(listing(sync("a", "1")), monkeypatch, "get", "syncs", "--no-headers")
    lines = out.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("a ") and "NAME" not in out.output


def test_get_status_selector_filters_and_label_selector_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = listing(sync("ok", "1", "True", team="a"), sync("broken", "2", "False", team="a"))
    out = run(kube, monkeypatch, "get", "syncs", "--status-selector", "ready=false", "-l", "team=a", "-o", "name")
    assert out.output.splitlines() == ["sync.kubectl-gitops.dev/broken"]
    assert kube.queries[0]["labelSelector"] == "team=a"


def test_get_a_bad_selector_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubectl_gitops.core.errors import UsageError

    with pytest.raises(UsageError, match="--status-selector"):
        run(listing(), monkeypatch, "get", "syncs", "--status-selector", "ready")


def test_get_tenants_refuses_the_flags_it_does_not_take(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubectl_gitops.core.errors import UsageError

    with pytest.raises(UsageError, match="get tenants"):
        run(listing(), monkeypatch, "get", "tenants", "-o", "name")


def test_get_watch_prints_the_list_then_each_change_until_the_request_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kube = ScriptedKube([([sync("a", "5")], "10")], [[{"type": "MODIFIED", "object": sync("a", "11", "False")}]],
                        idle=True)
    kube.default_namespace = "ns"  # type: ignore[attr-defined]
    started = time.monotonic()
    out = run(kube, monkeypatch, "get", "syncs", "--watch", "--request-timeout", "1s")
    assert time.monotonic() - started < 10
    lines = out.output.splitlines()
    assert lines[0].split()[:2] == ["NAME", "READY"]
    assert [line.split()[:2] for line in lines[1:]] == [["a", "True"], ["a", "False"]]
    kube = ScriptedKube([([sync("a", "5")], "10")], [[{"type": "MODIFIED", "object": sync("b", "11")}]], idle=True)
    kube.default_namespace = "ns"  # type: ignore[attr-defined]
    out = run(kube, monkeypatch, "get", "syncs", "-w", "-o", "json", "--request-timeout", "1s")
    names = [json.loads(doc)["metadata"]["name"] for doc in out.output.replace("}\n{", "}\x00{").split("\x00")]
    assert names == ["a", "b"]  # one object at a time, as kubectl get -w -o json


def synced() -> World:
    w = World(cm("a"), cm("b"))
    assert w.run().ready
    w.cluster.default_namespace = NS
    return w


def test_delete_dry_run_lists_what_would_be_pruned_and_deletes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    w = synced()
    out = run(w.cluster, monkeypatch, "delete", "sync", "app", "--dry-run")
    assert "would-delete ConfigMap/team/a" in out.output and "would-delete ConfigMap/team/b" in out.output
    assert "would be deleted after pruning 2 object(s) (dry run)" in out.output
    assert w.configmaps() == {"a", "b"} and w.cluster.stored(SYNCS, "app", NS) is not None


def test_delete_on_a_terminal_asks_and_no_keeps_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    w = synced()
    out = CliRunner()
    monkeypatch.setattr(context, "connect", lambda _opts: w.cluster)
    monkeypatch.setattr(delete_cmd, "on_terminal", lambda: True)
    result = out.invoke(cli, ["delete", "sync", "app"], input="n\n")
    assert "Delete Sync team/app, pruning the 2 object(s) it applied? [y/N]" in result.output
    assert result.exit_code != 0
    assert w.configmaps() == {"a", "b"} and w.cluster.stored(SYNCS, "app", NS) is not None


def test_delete_on_a_terminal_with_yes_answered_prunes(monkeypatch: pytest.MonkeyPatch) -> None:
    w = synced()
    out = run(w.cluster, monkeypatch, "delete", "sync", "app", tty=True, answer="y\n")
    assert "[y/N]" in out.output
    assert "pruned     ConfigMap/team/a" in out.output and "sync team/app deleted" in out.output
    assert w.configmaps() == set()


def test_delete_yes_or_no_terminal_never_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    w = synced()
    out = run(w.cluster, monkeypatch, "delete", "sync", "app", "--yes", tty=True)
    assert "[y/N]" not in out.output and w.cluster.stored(SYNCS, "app", NS) is None
    w = synced()
    out = run(w.cluster, monkeypatch, "delete", "sync", "app")  # no terminal: as kubectl delete
    assert "[y/N]" not in out.output and w.cluster.stored(SYNCS, "app", NS) is None


def test_result_lines_summarise_many_unchanged_objects_and_data_keeps_plain_strings() -> None:
    refs = [ObjectRef("", "v1", "ConfigMap", "ns", f"c{i}") for i in range(60)]
    results = [ObjectResult(r, ObjectAction.UNCHANGED) for r in refs] + [
        ObjectResult(refs[0], ObjectAction.FAILED, "boom")]
    lines = result_lines(results)
    assert lines == ["  failed     ConfigMap/ns/c0  boom", "  unchanged  60 objects (-o yaml lists every object)"]
    assert len(result_lines(results, unchanged_listed=None)) == 61
    data = result_data(results[-1:])
    assert data == [{"object": "ConfigMap/ns/c0", "result": "failed", "message": "boom"}]
    assert type(data[0]["result"]) is str  # yaml.safe_dump can print it
