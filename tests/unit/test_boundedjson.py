"""Decoding what the API server returns, however deep: the fast path stays, deep parts are cut."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubectl_gitops.core import boundedjson

SAMPLES: list[Any] = [
    {}, [], "", 0, -1.5e3, True, None, {"a": [1, 2.5, "x\"y\\z\u00e9", {"b": None}], "c": {}},
    [[[]], {"k": [{"": False}]}], {"apiVersion": "v1", "items": [{"metadata": {"name": "n"}}] * 3},
]


@pytest.mark.parametrize("value", SAMPLES)
def test_bounded_decoder_agrees_with_json(value: Any) -> None:
    for text in (json.dumps(value), json.dumps(value, indent=2)):
        assert boundedjson.loads_bounded(text) == json.loads(text)


def _deep(levels: int) -> str:
    return '{"items":[{"metadata":{"name":"evil","managedFields":[{"fieldsV1":' + '{"f:a":' * levels + "{}" \
        + "}" * levels + "}]}},{\"metadata\":{\"name\":\"fine\"}}]}"


def test_a_list_with_one_object_nested_thousands_deep_is_decoded() -> None:
    text = _deep(9000)
    with pytest.raises(RecursionError):
        json.loads(text)  # the attack: what json.loads does with it
    out = boundedjson.loads(text.encode())
    assert [i["metadata"]["name"] for i in out["items"]] == ["evil", "fine"]
    node = out["items"][0]["metadata"]["managedFields"][0]["fieldsV1"]
    depth = 0
    while isinstance(node, dict):
        node, depth = node.get("f:a"), depth + 1
    assert node is None and depth < boundedjson.MAX_DEPTH  # cut off, not decoded to the bottom


def test_brackets_inside_strings_do_not_confuse_the_skip() -> None:
    text = '{"a":' * 2000 + '"}]{[\\""' + "}" * 2000
    out = boundedjson.loads(text, max_depth=3)
    assert out == {"a": {"a": {"a": None}}}


def test_shallow_documents_take_the_fast_path_unchanged() -> None:
    assert boundedjson.loads(b'{"a": [1]}') == {"a": [1]}


@pytest.mark.parametrize("text", ["", "{", '{"a" 1}', '{"a":1,}', "[1 2]", "tru", '{"a":1} x', "[" * 3000])
def test_malformed_documents_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        boundedjson.loads_bounded(text)
