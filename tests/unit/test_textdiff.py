"""What `diff` shows of an object: the fields Git owns only, stamps left out, Secret values masked."""

from __future__ import annotations

from kubectl_gitops.core import textdiff

FIELDS = {"f:data": {".": {}, "f:a": {}}, "f:spec": {"f:containers": {
    'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}}
LIVE = {"apiVersion": "v1", "kind": "X", "data": {"a": "1", "theirs": "2"}, "status": {"ok": True},
        "spec": {"containers": [{"name": "side", "image": "x"}, {"name": "web", "image": "nginx:1", "env": [1]}]}}


def test_cut_keeps_only_the_named_fields_and_list_items_in_order() -> None:
    assert textdiff.cut(LIVE, FIELDS) == {"data": {"a": "1"},
                                          "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}


def test_cut_of_a_leaf_keeps_the_whole_value_and_set_members_by_value() -> None:
    assert textdiff.cut({"args": ["a", "b"]}, {"f:args": {}}) == {"args": ["a", "b"]}
    assert textdiff.cut({"fin": ["x", "y", "z"]}, {"f:fin": {'v:"z"': {}, 'v:"x"': {}}}) == {"fin": ["x", "z"]}
    assert textdiff.cut({"l": ["p", "q"]}, {"f:l": {"i:1": {}}}) == {"l": ["q"]}


def test_merge_tries_is_a_union_where_a_leaf_covers_children() -> None:
    merged = textdiff.merge_tries([{"f:a": {"f:b": {}}, "f:c": {}}, {"f:a": {"f:d": {}}, "f:c": {"f:e": {}}}])
    assert merged == {"f:a": {"f:b": {}, "f:d": {}}, "f:c": {}}
    assert textdiff.merge_tries([{"f:x": {}}, {"f:x": {"f:y": {}}}]) == {"f:x": {}}


def test_stamps_are_not_shown_and_an_emptied_annotations_map_goes() -> None:
    obj = {"metadata": {"name": "a", "annotations": {"kubectl-gitops.dev/revision": "r",
                                                     "kubectl-gitops.dev/digest": "d",
                                                     "kubectl-gitops.dev/fields": "{}"}}}
    assert textdiff.shown(obj) == {"metadata": {"name": "a"}}
    obj["metadata"]["annotations"]["mine"] = "kept"
    assert textdiff.shown(obj) == {"metadata": {"name": "a", "annotations": {"mine": "kept"}}}


def secret(**data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret", "data": data}


def test_secret_values_are_masked_and_a_changed_value_is_marked_on_both_sides() -> None:
    before, after = textdiff.mask_secrets(secret(same="c2FtZQ==", changed="b2xk", gone="eA=="),
                                          {**secret(same="c2FtZQ==", changed="bmV3"), "stringData": {"new": "p"}})
    assert before is not None and after is not None
    assert before["data"] == {"same": "***", "changed": "*** (before)", "gone": "***"}
    assert after["data"] == {"same": "***", "changed": "*** (after)"}
    assert after["stringData"] == {"new": "***"}


def test_a_secret_created_from_string_data_is_masked() -> None:
    _, after = textdiff.mask_secrets(None, {"apiVersion": "v1", "kind": "Secret", "stringData": {"pw": "hunter2"}})
    assert after == {"apiVersion": "v1", "kind": "Secret", "stringData": {"pw": "***"}}
    not_secret = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"pw": "hunter2"}}
    assert textdiff.mask_secrets(not_secret, None) == (not_secret, None)


def test_string_data_keys_name_the_stored_data_keys_of_a_secret() -> None:
    fields = {"f:stringData": {"f:pw": {}}}
    assert textdiff.with_stored_secret_keys(secret(), fields) == {"f:stringData": {"f:pw": {}},
                                                                  "f:data": {"f:pw": {}}}
    assert textdiff.with_stored_secret_keys({"kind": "ConfigMap"}, fields) == fields


def test_unified_diff_headers_dev_null_and_masking_of_substituted_secrets() -> None:
    text = textdiff.unified({"a": "1", "token": "s3cr3t-value"}, {"a": "2", "token": "s3cr3t-value"}, "CM/x",
                            "live", "main@sha1:abc", secrets=("s3cr3t-value",))
    assert text.splitlines()[:2] == ["--- CM/x (live)", "+++ CM/x (main@sha1:abc)"]
    assert "-a: '1'" in text and "+a: '2'" in text and "s3cr3t" not in text
    assert textdiff.unified({"a": 1}, {"a": 1}, "CM/x", "live", "r") == ""
    created = textdiff.unified(None, {"a": 1}, "CM/x", "live", "r")
    assert created.splitlines()[:2] == ["--- /dev/null", "+++ CM/x (r)"]


def test_colour_marks_each_kind_of_line() -> None:
    painted = textdiff.colour("--- a\n+++ b\n@@ -1 +1 @@\n-x\n+y\n z\n")
    assert painted.splitlines() == ["\x1b[1m--- a\x1b[0m", "\x1b[1m+++ b\x1b[0m", "\x1b[36m@@ -1 +1 @@\x1b[0m",
                                    "\x1b[31m-x\x1b[0m", "\x1b[32m+y\x1b[0m", " z"]


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert textdiff.use_colour("auto", True, {}) is True
    assert textdiff.use_colour("auto", False, {}) is False
    assert textdiff.use_colour("auto", True, {"NO_COLOR": "1"}) is False
    assert textdiff.use_colour("auto", True, {"TERM": "dumb"}) is False
    assert textdiff.use_colour("always", False, {"NO_COLOR": "1"}) is True
    assert textdiff.use_colour("never", True, {}) is False
