"""`build`, `diff`, `drift`, `tree` and `trace` end to end, on the real API server with real Git.

Every claim is checked against the cluster as well as against the command's output: a diff must
change nothing, a build must be what the sync applied (its applied configuration, read back from
the live objects' managedFields), drift must name the field manager that really made the edit.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from kubectl_gitops.constants import ANNOTATION_DIGEST, FIELD_MANAGER
from tests.e2e.conftest import DevCluster
from tests.e2e.syncworld import World, configmap, deployment, docs
from tests.helpers import gitops

ESC = "\x1b["


def secret(name: str, **values: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": values}


# ---------------------------------------------------------------------------------- diff


def test_diff_of_a_local_work_tree_shows_added_changed_removed_with_secrets_masked(w: World) -> None:
    w.repo.write("apps/app.yaml", docs(configmap("changed", {"level": "one"}), secret("creds", password="old-pass-1")))
    w.repo.write("apps/gone.yaml", docs(deployment("gone")))
    w.repo.commit("v1")
    w.create_source()
    w.create_sync("app", "--path", "apps", "--prune")
    w.sync_ok("app")

    # Nothing changed yet, and a field Git doesn't own (another manager's label) is no difference.
    w.kubectl("label", "configmap", "changed", "team=payments")
    same = w.gitops("diff", "app", check=False)
    assert same.returncode == 0, same.output
    assert same.stdout == ""

    # The branch being previewed: one object changed, one added, one removed, the Secret changed.
    w.repo.write("apps/app.yaml", docs(configmap("changed", {"level": "two"}), configmap("added", {"new": "yes"}),
                                       secret("creds", password="new-pass-2")))
    (w.repo.path / "apps/gone.yaml").unlink()
    run = w.gitops("diff", "app", "--path", str(w.repo.path / "apps"), check=False)
    assert run.returncode == 1, run.output
    out = run.stdout
    assert f"--- ConfigMap/{w.ns}/changed (live)" in out
    assert "-  level: one" in out and "+  level: two" in out
    assert f"+++ ConfigMap/{w.ns}/added" in out and "+  new: 'yes'" in out
    assert f"--- Deployment/{w.ns}/gone (live)\n+++ /dev/null" in out
    assert "-  replicas: 1" in out
    assert f"--- Secret/{w.ns}/creds (live)" in out
    assert "-  password: '*** (before)'" in out and "+  password: '*** (after)'" in out
    for value in ("old-pass-1", "new-pass-2", "b2xkLXBhc3MtMQ", "bmV3LXBhc3MtMg"):  # plain and base64
        assert value not in run.output
    assert "team" not in out  # not Git's
    assert ESC not in out  # not a terminal: no colour
    assert "1 to be created, 2 to be configured, 1 to be pruned" in run.stderr

    # Structured, and coloured only when asked; the cluster is untouched by all of it.
    data = json.loads(w.gitops("diff", "app", "--path", str(w.repo.path / "apps"), "-o", "json", check=False).stdout)
    assert {(o["object"], o["action"]) for o in data["objects"]} == {
        (f"ConfigMap/{w.ns}/changed", "configure"), (f"ConfigMap/{w.ns}/added", "create"),
        (f"Deployment/{w.ns}/gone", "prune"), (f"Secret/{w.ns}/creds", "configure")}
    assert data["differs"] is True
    painted = w.gitops("diff", "app", "--path", str(w.repo.path / "apps"), "--color", "always", check=False)
    assert painted.returncode == 1 and f"{ESC}31m-  level: one" in painted.stdout
    assert w.get("configmap", "changed")["data"] == {"level": "one"}  # type: ignore[index]
    assert not w.exists("configmap", "added") and w.exists("deployment", "gone")


def test_diff_from_the_source_revision_matches_what_sync_then_does(w: World) -> None:
    w.repo.write("apps/app.yaml", docs(configmap("app", {"v": "1"})))
    w.repo.commit("v1")
    w.create_source()
    w.create_sync("app", "--path", "apps")
    w.sync_ok("app")
    w.repo.write("apps/app.yaml", docs(configmap("app", {"v": "2"})))
    w.repo.commit("v2")
    watched = (("gitsources.kubectl-gitops.dev", "src"), ("syncs.kubectl-gitops.dev", "app"), ("configmap", "app"))

    def versions() -> list[str]:
        return [w.get(kind, name)["metadata"]["resourceVersion"] for kind, name in watched]  # type: ignore[index]

    before = versions()
    run = w.gitops("diff", "app", check=False)
    after = versions()
    assert after == before  # a diff records nothing: not the GitSource, the Sync nor the object
    assert run.returncode == 1 and "+  v: '2'" in run.stdout, run.output
    assert f"main@sha1:{w.repo.head()}" in run.stdout
    # Coloured on a terminal (a pseudo-terminal from script(1)), and not when NO_COLOR says so.
    command = f"kubectl gitops -n {w.ns} diff app"
    tty = run_in_terminal(command, w.kubeconfig)
    assert f"{ESC}32m+  v: '2'" in tty and f"{ESC}31m-  v: '1'" in tty, tty
    assert ESC not in run_in_terminal(command, w.kubeconfig, NO_COLOR="1")
    assert w.sync_ok("app").results == {f"ConfigMap/{w.ns}/app": "configured"}
    assert w.gitops("diff", "app", check=False).returncode == 0


def run_in_terminal(command: str, kubeconfig: str, **env: str) -> str:
    from tests.helpers import plugin_env

    proc = subprocess.run(["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=120,
                          env=plugin_env(kubeconfig, **env), check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return proc.stdout


def test_diff_without_prune_names_objects_left_in_place(w: World) -> None:
    w.repo.write("apps/app.yaml", docs(configmap("stays"), configmap("kept")))
    w.repo.commit("v1")
    w.create_source()
    w.create_sync("app", "--path", "apps")
    w.sync_ok("app")
    w.repo.write("apps/app.yaml", docs(configmap("stays")))
    run = w.gitops("diff", "app", "--path", str(w.repo.path / "apps"), check=False)
    assert run.returncode == 0 and run.stdout == "", run.output
    assert f"1 object(s) left Git but stay in the cluster (the Sync does not prune): ConfigMap/{w.ns}/kept" \
        in run.stderr


# ---------------------------------------------------------------------------------- build


def applied_configuration(live: dict[str, Any], manager: str = FIELD_MANAGER) -> dict[str, Any]:
    """What `manager` applied, read back from the live object: its Apply entry's fieldsV1 cut out of
    the object (with apiVersion, kind, name and namespace, which managedFields never lists)."""
    entry = next(e for e in live["metadata"]["managedFields"] if e["manager"] == manager and e["operation"] == "Apply")
    out = extract(live, entry["fieldsV1"])
    meta = {k: live["metadata"][k] for k in ("name", "namespace") if k in live["metadata"]}
    return {"apiVersion": live["apiVersion"], "kind": live["kind"], **out,
            "metadata": {**meta, **out.get("metadata", {})}}


def extract(value: Any, fields: dict[str, Any]) -> Any:
    children = {k: v for k, v in fields.items() if k != "."}
    if not children:
        return value
    if isinstance(value, dict):
        return {k[2:]: extract(value[k[2:]], sub) for k, sub in children.items() if k.startswith("f:")
                and k[2:] in value}
    items = []
    for item in value:
        for key, sub in children.items():
            kind, _, rest = key.partition(":")
            wanted = json.loads(rest)
            if (kind == "k" and all(item.get(a) == b for a, b in wanted.items())) or (kind == "v" and item == wanted):
                items.append(extract(item, sub))
    return items


def test_build_offline_is_byte_identical_to_what_sync_applies(w: World, tmp_path: Path) -> None:
    w.repo.write("apps/app.yaml", docs(configmap("app", {"greeting": "${GREETING}", "n": "1"}), deployment("web", 3)))
    w.repo.write("apps/extra/more.yaml", docs(configmap("more", {"x": "y"}, annotations={"team": "core"})))
    w.repo.commit("v1")
    w.create_source()
    w.create_sync("app", "--path", "apps", "--substitute", "GREETING=hello")
    w.sync_ok("app")

    online = w.gitops("build", "app")
    sync_file = tmp_path / "sync.yaml"
    sync_file.write_text(w.kubectl("get", "syncs.kubectl-gitops.dev", "app", "-o", "yaml").stdout)
    # No cluster at all: the kubeconfig points nowhere.
    offline = gitops("build", "app", "--offline", "--path", str(w.repo.path / "apps"), "--sync-file",
                     str(sync_file), kubeconfig=str(tmp_path / "no-such-kubeconfig"))
    assert offline.stdout == online.stdout
    built = list(yaml.safe_load_all(offline.stdout))
    assert len(built) == 3

    for obj in built:
        kind, name = obj["kind"], obj["metadata"]["name"]
        live = json.loads(w.kubectl("get", kind.lower(), name, "-o", "json", "--show-managed-fields").stdout)
        assert applied_configuration(live) == obj, f"{kind}/{name}: the build is not what sync applied"
        assert live["metadata"]["annotations"][ANNOTATION_DIGEST] == obj["metadata"]["annotations"][ANNOTATION_DIGEST]
    assert built[0]["data"]["greeting"] == "hello"

    # The same build offline from flags alone (no Sync file), and as JSON.
    flags = gitops("-n", w.ns, "build", "app", "--offline", "--path", str(w.repo.path / "apps"),
                   "--substitute", "GREETING=hello", "-o", "json", kubeconfig=str(tmp_path / "none"))
    assert json.loads(flags.stdout)["items"] == built


# ---------------------------------------------------------------------------------- drift


def test_drift_names_the_break_glass_users_field_manager(w: World, dev_cluster: DevCluster,
                                                         tmp_path: Path) -> None:
    w.repo.write("apps/app.yaml", docs(deployment("web", 2), configmap("cfg", {"a": "1"}), configmap("doomed")))
    w.repo.commit("v1")
    w.create_source()
    w.create_sync("app", "--path", "apps")
    w.sync_ok("app")
    assert w.gitops("drift", "app", check=False).returncode == 0

    alice = tmp_path / "alice.kubeconfig"
    alice.write_text(gitops("dev", "kubeconfig", "--name", dev_cluster.name, "--user", "alice", "--group",
                            "kubectl-gitops:break-glass").stdout)
    w.kubectl("create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice")
    subprocess.run(["kubectl", "-n", w.ns, "scale", "deployment", "web", "--replicas=7"], check=True,
                   env={**_env(), "KUBECONFIG": str(alice)}, capture_output=True)
    subprocess.run(["kubectl", "-n", w.ns, "patch", "configmap", "cfg", "--field-manager=alice-break-glass",
                    "-p", '{"data":{"a":"hot-fix"}}'], check=True, env={**_env(), "KUBECONFIG": str(alice)},
                   capture_output=True)
    w.kubectl("delete", "configmap", "doomed")

    run = w.gitops("drift", "app", check=False)
    assert run.returncode == 1, run.output
    rows = {tuple(line.split()[:3]) for line in run.stdout.splitlines()[1:]}
    assert (f"{w.ns}/app", f"ConfigMap/{w.ns}/cfg", "data.a") in rows
    assert (f"{w.ns}/app", f"Deployment/{w.ns}/web", "spec.replicas") in rows
    assert (f"{w.ns}/app", f"ConfigMap/{w.ns}/doomed", "(deleted)") in rows
    assert "alice-break-glass (Update" in run.stdout
    assert "(Update /scale" in run.stdout  # `kubectl scale` writes through the scale subresource
    data = json.loads(w.gitops("drift", "-A", "-o", "json", check=False).stdout)
    mine = next(s for s in data["syncs"] if s["sync"] == f"{w.ns}/app")
    cfg = next(o for o in mine["drift"] if o["object"] == f"ConfigMap/{w.ns}/cfg")
    assert cfg["fields"] == [{"path": "data.a", "value": "hot-fix", "changedBy": [
        {"manager": "alice-break-glass", "operation": "Update", "time": cfg["fields"][0]["changedBy"][0]["time"]}]}]
    assert w.get("configmap", "cfg")["data"] == {"a": "hot-fix"}  # type: ignore[index]  # drift applies nothing

    w.sync_ok("app")  # Git takes its fields back: no drift left
    after = w.gitops("drift", "app", check=False)
    assert after.returncode == 0, after.output


def _env() -> dict[str, str]:
    from tests.helpers import plugin_env

    return plugin_env()


# ---------------------------------------------------------------------------------- trace and tree


def two_deep(w: World) -> None:
    """Sync `root` applies the Sync `child`, which applies ConfigMap `leaf`."""
    child = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync", "metadata": {"name": "child"},
             "spec": {"sourceRef": {"kind": "GitSource", "name": "src"}, "path": "apps", "interval": "10m",
                      "prune": True}}
    w.repo.write("root/child.yaml", docs(child))
    w.repo.write("apps/leaf.yaml", docs(configmap("leaf")))
    w.repo.commit("two Syncs deep")
    w.create_source()
    w.create_sync("root", "--path", "root")
    w.sync_ok("root")
    w.sync_ok("child")


def test_trace_shows_an_object_two_syncs_deep(w: World) -> None:
    two_deep(w)
    revision = f"main@sha1:{w.repo.head()}"
    run = w.gitops("trace", "configmap/leaf")
    lines = run.stdout.splitlines()
    assert lines[0] == f"Object:    ConfigMap/{w.ns}/leaf"
    assert f"Sync:      {w.ns}/child" in lines
    assert f"Source:    GitSource {w.ns}/src  {w.repo.url}  (branch main)" in lines
    assert "Path:      apps" in lines and f"Revision:  {revision}" in lines
    assert "applied by:" in lines
    assert f"  Object:    Sync/{w.ns}/child" in lines and f"  Sync:      {w.ns}/root" in lines
    assert "  Path:      root" in lines
    assert any(line.startswith("Applied:") and "kubectl-gitops-applier" in line for line in lines)
    assert "Drift:     none" in run.stdout

    data = json.loads(w.gitops("trace", "cm", "leaf", "-o", "json").stdout)
    assert [link["sync"] for link in data["chain"]] == [f"{w.ns}/child", f"{w.ns}/root"]
    assert all(link["in_inventory"] and link["revision"] == revision for link in data["chain"])


def test_tree_groups_by_namespace_and_kind_and_nests_syncs(w: World) -> None:
    two_deep(w)
    out = w.gitops("tree", "root").stdout.splitlines()
    assert out[0].startswith(f"Sync/{w.ns}/root  main@sha1:")
    assert out[1:] == [
        f"└── Namespace {w.ns}",
        "    └── Sync.kubectl-gitops.dev",
        "        └── child",
        f"            └── Sync/{w.ns}/child  main@sha1:{w.repo.head()}  Ready=True (ReconciliationSucceeded)",
        f"                └── Namespace {w.ns}",
        "                    └── ConfigMap",
        "                        └── leaf",
    ]
    data = json.loads(w.gitops("tree", "root", "-o", "json").stdout)
    assert data["inventory"][0]["sync"]["inventory"][0]["object"] == f"ConfigMap/{w.ns}/leaf"


# ---------------------------------------------------------------------------------- bad input


def test_bad_input_is_one_clear_line_and_a_non_zero_exit(w: World) -> None:
    w.repo.write("apps/app.yaml", docs(configmap("app")))
    w.repo.commit("v1")
    w.create_source()
    w.create_sync("app", "--path", "apps")
    w.sync_ok("app")
    w.kubectl("create", "configmap", "stray")
    cases = {
        ("build", "nope"): f"error: Sync {w.ns}/nope not found",
        ("diff", "nope"): f"error: Sync {w.ns}/nope not found",
        ("drift", "nope"): f"error: Sync {w.ns}/nope not found",
        ("tree", "nope"): f"error: Sync {w.ns}/nope not found",
        ("diff", "app", "--path", "/no/such/dir"): "error: --path /no/such/dir: no such directory",
        ("build", "app", "--path", "/no/such/dir"): "error: --path /no/such/dir: no such directory",
        ("build", "app", "--offline"): "error: --offline needs --path DIR",
        ("trace", "configmap/stray"): f"error: ConfigMap {w.ns}/stray is not managed by any Sync",
        ("trace", "configmap/none"): f"error: ConfigMap {w.ns}/none not found",
        ("trace", "widgets/x"): "error: the server doesn't have a resource type 'widgets'",
    }
    for args, message in cases.items():
        run = w.gitops(*args, check=False)
        assert run.returncode != 0, (args, run.output)
        assert run.stderr.startswith(message) and len(run.stderr.strip().splitlines()) == 1, (args, run.stderr)
        assert "Traceback" not in run.output
        if args[0] in ("diff", "drift"):
            assert run.returncode == 2, (args, run.returncode)
