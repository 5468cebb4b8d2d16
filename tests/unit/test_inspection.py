"""Pure parts of drift, trace and tree: drifted fields and who changed them, kind names, the tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubectl_gitops.core import inspection
from kubectl_gitops.core.builtin_kinds import BUILTIN
from kubectl_gitops.core.discovery import ResourceMap
from kubectl_gitops.core.errors import UsageError
from kubectl_gitops.core.objects import ObjectRef


def managed(replicas_owner: str = "kubectl-gitops") -> dict[str, object]:
    ours = {"f:metadata": {"f:annotations": {"f:kubectl-gitops.dev/fields": {}}}, "f:spec": {"f:paused": {}}}
    theirs: dict[str, object] = {}
    if replicas_owner == "kubectl-gitops":
        ours["f:spec"]["f:replicas"] = {}  # type: ignore[index]
    else:
        theirs = {"manager": replicas_owner, "operation": "Update", "time": "2026-01-01T00:00:00Z",
                  "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    entries = [{"manager": "kubectl-gitops", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": ours}]
    entries += [theirs] if theirs else []
    record = {"spec": {"replicas": {}, "paused": {}}, "metadata": {"annotations": {"kubectl-gitops.dev/fields": {}}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"kubectl-gitops.dev/fields": json.dumps(record)},
                         "managedFields": entries},
            "spec": {"replicas": 7, "paused": False}}


def test_no_drift_while_the_applier_owns_every_declared_field() -> None:
    assert inspection.drifted_fields(managed()) == []


def test_a_declared_field_taken_over_names_the_manager_operation_and_time() -> None:
    found = inspection.drifted_fields(managed("alice-break-glass"))
    assert found == [inspection.DriftedField("spec.replicas", 7, (
        inspection.Changer("alice-break-glass", "Update", "2026-01-01T00:00:00Z"),))]
    assert found[0].changers[0].describe() == "alice-break-glass (Update, 2026-01-01T00:00:00Z)"


def test_secret_values_in_drift_are_masked_and_objects_without_a_record_report_nothing() -> None:
    obj = managed("bob")
    obj.update(apiVersion="v1", kind="Secret", data={"pw": "aHVudGVyMg=="})
    record = {"data": {"pw": {}}}
    obj["metadata"]["annotations"]["kubectl-gitops.dev/fields"] = json.dumps(record)  # type: ignore[index]
    obj["metadata"]["managedFields"][1]["fieldsV1"] = {"f:data": {"f:pw": {}}}  # type: ignore[index]
    assert [(f.path, f.value) for f in inspection.drifted_fields(obj)] == [("data.pw", "***")]
    del obj["metadata"]["annotations"]  # type: ignore[attr-defined]
    assert inspection.drifted_fields(obj) == []


DISCOVERY = [{"items": [{"metadata": {"name": ""}, "versions": [{"version": "v1", "resources": [
    {"resource": "configmaps", "singularResource": "configmap", "shortNames": ["cm"], "scope": "Namespaced",
     "responseKind": {"kind": "ConfigMap"}}]}]}]},
             {"items": [{"metadata": {"name": "apps"}, "versions": [{"version": "v1", "resources": [
                 {"resource": "deployments", "singularResource": "deployment", "shortNames": ["deploy"],
                  "scope": "Namespaced", "responseKind": {"kind": "Deployment"}}]}]},
                        {"metadata": {"name": "example.com"}, "versions": [{"version": "v2", "resources": [
                            {"resource": "deployments", "scope": "Cluster",
                             "responseKind": {"kind": "Deployment"}}]}]}]}]


@pytest.mark.parametrize(("text", "group"), [("cm", ""), ("configmaps", ""), ("ConfigMap", ""),
                                             ("deploy", "apps"), ("Deployment", "apps"),
                                             ("deployments.example.com", "example.com"),
                                             ("deployments.v1.apps", "apps")])
def test_kind_names_resolve_like_kubectl(text: str, group: str) -> None:
    found = inspection.resolve_kind(text, inspection.kind_names(DISCOVERY))
    assert found is not None and found.group == group


def test_an_unknown_kind_resolves_to_nothing() -> None:
    assert inspection.resolve_kind("widgets", inspection.kind_names(DISCOVERY)) is None


def test_inventory_groups_cluster_scoped_first_then_namespaces_and_kinds() -> None:
    refs = [ObjectRef("", "v1", "ConfigMap", "b", "z"), ObjectRef("", "v1", "ConfigMap", "b", "a"),
            ObjectRef("apps", "v1", "Deployment", "a", "web"), ObjectRef("", "v1", "Namespace", "", "a")]
    groups = inspection.grouped(refs)
    assert [(ns, [(kind, [r.name for r in items]) for kind, items in kinds]) for ns, kinds in groups] == [
        ("", [("Namespace", ["a"])]), ("a", [("Deployment.apps", ["web"])]), ("b", [("ConfigMap", ["a", "z"])])]


def test_tree_lines_draw_the_branches() -> None:
    node = {"children": [{"label": "a", "children": [{"label": "a1"}]}, {"label": "b"}]}
    assert inspection.tree_lines(node) == ["├── a", "│   └── a1", "└── b"]


def test_builtin_kinds_know_the_scope_of_every_common_kind() -> None:
    kinds = ResourceMap(BUILTIN)
    assert kinds.namespaced("v1", "ConfigMap") is True
    assert kinds.namespaced("apps/v1", "Deployment") is True
    assert kinds.namespaced("rbac.authorization.k8s.io/v1", "ClusterRole") is False
    assert kinds.namespaced("v1", "Namespace") is False
    assert kinds.namespaced("example.com/v1", "Widget") is None


def test_a_local_tree_is_rooted_at_its_work_tree_with_its_head_revision(tmp_path: Path) -> None:
    import subprocess

    from kubectl_gitops.adapters.localtree import open_tree

    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "a.yaml").write_text("{}")
    assert open_tree(str(tmp_path / "apps")).revision == "local"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q", "-b", "trunk"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "x"], cwd=tmp_path, check=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, check=True, capture_output=True,
                         text=True).stdout.strip()
    tree = open_tree(str(tmp_path / "apps"))
    assert (tree.root, tree.path, tree.revision) == (tmp_path.resolve(), "./apps", f"trunk@sha1:{sha}")
    assert open_tree(str(tmp_path / "apps"), "v1@sha1:abc").revision == "v1@sha1:abc"
    with pytest.raises(UsageError, match="no such directory"):
        open_tree(str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="not a directory"):
        open_tree(str(tmp_path / "apps" / "a.yaml"))


def test_printable_defuses_escape_sequences_from_field_managers_and_values() -> None:
    assert inspection.printable("evil\x1b[2J\x07manager\n") == "evil?[2J?manager?"
    assert inspection.printable("kubectl-edit ✓") == "kubectl-edit ✓"


def test_hostile_list_keys_are_skipped_not_crashed_on() -> None:
    from kubectl_gitops.core import textdiff

    deep = "k:" + "[" * 100_000 + "]" * 100_000
    assert textdiff.cut({"l": [{"a": 1}]}, {"f:l": {deep: {}, "k:not json": {}}}) == {"l": []}
