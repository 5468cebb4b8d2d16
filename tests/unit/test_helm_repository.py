"""adapters/helm.py against a local HTTP server: index cache, digest cache, credentials' reach.

No cluster and no helm here: the repository is a hand-written index and bytes served from a thread.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.adapters import pki
from kubectl_gitops.adapters.helm import ChartRepository, RepoAuth
from kubectl_gitops.core.errors import SourceFailed
from kubectl_gitops.core.helm import OCI_CHART_LAYER, HelmRepoSpec

ARCHIVE = b"not really a tarball, but bytes with a digest"


class Server:
    """Files by path; `protected` paths answer 401 with a registry's Bearer challenge unless the request
    carries `Bearer tok`, which /token hands out for Basic u:p (a distribution token service)."""

    def __init__(self, tls: Path | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.protected: set[str] = set()
        self.seen: list[tuple[str, str]] = []  # (path, Authorization)
        files, seen, protected = self.files, self.seen, self.protected
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                auth = self.headers.get("Authorization", "")
                seen.append((self.path, auth))
                path = self.path.split("?", 1)[0]
                if path == "/token":
                    ok = auth == "Basic " + base64.b64encode(b"u:p").decode()
                    return self._send(200 if ok else 401, b'{"token": "tok"}' if ok else b"")
                if path in protected and auth != "Bearer tok":
                    challenge = f'Bearer realm="{server.url}/token",service="reg",scope="repository:charts/app:pull"'
                    return self._send(401, b"", {"WWW-Authenticate": challenge})
                body = files.get(path)
                return self._send(200 if body is not None else 404, body or b"")

            def _send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "http"
        self.ca_pem = ""
        if tls is not None:
            ca = pki.make_ca("test chart host CA")
            pki.issue(ca, "127.0.0.1", hosts=("127.0.0.1",), server=True).write(tls / "s.crt", tls / "s.key")
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls / "s.crt", tls / "s.key")
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme, self.ca_pem = "https", ca.cert_pem.decode()
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def index(self, digest: str, url: str = "app-1.0.0.tgz") -> None:
        doc = {"apiVersion": "v1", "entries": {"app": [{"version": "1.0.0", "urls": [url], "digest": digest}]}}
        self.files["/index.yaml"] = yaml.safe_dump(doc).encode()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def repo(url: str, *, insecure: bool = False, interval: float = 600) -> HelmRepoSpec:
    return HelmRepoSpec("charts", "ns", url, interval, 5, insecure=insecure)


def test_charts_are_cached_by_digest_and_the_index_by_interval(server: Server, tmp_path: Path) -> None:
    server.index(hashlib.sha256(ARCHIVE).hexdigest())
    server.files["/app-1.0.0.tgz"] = ARCHIVE
    first = ChartRepository(repo(server.url), RepoAuth(), tmp_path).fetch("app", "^1")
    assert first.version == "1.0.0" and first.path.read_bytes() == ARCHIVE
    assert first.digest == "sha256:" + hashlib.sha256(ARCHIVE).hexdigest()
    server.seen.clear()
    again = ChartRepository(repo(server.url), RepoAuth(), tmp_path).fetch("app", "^1")
    assert again.path == first.path and server.seen == []  # fresh index, cached archive: no request
    ChartRepository(repo(server.url, interval=0), RepoAuth(), tmp_path).fetch("app", "^1")
    assert [p for p, _ in server.seen] == ["/index.yaml"]  # a stale index is fetched again, the archive is not


def test_a_digest_mismatch_uses_nothing(server: Server, tmp_path: Path) -> None:
    server.index("0" * 64)
    server.files["/app-1.0.0.tgz"] = ARCHIVE
    with pytest.raises(SourceFailed, match="digest mismatch"):
        ChartRepository(repo(server.url), RepoAuth(), tmp_path).fetch("app", "*")
    assert not list((tmp_path / "charts").rglob("*.tgz"))


def test_a_corrupted_cache_entry_is_downloaded_again(server: Server, tmp_path: Path) -> None:
    digest = hashlib.sha256(ARCHIVE).hexdigest()
    server.index(digest)
    server.files["/app-1.0.0.tgz"] = ARCHIVE
    cached = tmp_path / "charts" / "sha256" / f"{digest}.tgz"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"tampered")
    got = ChartRepository(repo(server.url), RepoAuth(), tmp_path).fetch("app", "*")
    assert got.path.read_bytes() == ARCHIVE


def test_credentials_never_go_over_plain_http_unless_insecure(server: Server, tmp_path: Path) -> None:
    server.index(hashlib.sha256(ARCHIVE).hexdigest())
    server.files["/app-1.0.0.tgz"] = ARCHIVE
    auth = RepoAuth(username="u", password="hunter2")
    with pytest.raises(SourceFailed, match="refusing to send credentials over plain http://"):
        ChartRepository(repo(server.url), auth, tmp_path).fetch("app", "*")
    assert server.seen == []
    ChartRepository(repo(server.url, insecure=True), auth, tmp_path).fetch("app", "*")
    assert server.seen[0][1].startswith("Basic ")


def test_credentials_are_not_sent_to_another_host(server: Server, tmp_path: Path) -> None:
    other = Server()
    try:
        other.files["/app-1.0.0.tgz"] = ARCHIVE
        server.index(hashlib.sha256(ARCHIVE).hexdigest(), url=f"{other.url}/app-1.0.0.tgz")
        ChartRepository(repo(server.url, insecure=True), RepoAuth(bearer_token="t0ken"), tmp_path).fetch("app", "*")
        assert server.seen[0][1] == "Bearer t0ken"
        assert other.seen == [("/app-1.0.0.tgz", "")]
    finally:
        other.httpd.shutdown()
        other.httpd.server_close()


def test_unreachable_and_missing(server: Server, tmp_path: Path) -> None:
    with pytest.raises(SourceFailed, match=r"HelmRepository ns/charts .*index.yaml: HTTP 404"):
        ChartRepository(repo(server.url), RepoAuth(), tmp_path).fetch("app", "*")
    with pytest.raises(SourceFailed, match=r"cannot reach http://127\.0\.0\.1:9"):
        ChartRepository(repo("http://127.0.0.1:9"), RepoAuth(), tmp_path / "x").fetch("app", "*")


def test_https_with_the_repositorys_own_ca(tmp_path: Path) -> None:
    server = Server(tls=tmp_path)
    try:
        server.index(hashlib.sha256(ARCHIVE).hexdigest())
        server.files["/app-1.0.0.tgz"] = ARCHIVE
        with pytest.raises(SourceFailed, match="certificate verify failed"):
            ChartRepository(repo(server.url), RepoAuth(), tmp_path / "a").fetch("app", "*")
        got = ChartRepository(repo(server.url), RepoAuth(ca_pem=server.ca_pem), tmp_path / "b").fetch("app", "*")
        assert got.path.read_bytes() == ARCHIVE
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_oci_registry_with_a_token_exchange(server: Server, tmp_path: Path) -> None:
    digest = "sha256:" + hashlib.sha256(ARCHIVE).hexdigest()
    manifest = {"schemaVersion": 2, "layers": [{"mediaType": OCI_CHART_LAYER, "digest": digest, "size": len(ARCHIVE)}]}
    base = "/v2/charts/app"
    server.files.update({f"{base}/tags/list": json.dumps({"tags": ["1.0.0", "1.1.0", "2.0.0"]}).encode(),
                         f"{base}/manifests/1.1.0": json.dumps(manifest).encode(), f"{base}/blobs/{digest}": ARCHIVE})
    server.protected.update(server.files)
    oci = repo(server.url.replace("http://", "oci://") + "/charts", insecure=True)
    got = ChartRepository(oci, RepoAuth(username="u", password="p"), tmp_path).fetch("app", "^1")
    assert (got.version, got.digest, got.path.read_bytes()) == ("1.1.0", digest, ARCHIVE)
    token_requests = [p for p, _ in server.seen if p.startswith("/token")]
    assert token_requests == ["/token?service=reg&scope=repository%3Acharts%2Fapp%3Apull"]
    server.seen.clear()
    ChartRepository(oci, RepoAuth(username="u", password="p"), tmp_path).fetch("app", "^1")
    assert not [p for p, _ in server.seen if "/blobs/" in p]  # the archive comes from the digest cache
    with pytest.raises(SourceFailed, match=r"HTTP 401"):
        ChartRepository(oci, RepoAuth(username="u", password="wrong"), tmp_path / "x").fetch("app", "^1")
