"""Whoever can edit what a Sync reads gets no more than the objects that Sync is meant to apply.

On the real dev control plane: a user with only `edit` in the namespace changes a ConfigMap the
Sync substitutes from and tries to make the applier create a ClusterRoleBinding; a Secret's value
that breaks validation must not show in the status, the Events or the CLI output; a kustomization
that reaches for a directory of the syncing machine fails the build and applies nothing.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.e2e.syncworld import World, configmap, docs
from tests.helpers import gitops, kubectl

MALLORY = "mallory@example.com"
CRB_NAME_PREFIX = "pwned-"


def apply(world: World, *objs: dict[str, Any], as_user: str = "") -> None:
    extra = ("--as", as_user) if as_user else ()
    kubectl("-n", world.ns, *extra, "apply", "-f", "-", kubeconfig=world.kubeconfig, input=docs(*objs))


def sync_with_substitution(world: World, ref_kind: str, ref_name: str) -> None:
    world.setup({})
    sync = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
            "metadata": {"name": "app", "namespace": world.ns},
            "spec": {"sourceRef": {"kind": "GitSource", "name": "src"}, "path": "apps", "prune": True,
                     "interval": "10m", "substituteFrom": [{"kind": ref_kind, "name": ref_name}]}}
    apply(world, sync)


def crbs(world: World) -> list[str]:
    out = kubectl("get", "clusterrolebindings", "-o", "jsonpath={.items[*].metadata.name}",
                  kubeconfig=world.kubeconfig).stdout
    return [n for n in out.split() if n.startswith(CRB_NAME_PREFIX)]


def test_an_editor_of_a_substituted_configmap_cannot_create_a_clusterrolebinding(w: World) -> None:
    w.repo.write("apps/app.yaml", """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: app
        data:
          replicas: "${REPLICAS:=1}"
          level: ${LEVEL}
        """)
    w.repo.commit("app with substitution")
    # Mallory may edit ConfigMaps in this namespace, nothing cluster-wide.
    apply(w, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
              "metadata": {"name": "mallory-edit"},
              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
              "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": MALLORY}]})
    apply(w, configmap("vars", {"LEVEL": "debug"}), as_user=MALLORY)
    sync_with_substitution(w, "ConfigMap", "vars")
    w.sync_ok("app")
    assert (w.get("configmap", "app") or {}).get("data") == {"level": "debug", "replicas": "1"}

    crb_name = f"{CRB_NAME_PREFIX}{w.ns}"[:63]
    attack = ("debug\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n"
              f"metadata:\n  name: {crb_name}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n"
              f"  kind: ClusterRole\n  name: cluster-admin\nsubjects:\n- apiGroup: rbac.authorization.k8s.io\n"
              f"  kind: User\n  name: {MALLORY}\n")
    denied = kubectl("--as", MALLORY, "create", "clusterrolebinding", "direct", "--clusterrole=cluster-admin",
                     f"--user={MALLORY}", kubeconfig=w.kubeconfig, check=False)
    assert denied.returncode != 0, "mallory must not be able to do this herself"
    apply(w, configmap("vars", {"LEVEL": attack}), as_user=MALLORY)

    run = w.sync("app")
    assert run.returncode != 0 and run.reason == "BuildFailed", run.output
    assert "LEVEL" in run.message and "cluster-admin" not in run.message
    assert crb_name not in crbs(w), "the substituted value created a ClusterRoleBinding"
    ready = w.condition("app", "Ready")
    assert ready["status"] == "False" and ready["reason"] == "BuildFailed"
    assert (w.get("configmap", "app") or {}).get("data", {}).get("level") == "debug", "nothing applied"


def test_a_secret_value_never_shows_in_status_events_or_output(w: World) -> None:
    secret_value = "Sup3r_Secret_Value_Not_A_Name"
    w.repo.write("apps/app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${NAME}\n")
    w.repo.commit("name from a secret")
    apply(w, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "vars"},
              "data": {"NAME": base64.b64encode(secret_value.encode()).decode()}})
    sync_with_substitution(w, "Secret", "vars")
    run = w.sync("app")
    assert run.returncode != 0 and run.reason == "BuildFailed", run.output
    assert "metadata.name" in run.message and "***" in run.message
    status = json.dumps(w.sync_status("app"))
    events = json.dumps(w.events("app"))
    plain = w.gitops("sync", "app", check=False)
    for where, text in (("CLI -o json", run.output), ("status", status), ("events", events),
                        ("CLI", plain.output)):
        assert secret_value not in text, f"the Secret's value leaked into the {where}"


def test_a_kustomization_cannot_read_a_directory_of_the_machine(w: World, tmp_path: Path) -> None:
    machine = tmp_path / "machine-private"
    machine.mkdir()
    (machine / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (machine / "cm.yaml").write_text(docs(configmap("stolen", {"token": "from-the-machine"})))
    depth = len(Path(w.repo.path / "apps").resolve().parts) - 1
    climb = "/".join([".."] * depth) + str(machine.resolve())
    w.repo.write("apps/kustomization.yaml", f"resources: [cm.yaml, {climb}]\n")
    w.repo.write("apps/cm.yaml", docs(configmap("app")))
    w.repo.commit("reach out")
    w.setup({"app": {"path": "apps", "prune": True}})
    run = w.sync("app")
    assert run.returncode != 0 and run.reason == "BuildFailed", run.output
    assert "outside the repository" in run.message
    assert not w.exists("configmap", "stolen") and not w.exists("configmap", "app")


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text


def test_an_unusable_cache_is_a_source_failure_on_the_sync(w: World, tmp_path: Path) -> None:
    w.repo.write("apps/cm.yaml", docs(configmap("app")))
    w.repo.commit("app")
    w.setup({"app": {"path": "apps", "prune": True}})
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    run = gitops("-n", w.ns, "sync", "app", kubeconfig=w.kubeconfig, check=False,
                 KUBECTL_GITOPS_CACHE=str(blocker / "cache"))
    assert run.returncode == 1
    no_traceback(run.output)
    assert str(blocker / "cache") in run.output
    ready = w.condition("app", "Ready")
    assert ready["status"] == "False" and ready["reason"] == "SourceFailed"
    assert str(blocker / "cache") in ready["message"]


def test_a_corrupted_cache_is_recloned_and_the_sync_goes_on(w: World, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"v": "1"})))
    w.repo.commit("v1")
    w.setup({"app": {"path": "apps", "prune": True}})
    first = gitops("-n", w.ns, "sync", "app", kubeconfig=w.kubeconfig, KUBECTL_GITOPS_CACHE=str(cache))
    no_traceback(first.output)
    (repo_cache,) = [p for p in (cache / "git").iterdir() if p.is_dir()]
    for obj in (repo_cache / "objects").rglob("*"):
        if obj.is_file():
            obj.chmod(0o644)
            obj.write_bytes(b"\0garbage")
    w.repo.write("apps/cm.yaml", docs(configmap("app", {"v": "2"})))
    w.repo.commit("v2")
    again = gitops("-n", w.ns, "sync", "app", kubeconfig=w.kubeconfig, KUBECTL_GITOPS_CACHE=str(cache))
    no_traceback(again.output)
    assert "corrupted" in again.stderr and str(repo_cache) in again.stderr
    assert (w.get("configmap", "app") or {}).get("data") == {"v": "2"}


def test_a_nul_byte_in_a_branch_is_a_source_failure(w: World) -> None:
    w.repo.write("apps/cm.yaml", docs(configmap("app")))
    w.repo.commit("app")
    w.setup({"app": {"path": "apps", "prune": True}})
    # The API server stores a NUL in a string field as it is.
    kubectl("-n", w.ns, "patch", "gitsources.kubectl-gitops.dev", "src", "--type=merge", "-p",
            json.dumps({"spec": {"ref": {"branch": "ma\u0000in"}}}), kubeconfig=w.kubeconfig)
    run = w.sync("app")
    no_traceback(run.output)
    assert run.returncode == 1 and run.reason == "SourceFailed" and "NUL" in run.message
