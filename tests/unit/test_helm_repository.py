"""adapters/helm.py against a local HTTP server: index cache, digest cache, credentials' reach.

No cluster and no helm here: the repository is a hand-written index and bytes served from a thread.
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.adapters.helm import ChartRepository, RepoAuth
from kubectl_gitops.core.errors import SourceFailed
from kubectl_gitops.core.helm import HelmRepoSpec

ARCHIVE = b"not really a tarball, but bytes with a digest"


class Server:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.seen: list[tuple[str, str]] = []  # (path, Authorization)
        files, seen = self.files, self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Authorization", "")))
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                if body is not None:
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

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
