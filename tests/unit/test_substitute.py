import pytest

from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.core.substitute import substitute, variables_in


def test_plain_and_default():
    text = "replicas: ${REPLICAS}\nimage: app:${TAG:=latest}\n"
    assert substitute(text, {"REPLICAS": "3"}) == "replicas: 3\nimage: app:latest\n"
    assert substitute(text, {"REPLICAS": "3", "TAG": "1.2"}) == "replicas: 3\nimage: app:1.2\n"


def test_default_applies_to_empty_value_and_may_be_empty():
    assert substitute("${A:=x}", {"A": ""}) == "x"
    assert substitute("[${A:=}]", {}) == "[]"
    assert substitute("[${A}]", {"A": ""}) == "[]"


def test_default_may_contain_colons_and_spaces():
    assert substitute("url: ${URL:=http://example.com:8080/a b}", {}) == "url: http://example.com:8080/a b"


def test_escape_gives_a_literal():
    assert substitute("echo $${HOME} ${X}", {"HOME": "/root", "X": "1"}) == "echo ${HOME} 1"
    assert substitute("$${X:=d}", {}) == "${X:=d}"


def test_undefined_is_left_alone_when_not_strict():
    assert substitute("a: ${MISSING}", {}) == "a: ${MISSING}"


def test_strict_names_every_missing_variable_and_the_source():
    with pytest.raises(BuildFailed) as err:
        substitute("${A} ${B:=ok} ${C} ${A}", {}, strict=True, source="apps/deploy.yaml")
    message = str(err.value)
    assert "A, C" in message
    assert "B" not in message.replace("BuildFailed", "")
    assert "apps/deploy.yaml" in message


def test_strict_is_satisfied_by_values_and_defaults():
    assert substitute("${A}${B:=b}", {"A": "a"}, strict=True) == "ab"


def test_other_shell_forms_are_untouched():
    text = "command: [sh, -c, 'echo $HOME ${HOME-x} ${1} ${a.b} ${A:-d}']"
    assert substitute(text, {"HOME": "/h", "A": "z"}, strict=True) == text


def test_values_are_not_substituted_recursively():
    assert substitute("${A}", {"A": "${B}", "B": "no"}) == "${B}"


def test_variables_in():
    assert variables_in("${A} $${B} ${C:=1} ${A}") == ["A", "C"]
