"""GitSource/Sync builders (`kubectl gitops create ... [--export]`), checked against the CRD schemas.

The objects are validated against manifests/crds/*.yaml with a small structural validator (unknown
fields, types, enums, patterns, lengths, required), so builder and CRD cannot drift apart silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.constants import API_VERSION, GROUP, KIND_SOURCE, KIND_SYNC, VERSION
from kubectl_gitops.core.errors import UsageError
from kubectl_gitops.core.resources import git_source, parse_pairs, sync
from kubectl_gitops.core.spec import InvalidSpec, parse_source, parse_sync

ROOT = Path(__file__).resolve().parents[2]
JSON = dict[str, Any]
SHA = "4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"
URL = "https://github.com/stefanprodan/podinfo"


def _crd_schema(kind: str) -> JSON:
    for path in sorted((ROOT / "manifests" / "crds").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["names"]["kind"] == kind:
                assert doc["spec"]["group"] == GROUP
                version = next(v for v in doc["spec"]["versions"] if v["name"] == VERSION)
                schema: JSON = version["schema"]["openAPIV3Schema"]
                return schema
    raise AssertionError(f"no CRD for {kind} under manifests/crds")


SCHEMAS = {KIND_SOURCE: _crd_schema(KIND_SOURCE), KIND_SYNC: _crd_schema(KIND_SYNC)}
TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "boolean": bool, "object": dict, "array": list,
                                             "integer": int, "number": (int, float)}


def schema_errors(value: Any, schema: JSON, path: str = "") -> list[str]:
    """Structural-schema problems of `value` (the parts of OpenAPI v3 validation the CRDs use, minus CEL)."""
    want = schema.get("type")
    if want and (not isinstance(value, TYPES[want]) or (want == "integer" and isinstance(value, bool))):
        return [f"{path or '.'}: {type(value).__name__} is not {want}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, str):
        errors += _string_errors(value, schema, path)
    if isinstance(value, list):
        errors += [e for i, item in enumerate(value) for e in schema_errors(item, schema.get("items", {}),
                                                                            f"{path}[{i}]")]
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path)
    return errors


def _string_errors(value: str, schema: JSON, path: str) -> list[str]:
    errors = []
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
        errors.append(f"{path}: length {len(value)} out of bounds")
    return errors


def _object_errors(value: JSON, schema: JSON, path: str) -> list[str]:
    errors = [f"{path}.{r}: required" for r in schema.get("required", []) if r not in value]
    props = schema.get("properties")
    extra = schema.get("additionalProperties")
    for key, item in value.items():
        if props is not None and key in props:
            errors += schema_errors(item, props[key], f"{path}.{key}")
        elif isinstance(extra, dict):
            errors += schema_errors(item, extra, f"{path}.{key}")
        elif props is not None and not schema.get("x-kubernetes-preserve-unknown-fields"):
            errors.append(f"{path}.{key}: unknown field (not in the CRD schema)")
    return errors


def assert_valid(obj: JSON) -> None:
    errors = schema_errors(obj, SCHEMAS[obj["kind"]])
    assert errors == [], errors


def ref_rules_ok(ref: JSON) -> bool:
    """The GitSource CRD's x-kubernetes-validations on spec.ref, in Python."""
    one_of = sum(k in ref for k in ("branch", "tag", "semver")) <= 1
    commit_ok = "commit" not in ref or not ("tag" in ref or "semver" in ref)
    return one_of and commit_ok


# --- the validator itself must be able to fail ---------------------------------------------------


def test_validator_catches_unknown_fields_types_enums_and_patterns() -> None:
    obj = sync("apps", "team-a", "podinfo", "./deploy")
    obj["spec"]["retries"] = 3
    obj["spec"]["prune"] = "yes"
    obj["spec"]["driftGuard"] = "block"
    obj["spec"]["interval"] = "10 minutes"
    obj["spec"]["dependsOn"] = [{"namespace": "x"}]
    obj["spec"]["targetNamespace"] = "n" * 64
    errors = schema_errors(obj, SCHEMAS[KIND_SYNC])
    assert ".spec.retries: unknown field (not in the CRD schema)" in errors
    assert ".spec.prune: str is not boolean" in errors
    assert any(e.startswith(".spec.driftGuard: 'block' not in") for e in errors)
    assert any(e.startswith(".spec.interval: '10 minutes' does not match") for e in errors)
    assert ".spec.dependsOn[0].name: required" in errors
    assert ".spec.targetNamespace: length 64 out of bounds" in errors


# --- git_source ----------------------------------------------------------------------------------


def test_git_source_defaults() -> None:
    obj = git_source("podinfo", "flux-demo", URL)
    assert obj == {"apiVersion": API_VERSION, "kind": KIND_SOURCE,
                   "metadata": {"name": "podinfo", "namespace": "flux-demo"},
                   "spec": {"url": URL, "ref": {"branch": "main"}, "interval": "1m"}}
    assert_valid(obj)


@pytest.mark.parametrize(("kwargs", "ref"), [
    ({"branch": "release"}, {"branch": "release"}),
    ({"tag": "6.7.1"}, {"tag": "6.7.1"}),
    ({"semver": ">=6.0.0 <7.0.0"}, {"semver": ">=6.0.0 <7.0.0"}),
    ({"commit": SHA}, {"commit": SHA}),  # a commit alone: no default branch
    ({"branch": "release", "commit": SHA}, {"branch": "release", "commit": SHA}),
])
def test_git_source_ref_choice(kwargs: JSON, ref: JSON) -> None:
    obj = git_source("podinfo", "flux-demo", URL, **kwargs)
    assert obj["spec"]["ref"] == ref
    assert ref_rules_ok(obj["spec"]["ref"])
    assert_valid(obj)


@pytest.mark.parametrize(("kwargs", "named"), [
    ({"branch": "main", "tag": "v1"}, "--branch and --tag"),
    ({"tag": "v1", "semver": "~1.4"}, "--tag and --semver"),
    ({"branch": "main", "semver": "~1.4"}, "--branch and --semver"),
    ({"branch": "main", "tag": "v1", "semver": "~1.4"}, "--branch and --tag and --semver"),
])
def test_git_source_two_refs_is_a_usage_error(kwargs: JSON, named: str) -> None:
    with pytest.raises(UsageError) as err:
        git_source("podinfo", "flux-demo", URL, **kwargs)
    assert named in str(err.value)
    assert err.value.exit_code == 2


@pytest.mark.parametrize("kwargs", [{"tag": "6.7.1", "commit": SHA}, {"semver": "~6.7", "commit": SHA}])
def test_git_source_commit_with_tag_or_semver_is_refused_like_the_crd(kwargs: JSON) -> None:
    with pytest.raises(UsageError):
        git_source("podinfo", "flux-demo", URL, **kwargs)


def test_git_source_all_options() -> None:
    obj = git_source("podinfo", "flux-demo", "ssh://git@github.com/stefanprodan/podinfo", tag="6.7.1",
                     secret="git-creds", interval="5m", timeout="90s", ignore="/docs\n*.md\n")
    assert obj["spec"] == {"url": "ssh://git@github.com/stefanprodan/podinfo", "ref": {"tag": "6.7.1"},
                           "interval": "5m", "timeout": "90s", "secretRef": {"name": "git-creds"},
                           "ignore": "/docs\n*.md\n"}
    assert_valid(obj)


@pytest.mark.parametrize("url", [URL, "http://gitea.local/org/repo.git", "file:///srv/git/repo",
                                 "git@github.com:stefanprodan/podinfo.git"])
def test_git_source_urls_the_crd_accepts(url: str) -> None:
    assert_valid(git_source("podinfo", "flux-demo", url))


@pytest.mark.parametrize(("kwargs", "flag"), [({"interval": "often"}, "--interval"),
                                              ({"timeout": "5"}, "--timeout")])
def test_git_source_durations_are_validated(kwargs: JSON, flag: str) -> None:
    with pytest.raises(InvalidSpec, match=f"^{flag}: "):
        git_source("podinfo", "flux-demo", URL, **kwargs)


def test_git_source_round_trips_through_parse_source() -> None:
    spec = parse_source(git_source("podinfo", "flux-demo", URL, semver="~6.7", interval="2m", timeout="30s",
                                   secret="creds"))
    assert (spec.name, spec.namespace, spec.url) == ("podinfo", "flux-demo", URL)
    assert spec.ref.semver == "~6.7"
    assert (spec.interval, spec.timeout, spec.secret_name) == (120.0, 30.0, "creds")


# --- sync ----------------------------------------------------------------------------------------


def test_sync_defaults() -> None:
    obj = sync("apps", "team-a", "podinfo", "./kustomize")
    assert obj == {"apiVersion": API_VERSION, "kind": KIND_SYNC,
                   "metadata": {"name": "apps", "namespace": "team-a"},
                   "spec": {"sourceRef": {"kind": KIND_SOURCE, "name": "podinfo"}, "path": "./kustomize",
                            "prune": False, "interval": "10m"}}
    assert_valid(obj)


def test_sync_all_options() -> None:
    obj = sync("apps", "team-a", "podinfo", "./deploy/prod", prune=True, target_namespace="prod", wait=True,
               depends_on=["infra", "platform/crds"], interval="5m", timeout="2m", service_account="deployer",
               drift_guard="warn", substitute={"cluster_env": "prod"}, force=True)
    assert obj["spec"] == {
        "sourceRef": {"kind": KIND_SOURCE, "name": "podinfo"}, "path": "./deploy/prod", "prune": True,
        "interval": "5m", "timeout": "2m", "targetNamespace": "prod", "wait": True, "force": True,
        "serviceAccountName": "deployer", "driftGuard": "warn", "substitute": {"cluster_env": "prod"},
        "dependsOn": [{"name": "infra"}, {"name": "crds", "namespace": "platform"}],
    }
    assert_valid(obj)


def test_sync_omits_unset_options() -> None:
    spec = sync("apps", "team-a", "podinfo", "./", wait=False, force=False, substitute={})["spec"]
    assert set(spec) == {"sourceRef", "path", "prune", "interval"}


@pytest.mark.parametrize("guard", ["enforce", "warn", "off"])
def test_sync_drift_guard_values_pass_the_crd(guard: str) -> None:
    assert_valid(sync("apps", "team-a", "podinfo", "./", drift_guard=guard))


@pytest.mark.parametrize(("text", "entry"), [
    ("infra", {"name": "infra"}),
    ("platform/crds", {"name": "crds", "namespace": "platform"}),
])
def test_sync_depends_on_name_or_namespace_name(text: str, entry: JSON) -> None:
    obj = sync("apps", "team-a", "podinfo", "./", depends_on=[text])
    assert obj["spec"]["dependsOn"] == [entry]
    assert_valid(obj)


@pytest.mark.parametrize("text", ["", "platform/", "a/b/c"])
def test_sync_depends_on_malformed(text: str) -> None:
    with pytest.raises(UsageError, match=r"expected NAME or NAMESPACE/NAME"):
        sync("apps", "team-a", "podinfo", "./", depends_on=["infra", text])


def test_sync_depends_on_round_trips_with_namespace_defaulting() -> None:
    spec = parse_sync(sync("apps", "team-a", "podinfo", "./", depends_on=["infra", "platform/crds"]))
    assert [(d.namespace, d.name) for d in spec.depends_on] == [("team-a", "infra"), ("platform", "crds")]


@pytest.mark.parametrize(("kwargs", "flag"), [({"interval": "daily"}, "--interval"),
                                              ({"timeout": "1d"}, "--timeout")])
def test_sync_durations_are_validated(kwargs: JSON, flag: str) -> None:
    with pytest.raises(InvalidSpec, match=f"^{flag}: "):
        sync("apps", "team-a", "podinfo", "./", **kwargs)


def test_sync_round_trips_through_parse_sync() -> None:
    spec = parse_sync(sync("apps", "team-a", "podinfo", "./deploy", prune=True, interval="1h30m",
                           timeout="90s", service_account="deployer", drift_guard="off"))
    assert (spec.source_name, spec.path, spec.prune) == ("podinfo", "./deploy", True)
    assert (spec.interval, spec.timeout, spec.drift_guard) == (5400.0, 90.0, "off")
    assert spec.applier == "system:serviceaccount:team-a:deployer"


# --- parse_pairs ---------------------------------------------------------------------------------


def test_parse_pairs() -> None:
    assert parse_pairs(["cluster_env=prod", "region=eu-west-1", "empty=", "url=a=b"], "--substitute") == {
        "cluster_env": "prod", "region": "eu-west-1", "empty": "", "url": "a=b"}
    assert parse_pairs([], "--substitute") == {}
    assert parse_pairs(["k=1", "k=2"], "--substitute") == {"k": "2"}  # last one wins


@pytest.mark.parametrize("pair", ["novalue", "=value", ""])
def test_parse_pairs_errors_name_the_flag_and_pair(pair: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_pairs(["ok=1", pair], "--substitute")
    assert str(err.value) == f"--substitute {pair!r}: expected KEY=VALUE"
