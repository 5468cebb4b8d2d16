"""GitSource/Sync spec parsing: Go-style durations, Flux's defaults, errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from kubectl_gitops.constants import API_VERSION, DEFAULT_APPLIER_SA, SYSTEM_NAMESPACE
from kubectl_gitops.core.errors import GitOpsError
from kubectl_gitops.core.spec import (
    DependsOn,
    InvalidSpec,
    Ref,
    SubstituteFrom,
    format_duration,
    parse_duration,
    parse_source,
    parse_sync,
)

JSON = dict[str, Any]


def source_obj(**spec: Any) -> JSON:
    return {"apiVersion": API_VERSION, "kind": "GitSource",
            "metadata": {"name": "podinfo", "namespace": "flux-demo", "generation": 3,
                         "uid": "0b6f5a6e-1f0c-4c52-9a8e-2d1c8d3f4e11"},
            "spec": {"url": "https://github.com/stefanprodan/podinfo", **spec}}


def sync_obj(**spec: Any) -> JSON:
    return {"apiVersion": API_VERSION, "kind": "Sync",
            "metadata": {"name": "apps", "namespace": "team-a", "generation": 7,
                         "resourceVersion": "48213"},
            "spec": {"sourceRef": {"kind": "GitSource", "name": "podinfo"}, "prune": True, **spec}}


# --- parse_duration ------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("1m", 60.0), ("90s", 90.0), ("1h", 3600.0), ("1h30m", 5400.0), ("500ms", 0.5),
    ("2h45m30s", 9930.0), ("1.5h", 5400.0), ("1m500ms", 60.5), ("0s", 0.0), (" 5m ", 300.0),
])
def test_parse_duration_accepts_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, default=-1) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, ""])
def test_parse_duration_missing_gives_default(text: str | None) -> None:
    assert parse_duration(text, default=42.0) == 42.0


@pytest.mark.parametrize("text", ["5", "abc", "5 m", "1d", "m5", "1h30", "-5m", "5m!", "1.m", "h"])
def test_parse_duration_rejects_non_durations(text: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_duration(text, 60, "Sync team-a/apps: spec.interval")
    message = str(err.value)
    assert message.startswith("Sync team-a/apps: spec.interval: ")
    assert repr(text.strip()) in message


def test_invalid_spec_is_a_gitops_error_with_its_reason() -> None:
    with pytest.raises(GitOpsError) as err:
        parse_duration("soon", 1)
    assert isinstance(err.value, InvalidSpec)
    assert err.value.reason == "InvalidSpec"
    assert "duration: 'soon'" in str(err.value)


# --- format_duration -----------------------------------------------------------------------------


@pytest.mark.parametrize(("seconds", "text"), [
    (0.5, "500ms"), (0.001, "1ms"), (0, "0ms"), (1, "1s"), (30, "30s"), (2.5, "2.5s"),
    (60, "1m"), (90, "1m30s"), (600, "10m"), (3600, "60m"),
])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [0.25, 1, 45, 60, 61, 300, 599])
def test_format_duration_round_trips_through_parse(seconds: float) -> None:
    assert parse_duration(format_duration(seconds), -1) == pytest.approx(seconds)


# --- parse_source --------------------------------------------------------------------------------


def test_source_defaults() -> None:
    spec = parse_source(source_obj())
    assert (spec.name, spec.namespace) == ("podinfo", "flux-demo")
    assert spec.url == "https://github.com/stefanprodan/podinfo"
    assert spec.interval == 60.0
    assert spec.timeout == 60.0
    assert spec.ref == Ref()
    assert spec.ref.describe() == "branch main"
    assert (spec.secret_name, spec.ignore, spec.suspend) == ("", "", False)


def test_source_all_fields() -> None:
    spec = parse_source(source_obj(
        ref={"tag": "6.7.1"}, interval="5m", timeout="2m30s", secretRef={"name": "git-creds"},
        ignore="/docs\n*.md\n", suspend=True))
    assert spec.ref == Ref(tag="6.7.1")
    assert spec.ref.describe() == "tag 6.7.1"
    assert spec.interval == 300.0
    assert spec.timeout == 150.0
    assert spec.secret_name == "git-creds"
    assert spec.ignore == "/docs\n*.md\n"
    assert spec.suspend is True


def test_source_ref_describe_precedence() -> None:
    sha = "4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b"
    assert parse_source(source_obj(ref={"branch": "dev", "commit": sha})).ref.describe() == "commit 4c3b2a1f0e9d"
    assert parse_source(source_obj(ref={"semver": ">=6.0.0 <7.0.0"})).ref.describe() == "semver >=6.0.0 <7.0.0"
    assert parse_source(source_obj(ref={"branch": "release"})).ref.describe() == "branch release"


@pytest.mark.parametrize("spec", [{}, {"url": ""}, {"url": None}])
def test_source_without_url_is_an_error_naming_the_object(spec: JSON) -> None:
    obj = source_obj()
    obj["spec"] = {"interval": "1m", **spec}
    with pytest.raises(InvalidSpec, match=r"^GitSource flux-demo/podinfo: spec\.url is required$"):
        parse_source(obj)


def test_source_without_spec_at_all() -> None:
    obj = source_obj()
    del obj["spec"]
    with pytest.raises(InvalidSpec, match=r"spec\.url is required"):
        parse_source(obj)


@pytest.mark.parametrize("field", ["interval", "timeout"])
def test_source_bad_duration_names_the_field(field: str) -> None:
    with pytest.raises(InvalidSpec, match=rf"^GitSource flux-demo/podinfo: spec\.{field}: 'ten minutes'"):
        parse_source(source_obj(**{field: "ten minutes"}))


# --- parse_sync ----------------------------------------------------------------------------------


def test_sync_defaults() -> None:
    spec = parse_sync(sync_obj())
    assert (spec.name, spec.namespace, spec.generation) == ("apps", "team-a", 7)
    assert spec.key == "team-a/apps"
    assert spec.source_name == "podinfo"
    assert spec.interval == 600.0
    assert spec.retry_interval == 600.0  # defaults to interval
    assert spec.timeout == 300.0
    assert spec.path == "./"
    assert spec.drift_guard == "enforce"
    assert spec.prune is True
    assert (spec.wait, spec.suspend, spec.force) == (False, False, False)
    assert spec.depends_on == ()
    assert spec.health_checks == ()
    assert dict(spec.substitute) == {}
    assert spec.substitute_from == ()
    assert spec.target_namespace == ""
    assert spec.service_account == ""


def test_sync_prune_defaults_to_false() -> None:
    obj = sync_obj()
    del obj["spec"]["prune"]
    assert parse_sync(obj).prune is False


def test_sync_retry_interval_follows_a_custom_interval() -> None:
    spec = parse_sync(sync_obj(interval="1h"))
    assert spec.interval == 3600.0
    assert spec.retry_interval == 3600.0
    assert parse_sync(sync_obj(interval="1h", retryInterval="30s")).retry_interval == 30.0


def test_sync_all_fields() -> None:
    spec = parse_sync(sync_obj(
        path="./deploy/overlays/prod", interval="5m", timeout="90s", targetNamespace="prod",
        serviceAccountName="deployer", wait=True, suspend=True, force=True, driftGuard="warn",
        healthChecks=[{"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo", "namespace": "prod"}],
        substitute={"cluster_env": "prod", "replicas": 3},
        substituteFrom=[{"kind": "Secret", "name": "vars", "optional": True}, {"name": "cluster-vars"}],
    ))
    assert spec.path == "./deploy/overlays/prod"
    assert (spec.interval, spec.timeout) == (300.0, 90.0)
    assert spec.target_namespace == "prod"
    assert spec.service_account == "deployer"
    assert (spec.wait, spec.suspend, spec.force) == (True, True, True)
    assert spec.drift_guard == "warn"
    assert spec.health_checks == ({"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo",
                                   "namespace": "prod"},)
    assert dict(spec.substitute) == {"cluster_env": "prod", "replicas": "3"}  # values are strings
    assert spec.substitute_from == (SubstituteFrom("Secret", "vars", True),
                                    SubstituteFrom("ConfigMap", "cluster-vars", False))


@pytest.mark.parametrize("guard", ["enforce", "warn", "off"])
def test_sync_drift_guard_values(guard: str) -> None:
    assert parse_sync(sync_obj(driftGuard=guard)).drift_guard == guard


@pytest.mark.parametrize("guard", ["Enforce", "block", "disabled"])
def test_sync_invalid_drift_guard(guard: str) -> None:
    with pytest.raises(InvalidSpec) as err:
        parse_sync(sync_obj(driftGuard=guard))
    message = str(err.value)
    assert message.startswith("Sync team-a/apps: spec.driftGuard must be enforce, warn or off")
    assert repr(guard) in message


@pytest.mark.parametrize("source_ref", [None, {}, {"kind": "GitSource"}, {"kind": "GitSource", "name": ""}])
def test_sync_without_source_ref_name(source_ref: JSON | None) -> None:
    obj = sync_obj()
    obj["spec"]["sourceRef"] = source_ref
    with pytest.raises(InvalidSpec, match=r"^Sync team-a/apps: spec\.sourceRef\.name is required$"):
        parse_sync(obj)


@pytest.mark.parametrize("field", ["interval", "retryInterval", "timeout"])
def test_sync_bad_duration_names_the_field(field: str) -> None:
    with pytest.raises(InvalidSpec, match=rf"^Sync team-a/apps: spec\.{field}: '10'"):
        parse_sync(sync_obj(**{field: "10"}))


def test_sync_depends_on_defaults_to_own_namespace() -> None:
    spec = parse_sync(sync_obj(dependsOn=[
        {"name": "infra-controllers"},
        {"name": "crds", "namespace": "platform"},
        {"name": "config", "namespace": ""},
    ]))
    assert spec.depends_on == (
        DependsOn("infra-controllers", "team-a"),
        DependsOn("crds", "platform"),
        DependsOn("config", "team-a"),
    )


def test_applier_is_the_default_service_account_without_service_account_name() -> None:
    spec = parse_sync(sync_obj())
    assert spec.applier == f"system:serviceaccount:{SYSTEM_NAMESPACE}:{DEFAULT_APPLIER_SA}"
    assert spec.applier == "system:serviceaccount:kubectl-gitops-system:kubectl-gitops-applier"


def test_applier_is_the_sync_namespace_service_account() -> None:
    spec = parse_sync(sync_obj(serviceAccountName="deployer"))
    assert spec.applier == "system:serviceaccount:team-a:deployer"


def test_specs_are_frozen() -> None:
    spec = parse_sync(sync_obj())
    with pytest.raises(AttributeError):
        spec.prune = False  # type: ignore[misc]
