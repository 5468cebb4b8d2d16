"""Reviews from the API server only: the real served webhook (gunicorn, TLS) with --client-ca-file.

The attack: anyone who reaches the port POSTs a crafted AdmissionReview and reads the answer. Here
the callers are a client with no certificate, one with a certificate from another CA (the dev
cluster's user CA, say), one from the right CA with the wrong name, and the right one. Probes
(/healthz, /readyz, /metrics) stay readable without a certificate. The reviews used pass before
any Sync lookup, so no cluster is needed; the e2e file tests/e2e/test_webhook_ops.py does the
same against the real API server.
"""

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
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubectl_gitops.adapters import pki
from kubectl_gitops_webhook.auth import ClientPolicy, cert_names

FIXTURE = Path(__file__).parent.parent / "fixtures" / "admission" / "deployment_status.json"
API_SERVER = "kube-apiserver-webhook-client"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Served:
    port: int
    dir: Path
    log: Path

    def context(self, client: str | None = None) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.dir / "ca.crt"))
        if client:
            ctx.load_cert_chain(str(self.dir / f"{client}.crt"), str(self.dir / f"{client}.key"))
        return ctx

    def call(self, method: str, path: str, client: str | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context(client), timeout=5)
        try:
            body = FIXTURE.read_bytes() if method == "POST" else None
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    d = tmp_path_factory.mktemp("auth")
    serving_ca = pki.make_ca("serving CA")
    serving_ca.write(d / "ca.crt", d / "ca.key")
    pki.issue(serving_ca, "webhook", hosts=("127.0.0.1",), server=True).write(d / "tls.crt", d / "tls.key")
    client_ca = pki.make_ca("API server client CA")
    client_ca.write(d / "client-ca.crt", d / "client-ca.key")
    pki.issue(client_ca, API_SERVER, client=True).write(d / "apiserver.crt", d / "apiserver.key")
    pki.issue(client_ca, "someone-else", client=True).write(d / "othername.crt", d / "othername.key")
    users_ca = pki.make_ca("cluster users CA")  # e.g. the CA that signs bob's kubeconfig
    pki.issue(users_ca, API_SERVER, orgs=("system:masters",), client=True).write(d / "forged.crt", d / "forged.key")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    log = d / "webhook.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kubectl_gitops.cli.main", "webhook", "serve",
                                 "--cert-dir", str(d), "--port", str(port), "--bind-address", "127.0.0.1",
                                 "--workers", "1", "--log-level", "warning",
                                 "--client-ca-file", str(d / "client-ca.crt"), "--client-name", API_SERVER],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    served = Served(port, d, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if served.call("GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"webhook did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield served
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=20)


@pytest.mark.parametrize("path", ["/validate", "/mutate"])
def test_a_caller_without_a_certificate_is_refused_and_learns_nothing(served: Served, path: str) -> None:
    status, body = served.call("POST", path)
    assert status == 403
    assert b"client certificate required" in body
    assert b"uid" not in body and b"allowed" not in body


def test_a_certificate_from_another_ca_fails_the_handshake(served: Served) -> None:
    with pytest.raises(ssl.SSLError):
        served.call("POST", "/validate", client="forged")


def test_a_certificate_with_another_name_is_refused(served: Served) -> None:
    status, body = served.call("POST", "/validate", client="othername")
    assert status == 403 and b"allowed" not in body


def test_the_api_servers_certificate_gets_reviews(served: Served) -> None:
    status, body = served.call("POST", "/validate", client="apiserver")
    assert status == 200 and b'"allowed":true' in body


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_need_no_certificate(served: Served, path: str) -> None:
    status, _ = served.call("GET", path)
    assert status in (200, 503)  # /readyz is 503 here: no cluster to look Syncs up in
    assert status == 200 or path == "/readyz"


def test_refusals_are_counted_by_reason(served: Served) -> None:
    served.call("POST", "/validate")
    served.call("POST", "/validate", client="othername")
    served.call("POST", "/validate", client="apiserver")
    text = served.call("GET", "/metrics")[1].decode()

    def count(pattern: str) -> float:
        return sum(float(m) for m in re.findall(pattern + r" ([0-9.e+]+)", text))

    assert count(r'kubectl_gitops_webhook_refused_callers_total\{endpoint="/validate",reason="no-certificate"\}') >= 1
    assert count(r'kubectl_gitops_webhook_refused_callers_total\{endpoint="/validate",reason="unexpected-name"\}') >= 1
    assert count(r'kubectl_gitops_webhook_authenticated_reviews_total\{endpoint="/validate"\}') >= 1


def test_policy_names_come_from_cn_and_dns_sans() -> None:
    peer = {"subject": ((("organizationName", "x"),), (("commonName", "a"),)),
            "subjectAltName": (("DNS", "b"), ("IP Address", "127.0.0.1"))}
    assert cert_names(peer) == {"a", "b"}
    assert ClientPolicy(frozenset({"b"})).refusal(peer) is None
    assert ClientPolicy(frozenset({"c"})).refusal(peer) == "unexpected-name"
    assert ClientPolicy().refusal(peer) is None
    assert ClientPolicy().refusal(None) == "no-certificate"
    assert ClientPolicy().refusal({}) == "no-certificate"


def test_the_client_ca_is_reloaded_with_the_serving_pair(tmp_path: Path) -> None:
    from kubectl_gitops_webhook.serve import ReloadingSSLContext

    serving_ca = pki.make_ca("serving CA")
    pki.issue(serving_ca, "webhook", hosts=("127.0.0.1",), server=True).write(tmp_path / "tls.crt",
                                                                                tmp_path / "tls.key")
    (tmp_path / "client-ca.crt").write_bytes(pki.make_ca("first client CA").cert_pem)
    now = [0.0]
    hook = ReloadingSSLContext(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"), check_interval=1.0,
                               clock=lambda: now[0], cafile=str(tmp_path / "client-ca.crt"))

    def factory() -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "client-ca.crt"))
        ctx.load_cert_chain(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
        return ctx

    first = hook(None, factory)
    (tmp_path / "client-ca.crt").write_bytes(pki.make_ca("rotated client CA with a longer name").cert_pem)
    now[0] = 2.0
    assert hook(None, factory) is not first and hook.reloads == 1
