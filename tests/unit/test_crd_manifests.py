"""The CRDs in manifests/crds, checked offline for what an API server would refuse or silently lose.

An API server prunes every field a structural schema does not declare, without an error: if the
engine writes `status.history[].durationSeconds` and the schema says `duration`, the value just
vanishes. So besides the shape of the CRDs (names, versions, printer columns, types, defaults) these
tests push the status the core modules actually produce, and specs as users write them, through a
small schema walker and fail on any field the schema would drop or mistype. CEL rules are only
checked for presence here; the e2e suite applies the CRDs to a real API server.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.constants import GROUP, KIND_SOURCE, KIND_SYNC, VERSION
from kubectl_gitops.core.inventory import Inventory
from kubectl_gitops.core.objects import ObjectRef
from kubectl_gitops.core.spec import parse_duration, parse_source, parse_sync
from kubectl_gitops.core.status import RunRecord, condition, count_results, push_history

CRDS = Path(__file__).resolve().parents[2] / "manifests" / "crds"
SCHEMA_TYPES = {"object", "array", "string", "integer", "number", "boolean"}
TAKEN_SHORT_NAMES = {"gitrepo", "ks", "kustomization", "app", "apps", "deploy", "svc", "cm", "sts", "ds"}
JSON = dict[str, Any]


def load(name: str) -> JSON:
    docs = [d for d in yaml.safe_load_all((CRDS / name).read_text()) if d]
    assert len(docs) == 1, f"{name} must hold exactly one document"
    return docs[0]


SOURCE = load("gitsources.yaml")
SYNC = load("syncs.yaml")
CASES = [(SOURCE, KIND_SOURCE, "gitsources"), (SYNC, KIND_SYNC, "syncs")]
IDS = [KIND_SOURCE, KIND_SYNC]


def root_schema(crd: JSON) -> JSON:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def at(crd: JSON, *path: str) -> JSON:
    """The schema node at a property path; "[]" steps into array items."""
    node = root_schema(crd)
    for step in path:
        node = node["items"] if step == "[]" else node["properties"][step]
    return node


def walk(node: JSON, path: str = "") -> list[tuple[str, JSON]]:
    """Every schema node below `node` with its dotted path."""
    found = [(path, node)]
    for key, child in (node.get("properties") or {}).items():
        found += walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        found += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += walk(node["additionalProperties"], f"{path}{{}}")
    return found


def problems(schema: JSON, value: Any, path: str = "") -> list[str]:
    """What an API server would drop (undeclared fields) or refuse (wrong type, missing, enum, pattern)."""
    kind = schema.get("type")
    checks = {"object": dict, "array": list, "string": str, "boolean": bool}
    if kind in checks and not isinstance(value, checks[kind]):
        return [f"{path}: expected {kind}, got {value!r}"]
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return [f"{path}: expected integer, got {value!r}"]
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
        return [f"{path}: expected number, got {value!r}"]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if kind == "array":
        for i, item in enumerate(value):
            found += problems(schema["items"], item, f"{path}[{i}]")
    if kind == "object":
        found += _object_problems(schema, value, path)
    return found


def _object_problems(schema: JSON, value: JSON, path: str) -> list[str]:
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    found = [f"{path}.{key}: required" for key in schema.get("required", []) if key not in value]
    for key, item in value.items():
        if props is not None and key in props:
            found += problems(props[key], item, f"{path}.{key}")
        elif isinstance(extra, dict):
            found += problems(extra, item, f"{path}.{key}")
        elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            found.append(f"{path}.{key}: not in the schema (the API server would prune it)")
    return found


# --- shape of the CRDs ------------------------------------------------------------------------


@pytest.mark.parametrize(("crd", "kind", "plural"), CASES, ids=IDS)
def test_identity_and_names(crd: JSON, kind: str, plural: str) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{plural}.{GROUP}"
    spec = crd["spec"]
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    names = spec["names"]
    assert names["kind"] == kind
    assert names["listKind"] == f"{kind}List"
    assert names["plural"] == plural
    assert names["singular"] == kind.lower()
    assert set(names["categories"]) >= {"gitops", "kubectl-gitops"}
    assert names["shortNames"], "short names make `kubectl get` bearable"
    assert not set(names["shortNames"]) & TAKEN_SHORT_NAMES


def test_short_names_are_distinct() -> None:
    assert not set(SOURCE["spec"]["names"]["shortNames"]) & set(SYNC["spec"]["names"]["shortNames"])


@pytest.mark.parametrize(("crd", "kind", "plural"), CASES, ids=IDS)
def test_one_served_storage_version_with_status_subresource(crd: JSON, kind: str, plural: str) -> None:
    versions = crd["spec"]["versions"]
    assert [v["name"] for v in versions] == [VERSION]
    assert versions[0]["served"] is True
    assert versions[0]["storage"] is True
    # Without it the engine's status writes would bump generation and race with spec edits.
    assert versions[0]["subresources"] == {"status": {}}
    assert root_schema(crd)["type"] == "object"


def column_path(json_path: str) -> list[str]:
    """`.status.conditions[?(@.type=="Ready")].status` -> ["status", "conditions", "[]", "status"]."""
    without_filters = re.sub(r"\[\?\(.*?\)\]", ".[]", json_path)
    return [step for step in without_filters.strip(".").split(".") if step]


@pytest.mark.parametrize(("crd", "kind", "plural"), CASES, ids=IDS)
def test_printer_columns_point_at_declared_fields(crd: JSON, kind: str, plural: str) -> None:
    columns = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    default = [c["name"] for c in columns if c.get("priority", 0) == 0]
    assert default == ["Ready", "Revision", "Age", "Message"]
    for column in columns:
        steps = column_path(column["jsonPath"])
        if steps[0] == "metadata":
            assert steps == ["metadata", "creationTimestamp"]
            assert column["type"] == "date"
            continue
        node = at(crd, *steps)  # KeyError = the column would always be empty
        assert node["type"] == column["type"], column["name"]


def test_ready_and_revision_columns() -> None:
    for crd, revision in ((SOURCE, ".status.artifact.revision"), (SYNC, ".status.lastAppliedRevision")):
        columns = {c["name"]: c["jsonPath"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
        assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
        assert columns["Message"] == '.status.conditions[?(@.type=="Ready")].message'
        assert columns["Revision"] == revision


@pytest.mark.parametrize(("crd", "kind", "plural"), CASES, ids=IDS)
def test_every_node_is_typed(crd: JSON, kind: str, plural: str) -> None:
    for path, node in walk(root_schema(crd)):
        assert node.get("type") in SCHEMA_TYPES or node.get("x-kubernetes-preserve-unknown-fields") \
            or node.get("x-kubernetes-int-or-string"), f"{path or '<root>'} has no type"
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), f"{path}: array without items"
        for key in node.get("required", []):
            assert key in node.get("properties", {}), f"{path}: required {key!r} is not declared"


@pytest.mark.parametrize(("crd", "kind", "plural"), CASES, ids=IDS)
def test_spec_fields_are_described_for_kubectl_explain(crd: JSON, kind: str, plural: str) -> None:
    # Array items and map values are explained by their parent's description.
    undocumented = [path for path, node in walk(at(crd, "spec"), ".spec")
                    if not node.get("description") and not path.endswith(("{}", "[]"))]
    assert undocumented == []


@pytest.mark.parametrize(("crd", "kind", "plural"), CASES, ids=IDS)
def test_defaults_satisfy_their_own_schema(crd: JSON, kind: str, plural: str) -> None:
    defaults = [(path, node) for path, node in walk(root_schema(crd)) if "default" in node]
    assert defaults
    for path, node in defaults:
        assert problems(node, node["default"], path) == []


@pytest.mark.parametrize(("crd", "kind", "plural"), CASES, ids=IDS)
def test_enums_are_strings_of_their_type(crd: JSON, kind: str, plural: str) -> None:
    # YAML 1.1 reads a bare `off` or `on` as a boolean: an enum of strings must hold strings.
    for path, node in walk(root_schema(crd)):
        if "enum" in node and node["type"] == "string":
            assert all(isinstance(v, str) for v in node["enum"]), path


@pytest.mark.parametrize(("crd", "kind", "plural"), CASES, ids=IDS)
def test_conditions_follow_metav1_condition(crd: JSON, kind: str, plural: str) -> None:
    conditions = at(crd, "status", "conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"


# --- field semantics ---------------------------------------------------------------------------

DURATION_OK = ["1m", "60s", "1h30m", "500ms", "1.5h", "10m0s"]
DURATION_BAD = ["", "5 min", "1d", "m", "-1m", "1m "]


@pytest.mark.parametrize("field", ["interval", "timeout"])
def test_source_durations(field: str) -> None:
    pattern = at(SOURCE, "spec", field)["pattern"]
    assert all(re.search(pattern, d) for d in DURATION_OK)
    assert not any(re.search(pattern, d) for d in DURATION_BAD)


def test_duration_defaults_are_what_the_engine_assumes() -> None:
    """The API server fills the CRD default in; the core falls back to its own. They must agree."""
    source = parse_source({"metadata": {"name": "s", "namespace": "n"}, "spec": {"url": "https://h/r"}})
    assert parse_duration(at(SOURCE, "spec", "interval")["default"], 0) == source.interval
    assert parse_duration(at(SOURCE, "spec", "timeout")["default"], 0) == source.timeout
    sync = parse_sync({"metadata": {"name": "s", "namespace": "n"}, "spec": {"sourceRef": {"name": "s"}}})
    assert parse_duration(at(SYNC, "spec", "interval")["default"], 0) == sync.interval
    assert parse_duration(at(SYNC, "spec", "timeout")["default"], 0) == sync.timeout
    assert at(SYNC, "spec", "path")["default"] == sync.path
    assert at(SYNC, "spec", "driftGuard")["default"] == sync.drift_guard
    for field in ("interval", "retryInterval", "timeout"):
        assert at(SYNC, "spec", field)["pattern"] == at(SOURCE, "spec", "interval")["pattern"]


@pytest.mark.parametrize("url", ["https://github.com/o/r.git", "http://git.local/r", "ssh://git@h:22/o/r",
                                 "file:///tmp/repo", "git@github.com:o/r.git"])
def test_url_accepts(url: str) -> None:
    assert re.search(at(SOURCE, "spec", "url")["pattern"], url)


@pytest.mark.parametrize("url", ["ftp://h/r", "github.com/o/r", "/tmp/repo", "https://", "git@github.com",
                                 "https://h/r with space"])
def test_url_refuses(url: str) -> None:
    assert not re.search(at(SOURCE, "spec", "url")["pattern"], url)


def test_ref_rules() -> None:
    ref = at(SOURCE, "spec", "ref")
    assert set(ref["properties"]) == {"branch", "tag", "semver", "commit"}
    rules = " ".join(r["rule"] for r in ref["x-kubernetes-validations"])
    for name in ("branch", "tag", "semver", "commit"):
        assert f"has(self.{name})" in rules
    assert all(r.get("message") for r in ref["x-kubernetes-validations"])
    commit = ref["properties"]["commit"]["pattern"]
    assert re.search(commit, "0123456789abcdef0123456789abcdef01234567")
    assert re.search(commit, "a" * 64)
    assert not re.search(commit, "abc1234")


def test_sync_spec_contract() -> None:
    spec = at(SYNC, "spec")
    assert set(spec["required"]) == {"sourceRef", "prune"}
    assert "default" not in spec["properties"]["prune"], "pruning must be a choice, as in Flux"
    assert at(SYNC, "spec", "sourceRef", "kind")["enum"] == [KIND_SOURCE, "HelmRepository"]
    assert at(SYNC, "spec", "sourceRef", "kind")["default"] == KIND_SOURCE
    assert "namespace" not in at(SYNC, "spec", "sourceRef")["properties"], "no cross-namespace sources"
    assert at(SYNC, "spec", "driftGuard")["enum"] == ["enforce", "warn", "off"]
    assert at(SYNC, "spec", "substituteFrom", "[]", "kind")["enum"] == ["ConfigMap", "Secret"]
    assert at(SYNC, "spec", "substitute")["additionalProperties"] == {"type": "string"}
    assert at(SYNC, "spec", "path")["x-kubernetes-validations"]
    assert at(SYNC, "status", "history")["maxItems"] == 10


def test_user_specs_are_kept_whole() -> None:
    source = {"url": "ssh://git@example.com/o/r.git", "ref": {"branch": "main", "commit": "a" * 40},
              "interval": "5m", "timeout": "30s", "secretRef": {"name": "creds"}, "ignore": "docs/\n*.md",
              "suspend": False, "insecure": False}
    assert problems(at(SOURCE, "spec"), source, ".spec") == []
    sync = {"sourceRef": {"kind": "GitSource", "name": "repo"}, "path": "./apps/prod", "prune": True,
            "interval": "10m", "retryInterval": "1m", "timeout": "5m", "dependsOn": [{"name": "infra"}],
            "targetNamespace": "prod", "serviceAccountName": "tenant-a", "wait": True,
            "healthChecks": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "prod"}],
            "substitute": {"cluster": "prod"}, "substituteFrom": [{"kind": "Secret", "name": "v", "optional": True}],
            "suspend": False, "force": True, "driftGuard": "warn"}
    assert problems(at(SYNC, "spec"), sync, ".spec") == []
    # ...and the walker does see mistakes, so the two asserts above mean something.
    assert problems(at(SYNC, "spec"), {**sync, "driftGuard": "block", "prue": True}, ".spec") == [
        ".spec.driftGuard: 'block' not in ['enforce', 'warn', 'off']",
        ".spec.prue: not in the schema (the API server would prune it)",
    ]


def test_status_the_engine_writes_survives_pruning() -> None:
    now = datetime(2024, 5, 1, 12, tzinfo=UTC)
    ready = condition("Ready", True, "ReconciliationSucceeded", "Applied revision abc", 3, now)
    inventory = Inventory([ObjectRef("apps", "v1", "Deployment", "prod", "web"),
                           ObjectRef("", "v1", "Namespace", "", "prod")])
    record = RunRecord.of("abc", now, 1.25, "ReconciliationSucceeded",
                          count_results(["created", "configured", "unchanged", "pruned", "failed"]), "1 failed")
    status = {"observedGeneration": 3, "conditions": [ready], "lastAppliedRevision": "abc",
              "lastAttemptedRevision": "abc", "inventory": inventory.to_status(),
              "history": push_history([], record)}
    assert problems(at(SYNC, "status"), status, ".status") == []
    source_status = {"observedGeneration": 1, "conditions": [ready],
                     "artifact": {"revision": "a" * 40, "digest": "sha256:" + "0" * 64,
                                  "lastUpdateTime": "2024-05-01T12:00:00Z"},
                     "lastFetchedRevision": "a" * 40}
    assert problems(at(SOURCE, "status"), source_status, ".status") == []
