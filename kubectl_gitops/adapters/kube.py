"""The one module that talks to the Kubernetes API server.

Kubeconfigs with static credentials are read by adapters/kubeconfig (no import of the official
client, which costs more than a no-change sync's requests); for the rest (exec and auth-provider
plugins, in-cluster tokens) it wraps the official client's ApiClient. Either way it sends raw JSON
requests itself: the client's model classes cost more
than the requests at a thousand objects, and GitOps works on plain manifests anyway.
Requests are built by small functions and sent by one; every failure becomes a GitOpsError
that names the server, the object and the server's own message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kubectl_gitops.core.discovery import DISCOVERY_ACCEPT, ResourceInfo, ResourceMap, parse_aggregated
from kubectl_gitops.core.errors import ClusterUnreachable, GitOpsError, TooLarge

JSON = dict[str, Any]
LARGE_BODY = 1024 * 1024
"""Request bodies above this size that end in a dropped connection were refused as too large
(the API server's own limit is 3 MiB, etcd's 1.5 MiB): smaller ones mean an unreachable server."""


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


class _ClientWire:
    """Requests prepared by the official client (it refreshes exec-plugin and in-cluster tokens)."""

    def __init__(self, api_client: Any) -> None:
        self.api = api_client
        self.pool = api_client.rest_client.pool_manager

    def prepare(self, method: str, path: str, query: list[tuple[str, str]] | None,
                headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        _, url, out, _, _ = self.api.param_serialize(method=method, resource_path=path, query_params=query,
                                                     header_params=headers, auth_settings=["BearerToken"])
        return str(url), dict(out)


class _DirectWire:
    """Requests prepared from a kubeconfig read by adapters/kubeconfig (static credentials only)."""

    def __init__(self, host: str, pool: Any, authorization: str | None) -> None:
        self.host = host
        self.pool = pool
        self.authorization = authorization

    def prepare(self, method: str, path: str, query: list[tuple[str, str]] | None,
                headers: dict[str, str]) -> tuple[str, dict[str, str]]:
        from urllib.parse import urlencode

        url = self.host + path + ("?" + urlencode(query) if query else "")
        if self.authorization:
            headers = {**headers, "Authorization": self.authorization}
        return url, headers


def no_connection() -> _DirectWire:
    """A wire that reaches no server: for a Kube subclass that answers requests itself (offline builds)."""
    return _DirectWire("", None, None)


class Kube:
    """A connection to one API server (one urllib3 pool)."""

    def __init__(self, wire: _ClientWire | _DirectWire, context: str, server: str, default_namespace: str) -> None:
        self._wire = wire
        self.context = context
        self.server = server
        self.default_namespace = default_namespace
        self.timeout: float = 30.0
        self.headers: dict[str, str] = {}

    # ------------------------------------------------------------ connect

    @classmethod
    def connect(cls, target: Target = Target(), *, pool_size: int = 64) -> Kube:
        # At least the applier's concurrency (`sync --concurrency`, up to 64): a pool smaller than
        # the number of threads drops connections and pays a TLS handshake per extra request.
        # Connections open on demand, so a large maximum costs nothing at low concurrency.
        from kubectl_gitops.adapters import kubeconfig

        direct = kubeconfig.load(target.kubeconfig or _default_kubeconfig(), target.context)
        if direct is not None:  # the common case, without importing the official client
            wire = _DirectWire(direct.server, kubeconfig.pool(direct, pool_size), direct.authorization)
            return cls(wire, direct.context, direct.server, direct.namespace)
        return cls._connect_with_client(target, pool_size)

    @classmethod
    def _connect_with_client(cls, target: Target, pool_size: int) -> Kube:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        cfg = client.Configuration()
        try:
            loader = config.kube_config._get_kube_config_loader(  # type: ignore[no-untyped-call]  # private helper: we need the context namespace
                filename=target.kubeconfig or _default_kubeconfig(), active_context=target.context)
            loader.load_and_set(cfg)
        except (ConfigException, OSError, ValueError) as err:
            where = target.kubeconfig or _default_kubeconfig()
            raise ClusterUnreachable(f"kubeconfig {where}: {err}") from err
        cfg.connection_pool_maxsize = pool_size
        cfg.retries = 2  # a dying API server should fail a sync in seconds, not hang it
        context = loader.current_context
        namespace = str(context.get("context", {}).get("namespace") or "default")
        return cls(_ClientWire(client.ApiClient(cfg)), str(context.get("name", "")), str(cfg.host), namespace)

    def impersonating(self, user: str | None) -> Kube:
        """The same connection sending requests as `user` (needs `impersonate` RBAC)."""
        other = Kube(self._wire, self.context, self.server, self.default_namespace)
        other.timeout = self.timeout
        other.headers = dict(self.headers)
        if user:
            other.headers["Impersonate-User"] = user
        return other

    # ------------------------------------------------------------ raw requests

    def request(self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None,
                content_type: str = "application/json", timeout: float | None = None,
                accept: str = "application/json") -> JSON:
        """Send one request; return the decoded JSON body or raise ApiError/ClusterUnreachable."""
        import urllib3

        headers = {"Accept": accept, "Content-Type": content_type, **self.headers}
        data = body if isinstance(body, str | bytes) or body is None else _encode(body)
        # param_serialize adds auth headers (bearer tokens, exec plugins) and the host; we send the
        # bytes ourselves through the client's urllib3 pool (TLS and client certs configured there).
        url, headers = self._wire.prepare(method, path, list(query.items()) if query else None, headers)
        try:
            resp = self._wire.pool.request(
                method, url, body=data, headers=headers, timeout=urllib3.Timeout(total=timeout or self.timeout),
                preload_content=True)
        except urllib3.exceptions.HTTPError as err:
            if data is not None and len(data) > LARGE_BODY and self.ready():
                # The server stops reading a body far over its limit and drops the connection,
                # yet answers a small request: a refusal of this object, not an unreachable server.
                raise TooLarge(f"the API server at {self.server} refused a {len(data)} byte request "
                               f"({method} {path}) by closing the connection: too large") from err
            raise ClusterUnreachable(f"API server {self.server} unreachable ({method} {path}): "
                                     f"{_short(err)}") from err
        _observe(method, resp.status)
        if resp.status >= 300:
            raise _api_error(resp.status, resp.data, method, path)
        return _decode(resp.data, method, path)

    def list_page(self, path: str, *, page: int = 500, label_selector: str = "") -> tuple[list[JSON], str]:
        """Every item of a collection path, and the list's resourceVersion (where a watch starts)."""
        query = {"limit": str(page)}
        if label_selector:
            query["labelSelector"] = label_selector
        items: list[JSON] = []
        while True:
            out = self.request("GET", path, query=query, timeout=self.timeout)
            items += out.get("items") or []
            meta = out.get("metadata") or {}
            if not meta.get("continue"):
                return items, str(meta.get("resourceVersion") or "")
            query["continue"] = str(meta["continue"])

    def watch(self, path: str, resource_version: str, *, timeout_seconds: int = 240,
              label_selector: str = "") -> Iterator[JSON]:
        """Watch events (`{"type": ADDED|MODIFIED|DELETED|BOOKMARK, "object": ...}`) of a collection path
        from `resource_version`, until the server ends the watch (after about `timeout_seconds`).

        An ERROR event becomes ApiError with the Status's code (410 Gone: the version is too old,
        list again); a dropped connection becomes ClusterUnreachable.
        """
        import urllib3

        query = [("watch", "true"), ("resourceVersion", resource_version), ("allowWatchBookmarks", "true"),
                 ("timeoutSeconds", str(timeout_seconds))]
        if label_selector:
            query.append(("labelSelector", label_selector))
        _observe("WATCH", 0)
        url, headers = self._wire.prepare("GET", path, query, {"Accept": "application/json", **self.headers})
        try:
            resp = self._wire.pool.request(
                "GET", url, headers=headers, preload_content=False,
                timeout=urllib3.Timeout(connect=self.timeout, read=timeout_seconds + 30))
        except urllib3.exceptions.HTTPError as err:
            raise ClusterUnreachable(f"API server {self.server} unreachable (watch {path}): {_short(err)}") from err
        try:
            if resp.status >= 300:
                raise _api_error(resp.status, resp.read(), "GET (watch)", path)
            yield from _watch_events(resp, path)
        except urllib3.exceptions.HTTPError as err:
            raise ClusterUnreachable(f"watch {path} on {self.server} broke: {_short(err)}") from err
        finally:
            resp.release_conn()

    # ------------------------------------------------------------ small helpers

    def ready(self, timeout: float = 2.0) -> bool:
        """GET /readyz: True only on 200 "ok" (the body is text, not JSON)."""
        import urllib3

        url, headers = self._wire.prepare("GET", "/readyz", None, {"Accept": "*/*", **self.headers})
        try:
            resp = self._wire.pool.request(
                "GET", url, headers=headers, timeout=urllib3.Timeout(total=timeout), retries=False)
        except urllib3.exceptions.HTTPError:
            return False
        return bool(resp.status == 200)

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


    # ------------------------------------------------------------ resources

    def discover(self) -> ResourceMap:
        """Every served kind, from two aggregated-discovery requests."""
        infos: list[ResourceInfo] = []
        for path in ("/api", "/apis"):
            infos += parse_aggregated(self.request("GET", path, accept=DISCOVERY_ACCEPT))
        return ResourceMap(infos)

    def list(self, info: ResourceInfo, *, label_selector: str = "", namespace: str | None = None,
             page: int = 1000) -> list[JSON]:
        """All objects of a kind (cluster-wide unless `namespace`), apiVersion/kind filled in."""
        path = object_path(info.api_version, info.plural, namespace if info.namespaced else None)
        query = {"limit": str(page)}
        if label_selector:
            query["labelSelector"] = label_selector
        items: list[JSON] = []
        while True:
            out = self.request("GET", path, query=query, timeout=self.timeout)
            for item in out.get("items") or []:
                item.setdefault("apiVersion", info.api_version)
                item.setdefault("kind", info.kind)
                items.append(item)
            token = (out.get("metadata") or {}).get("continue")
            if not token:
                return items
            query["continue"] = token

    def get(self, info: ResourceInfo, name: str, namespace: str | None = None) -> JSON | None:
        try:
            return self.request("GET", object_path(info.api_version, info.plural, _ns(info, namespace), name))
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def apply(self, info: ResourceInfo, obj: JSON, *, field_manager: str, force: bool = True,
              dry_run: bool = False) -> JSON:
        """Server-side apply (PATCH application/apply-patch+yaml; JSON is YAML)."""
        meta = obj.get("metadata") or {}
        query = {"fieldManager": field_manager, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        path = object_path(info.api_version, info.plural, _ns(info, meta.get("namespace")), meta["name"])
        return self.request("PATCH", path, body=obj, query=query, content_type="application/apply-patch+yaml")

    def delete(self, info: ResourceInfo, name: str, namespace: str | None = None, *,
               propagation: str = "Background") -> bool:
        """Delete one object; False if it was already gone."""
        return self.delete_object(info, name, namespace, propagation=propagation) is not None

    def delete_object(self, info: ResourceInfo, name: str, namespace: str | None = None, *,
                      propagation: str = "Background") -> JSON | None:
        """Delete one object; the server's answer (the object, with `deletionTimestamp` while
        finalizers hold it, or a Status), or None if it was already gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            return self.request("DELETE", object_path(info.api_version, info.plural, _ns(info, namespace), name),
                                body=body)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def create(self, info: ResourceInfo, obj: JSON) -> JSON:
        ns = (obj.get("metadata") or {}).get("namespace")
        return self.request("POST", object_path(info.api_version, info.plural, _ns(info, ns)), body=obj)

    def merge_patch(self, info: ResourceInfo, name: str, namespace: str | None, patch: JSON, *,
                    subresource: str | None = None) -> JSON:
        path = object_path(info.api_version, info.plural, _ns(info, namespace), name, subresource)
        return self.request("PATCH", path, body=patch, content_type="application/merge-patch+json")


RequestObserver = Callable[[str, int], None]
_OBSERVERS: list[RequestObserver] = []


def observe_requests(observer: RequestObserver) -> None:
    """Call `observer(verb, status)` for every request this process sends (the controller's metrics);
    verb is the HTTP method, or WATCH for a watch (status 0: counted when it starts)."""
    _OBSERVERS.append(observer)


def _observe(verb: str, status: int) -> None:
    for observer in _OBSERVERS:
        observer(verb, status)


def _encode(body: Any) -> bytes:
    # Compact separators: at thousands of applies the spaces are bytes for the server to read and
    # parse for nothing; ensure_ascii=False + UTF-8 keeps non-ASCII text as is instead of escapes.
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _ns(info: ResourceInfo, namespace: str | None) -> str | None:
    return namespace if info.namespaced else None


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


def _decode(raw: bytes, method: str, path: str) -> JSON:
    """The body as JSON; however deeply nested (core.boundedjson), never a RecursionError."""
    if not raw:
        return {}
    try:
        out = _loads(raw)
    except ValueError as err:
        raise GitOpsError(f"the API server's answer to {method} {path} is not JSON: {err}") from err
    if not isinstance(out, dict):
        raise GitOpsError(f"the API server's answer to {method} {path} is not a JSON object")
    return out


def _loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except RecursionError:  # rare: the fallback is imported only then
        from kubectl_gitops.core import boundedjson

        return boundedjson.loads(raw)


def _watch_events(resp: Any, path: str) -> Iterator[JSON]:
    """Newline-delimited JSON events from a streaming response; ERROR events raise ApiError."""
    buffer = b""
    for chunk in resp.stream(64 * 1024):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            event = _decode(line, "GET (watch)", path)
            if event.get("type") == "ERROR":
                status = event.get("object") or {}
                raise ApiError(int(status.get("code") or 500), str(status.get("message") or "watch error"),
                               str(status.get("reason") or ""), status)
            yield event


def _api_error(status: int, raw: bytes, method: str, path: str) -> GitOpsError:
    try:
        body = _loads(raw) if raw else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or raw[:300].decode(errors="replace") or f"HTTP {status}")
    return ApiError(status, message, str(body.get("reason", "")), body)


def object_path(api_version: str, plural: str, namespace: str | None, name: str | None = None,
                subresource: str | None = None) -> str:
    """The REST path of a collection or object (pure; used by every request)."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base]
    if namespace:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(plural)
    if name:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def connect_auto(kubeconfig: str | None = None, *, pool_size: int = 16) -> Kube:
    """In a pod: the mounted ServiceAccount; elsewhere: the kubeconfig (as kubectl would)."""
    import os

    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        # At least the applier's concurrency (`sync --concurrency`, up to 64): a pool smaller than
        # the number of threads drops connections and pays a TLS handshake per extra request.
        # Connections open on demand, so a large maximum costs nothing at low concurrency.
        cfg.connection_pool_maxsize = pool_size
        cfg.retries = 2
        namespace_file = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
        from pathlib import Path

        ns_path = Path(namespace_file)
        namespace = ns_path.read_text().strip() if ns_path.exists() else "default"
        return Kube(_ClientWire(client.ApiClient(cfg)), "in-cluster", str(cfg.host), namespace)
    return Kube.connect(Target(kubeconfig), pool_size=pool_size)
