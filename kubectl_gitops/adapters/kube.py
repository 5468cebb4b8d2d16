"""The one module that talks to the Kubernetes API server.

It wraps the official client's ApiClient only for what it does well (kubeconfig loading,
auth plugins, TLS) and sends raw JSON requests itself: the client's model classes cost more
than the requests at a thousand objects, and GitOps works on plain manifests anyway.
Requests are built by small functions and sent by one; every failure becomes a GitOpsError
that names the server, the object and the server's own message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from kubectl_gitops.core.errors import ClusterUnreachable, GitOpsError

JSON = dict[str, Any]


class ApiError(GitOpsError):
    """The API server answered with an error status."""

    def __init__(self, status: int, message: str, reason: str = "", body: JSON | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.api_reason = reason
        self.body = body or {}


@dataclass(frozen=True)
class Target:
    """Which cluster: a kubeconfig path (None = default rules) and context (None = current)."""

    kubeconfig: str | None = None
    context: str | None = None
    impersonate: str | None = None


class Kube:
    """A connection to one API server (one urllib3 pool under the official client)."""

    def __init__(self, api_client: Any, context: str, server: str, default_namespace: str) -> None:
        self._api = api_client
        self.context = context
        self.server = server
        self.default_namespace = default_namespace
        self.timeout: float = 30.0
        self.headers: dict[str, str] = {}

    # ------------------------------------------------------------ connect

    @classmethod
    def connect(cls, target: Target = Target(), *, pool_size: int = 16) -> Kube:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        cfg = client.Configuration()
        try:
            loader = config.kube_config._get_kube_config_loader(  # noqa: SLF001 - to read namespace too
                filename=target.kubeconfig or _default_kubeconfig(), active_context=target.context)
            loader.load_and_set(cfg)
        except (ConfigException, OSError, ValueError) as err:
            where = target.kubeconfig or _default_kubeconfig()
            raise ClusterUnreachable(f"kubeconfig {where}: {err}") from err
        cfg.connection_pool_maxsize = pool_size
        context = loader.current_context
        namespace = str(context.get("context", {}).get("namespace") or "default")
        api = client.ApiClient(cfg)
        kube = cls(api, str(context.get("name", "")), str(cfg.host), namespace)
        if target.impersonate:
            kube.headers["Impersonate-User"] = target.impersonate
        return kube

    def impersonating(self, user: str | None) -> Kube:
        """The same connection sending requests as `user` (needs `impersonate` RBAC)."""
        other = Kube(self._api, self.context, self.server, self.default_namespace)
        other.timeout = self.timeout
        other.headers = dict(self.headers)
        if user:
            other.headers["Impersonate-User"] = user
        return other

    # ------------------------------------------------------------ raw requests

    def request(self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None,
                content_type: str = "application/json", timeout: float | None = None) -> JSON:
        """Send one request; return the decoded JSON body or raise ApiError/ClusterUnreachable."""
        import urllib3

        url = path + ("?" + urlencode(query) if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type, **self.headers}
        data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
        try:
            resp = self._api.call_api(url, method, header_params=headers, body=data,
                                      auth_settings=["BearerToken"], _preload_content=False,
                                      _return_http_data_only=True,
                                      _request_timeout=timeout or self.timeout)
        except urllib3.exceptions.HTTPError as err:
            raise ClusterUnreachable(f"API server {self.server} unreachable ({method} {path}): "
                                     f"{_short(err)}") from err
        except Exception as err:  # the client raises ApiException for non-2xx
            raise _api_error(err, method, path) from err
        raw = resp.data
        return json.loads(raw) if raw else {}

    # ------------------------------------------------------------ small helpers

    def version(self) -> JSON:
        return self.request("GET", "/version", timeout=5)

    def can_i(self, verb: str, resource: str, group: str = "", namespace: str | None = None) -> tuple[bool, str]:
        attrs: JSON = {"verb": verb, "resource": resource, "group": group}
        if namespace:
            attrs["namespace"] = namespace
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
                  "spec": {"resourceAttributes": attrs}}
        out = self.request("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=review)
        status = out.get("status", {})
        return bool(status.get("allowed")), str(status.get("reason") or status.get("evaluationError") or "")


def _default_kubeconfig() -> str:
    import os

    env = os.environ.get("KUBECONFIG")
    if env:
        return env.split(os.pathsep)[0]
    return os.path.expanduser("~/.kube/config")


def _short(err: Exception) -> str:
    text = str(err)
    if "Connection refused" in text:
        return "connection refused (is the API server running?)"
    if "timed out" in text.lower():
        return "timed out"
    return text.splitlines()[0][:200]


def _api_error(err: Exception, method: str, path: str) -> GitOpsError:
    status = int(getattr(err, "status", 0) or 0)
    body_text = getattr(err, "body", None)
    if not status:
        return ClusterUnreachable(f"{method} {path}: {_short(err)}")
    try:
        body = json.loads(body_text) if body_text else {}
    except ValueError:
        body = {}
    message = str(body.get("message") or getattr(err, "reason", "") or body_text)
    return ApiError(status, message, str(body.get("reason", "")), body)


def object_path(api_version: str, plural: str, namespace: str | None, name: str | None = None,
                subresource: str | None = None) -> str:
    """The REST path of a collection or object (pure; used by every request)."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base]
    if namespace:
        parts += ["namespaces", quote(namespace)]
    parts.append(plural)
    if name:
        parts.append(quote(name))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)
