"""The served webhook with two gunicorn workers: /metrics must report all workers' requests.

Runs the real `kubectl-gitops webhook serve` (gunicorn, TLS) as a subprocess on loopback; the
reviews used pass before any Sync lookup, so no cluster is needed."""

from __future__ import annotations

import http.client
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.test_webhook_serve import self_signed

FIXTURE = Path(__file__).parent.parent / "fixtures" / "admission" / "deployment_status.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    cert, key = self_signed("localhost")
    (tmp_path / "tls.crt").write_bytes(cert)
    (tmp_path / "tls.key").write_bytes(key)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    log = tmp_path / "webhook.log"  # a file, not a pipe: a full pipe would block the workers' logging
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kubectl_gitops.cli.main", "webhook", "serve",
                                 "--cert-dir", str(tmp_path), "--port", str(port), "--bind-address", "127.0.0.1",
                                 "--workers", "2", "--log-level", "warning"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    ctx = ssl.create_default_context(cadata=cert.decode())
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"webhook did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield port, ctx
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


def _validate_total(text: str) -> float:
    pattern = r'kubectl_gitops_webhook_requests_total\{code="200",endpoint="/validate"\} ([0-9.e+]+)'
    return sum(float(m) for m in re.findall(pattern, text))


def test_metrics_sum_over_both_workers(served: tuple[int, ssl.SSLContext]) -> None:
    port, ctx = served
    body = FIXTURE.read_bytes()
    sent = 40
    for _ in range(sent):  # a new connection each time, so both workers get some
        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=5)
        conn.request("POST", "/validate", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200 and b'"allowed":true' in resp.read()
        conn.close()
    for _ in range(4):  # every scrape, whichever worker answers it, sees all 40
        conn = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=5)
        conn.request("GET", "/metrics")
        assert _validate_total(conn.getresponse().read().decode()) == sent
        conn.close()
