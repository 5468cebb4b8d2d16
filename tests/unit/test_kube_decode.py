"""The adapter decodes whatever the API server answers: deep JSON, and a clear error for non-JSON."""

from __future__ import annotations

import pytest

from kubectl_gitops.adapters import kube
from kubectl_gitops.core.errors import GitOpsError


def test_an_answer_nested_past_pythons_limit_is_decoded() -> None:
    raw = ('{"kind":"ConfigMapList","items":[{"metadata":{"name":"x"},"data":' + '{"a":' * 5000 + "1"
           + "}" * 5000 + "}]}").encode()
    out = kube._decode(raw, "GET", "/api/v1/configmaps")
    assert out["items"][0]["metadata"]["name"] == "x"


@pytest.mark.parametrize("raw", [b"<html>proxy error</html>", b"[1, 2]"])
def test_an_answer_that_is_not_a_json_object_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(GitOpsError, match="GET /api/v1/x"):
        kube._decode(raw, "GET", "/api/v1/x")


def test_an_error_body_nested_too_deep_still_gives_an_api_error() -> None:
    raw = ('{"message":"no","reason":"Invalid","details":' + "[" * 5000 + "]" * 5000 + "}").encode()
    err = kube._api_error(422, raw, "PATCH", "/x")
    assert isinstance(err, kube.ApiError) and err.status == 422 and str(err) == "no"
