"""Substituted values are scalars, never structure; substitution is linear on any input.

The attacker here can edit a ConfigMap (or Secret) the Sync substitutes from, and wants the
applier to create something else: another document, another key, an object in a list.
"""

from __future__ import annotations

import time

import pytest

from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.core.limits import Limits
from kubectl_gitops.core.substitute import mask, substitute, substitute_documents, variables_in

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  level: ${LEVEL}\n"
DEPLOY = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: ${REPLICAS}
  template:
    spec:
      containers:
      - name: app
        image: registry.example/app:${TAG:=latest}
        args: ["--level", "${LEVEL}"]
"""
CRB = ("info\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwn\n"
       "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"
       "subjects: [{kind: User, name: mallory}]\n")


def build(text: str, **values: str) -> list[dict[str, object]]:
    return [m.obj for m in substitute_documents(text, values, "app.yaml")]


def test_flux_semantics_are_kept_typing_included() -> None:
    (obj,) = build(DEPLOY, REPLICAS="3", LEVEL="debug")
    spec = obj["spec"]
    assert isinstance(spec, dict)
    assert spec["replicas"] == 3  # a whole-scalar number stays a number, as Flux gives it
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/app:latest"
    assert container["args"] == ["--level", "debug"]
    (obj,) = build(DEPLOY, REPLICAS="2", TAG="1.2", LEVEL="a value: with colon")
    assert obj["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/app:1.2"  # type: ignore[index]


def test_escape_and_unset_stay_literal() -> None:
    (obj,) = build("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: $${HOME}\n  y: '${NOPE}'\n")
    assert obj["data"] == {"x": "${HOME}", "y": "${NOPE}"}


def test_a_value_cannot_add_a_document() -> None:
    with pytest.raises(BuildFailed) as err:
        build(CM, LEVEL=CRB)
    assert "LEVEL" in str(err.value) and "mallory" not in str(err.value)


@pytest.mark.parametrize("value", [
    "x\n  extra: key",                 # another key in data
    "x\nmetadata2: {}",                # a top-level key
    "{a: 1}",                          # a mapping instead of a scalar
    "[1, 2]",                          # a list
    "x\n---\nkind: Secret",            # a document
    "|\n  block",                      # a block scalar swallowing lines
    "*anchor",                         # an alias
    "x # comment\n  injected: 1",
])
def test_values_that_would_change_structure_are_refused(value: str) -> None:
    text = CM + "  other: &anchor {k: v}\n"
    with pytest.raises(BuildFailed, match="LEVEL"):
        build(text, LEVEL=value)


def test_a_value_in_a_comment_cannot_add_keys() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a  # owner ${OWNER}\n"
    assert build(text, OWNER="ok")[0]["metadata"] == {"name": "a"}
    with pytest.raises(BuildFailed):
        build(text, OWNER="x\n  namespace: kube-system")


def test_a_value_cannot_inject_items_into_a_flow_list() -> None:
    text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {l: '${A}'}\nx: [\"${B}\"]\n"
    assert build(text, A="its", B="say hi")[0]["x"] == ["say hi"]
    with pytest.raises(BuildFailed, match="B"):
        build(text, A="ok", B='a", "b')


def test_kind_list_growth_is_refused() -> None:
    text = "apiVersion: v1\nkind: ${KIND}\nitems: []\nmetadata: {name: a}\n"
    with pytest.raises(BuildFailed):
        build(text, KIND="ConfigMapList")


def test_invalid_yaml_from_a_value_does_not_quote_the_value() -> None:
    secret = "hunter2: is: not yaml"
    with pytest.raises(BuildFailed) as err:
        build(CM, LEVEL=secret)
    assert secret not in str(err.value) and "LEVEL" in str(err.value)


def test_invalid_yaml_of_the_file_itself_names_variables_not_tokens() -> None:
    with pytest.raises(BuildFailed) as err:
        build("a: [${X}\n", X="1")
    assert "kgsubst" not in str(err.value)


def test_mask_hides_secret_values_longest_first() -> None:
    assert mask("pass=abcd1234 and abcd", ["abcd", "abcd1234"]) == "pass=*** and ***"
    assert mask("replicas 1", ["1"]) == "replicas 1"  # too short to mask meaningfully


@pytest.mark.parametrize("text", [
    "${A:=" * 200_000,                 # defaults that never close
    "${" * 300_000,
    "$${A" * 200_000 + "}",
    "${A:=x" + "}" * 10 + "${" * 200_000,
    "${" + "A" * 500_000,
])
def test_substitution_is_linear_on_adversarial_input(text: str) -> None:
    started = time.perf_counter()
    substitute(text, {"A": "1"})
    variables_in(text)
    assert time.perf_counter() - started < 2.0


def test_old_regex_semantics_are_kept() -> None:
    assert substitute("$$${A}", {"A": "1"}) == "$${A}"
    assert substitute("${A:=x}}", {}) == "x}"
    assert substitute("${A:=${B}}", {}) == "${B}"
    assert substitute("${1} ${A-x} ${A", {"A": "1"}) == "${1} ${A-x} ${A"


def test_substitution_respects_the_document_limits() -> None:
    with pytest.raises(BuildFailed, match="max_depth"):
        substitute_documents("a: ${X}\n" + "b: " + "[" * 50 + "]" * 50 + "\n", {"X": "1"}, "f.yaml",
                             limits=Limits(max_depth=10))
