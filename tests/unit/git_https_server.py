"""A real Git smart-HTTP server over TLS for tests: `git http-backend` behind Basic or Bearer auth.

The git client on the other side is the real one, as the source adapter runs it, so these tests
show credentials travel the way real Git hosts expect (Basic for username/password, a Bearer
header for tokens) and that TLS is verified against the CA the GitSource names.
"""

from __future__ import annotations

import base64
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kubectl_gitops.adapters import pki

BACKEND = "/usr/lib/git-core/git-http-backend"


@dataclass(frozen=True)
class GitHttps:
    url_base: str
    ca_file: Path
    requests: list[str]


def _handler(root: Path, username: str, password: str, token: str, seen: list[str]) -> type[BaseHTTPRequestHandler]:
    basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:  # quiet
            return

        def _authorised(self) -> bool:
            header = self.headers.get("Authorization", "")
            seen.append(header.split(" ", 1)[0] or "none")
            return header in (basic, f"Bearer {token}")

        def _serve(self) -> None:
            if not self._authorised():
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {**os.environ, "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                   "QUERY_STRING": query, "REQUEST_METHOD": self.command, "REMOTE_USER": username,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
            out = subprocess.run([BACKEND], input=body, env=env, capture_output=True, check=False).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().split("\r\n"):
                key, _, value = line.partition(": ")
                if key.lower() == "status":
                    status = int(value.split()[0])
                elif key:
                    headers.append((key, value))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

    return Handler


@contextmanager
def serve(root: Path, tmp: Path, *, username: str, password: str, token: str) -> Iterator[GitHttps]:
    """Serve the repositories under `root` at https://127.0.0.1:PORT/<name>."""
    ca = pki.make_ca("test git host CA")
    leaf = pki.issue(ca, "127.0.0.1", hosts=("127.0.0.1", "localhost"), server=True)
    leaf.write(tmp / "git.crt", tmp / "git.key")
    (tmp / "ca.crt").write_bytes(ca.cert_pem)
    seen: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, username, password, token, seen))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "git.crt", tmp / "git.key")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield GitHttps(f"https://127.0.0.1:{server.server_address[1]}", tmp / "ca.crt", seen)
    finally:
        server.shutdown()
        server.server_close()
