"""Load the served webhook the way the API server does: keep-alive TLS connections, recorded reviews.

Not a test: it prints numbers and never fails on time. It starts the real gunicorn server
(`kubectl_gitops_webhook.serve`) with a throwaway self-signed certificate and a static Sync
lookup (no cluster), then drives it from several processes (so the driver's GIL does not become
the bottleneck being measured), each holding a few keep-alive connections in threads.

    .venv/bin/python benchmarks/webhook_load.py                # ~2,000 reviews, well under a minute
    .venv/bin/python benchmarks/webhook_load.py --processes 4 --connections 8 --requests 500 --threads 16

Output: reviews/s over the whole run, p50/p90/p99/max latency per review, errors (non-200
answers or broken connections), and where the machine's CPU went during the run: the server
(gunicorn arbiter + workers, from /proc/<pid>/stat utime+stime), the driver processes (their own
process_time) and everything else (from /proc/stat). Driver and server share the cores, so a
throughput figure means little without knowing how much of the CPU the driver took.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import ipaddress
import json
import multiprocessing
import os
import signal
import socket
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubectl_gitops.core.admission import AdmissionRequest
from kubectl_gitops.core.drift import SyncInfo

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "admission"
# (endpoint, fixture): the mix an API server sends a drift guard (mostly passes, some denials).
MIX = [
    ("/validate", "deployment_update_kubectl_edit.json"),
    ("/validate", "deployment_status.json"),
    ("/validate", "deployment_status.json"),
    ("/validate", "deployment_delete.json"),
    ("/validate", "deployment_scale.json"),
    ("/mutate", "configmap_create_by_applier.json"),
]
SYNC = SyncInfo(name="shop-apps", namespace="gitops", source_url="https://github.com/acme/shop.git",
                path="./apps/shop", revision="main@sha1:abc",
                appliers=frozenset({"system:serviceaccount:gitops:shop-applier"}))


def self_signed(dirname: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    sans = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1)).add_extension(sans, critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(dirname, "tls.crt"), os.path.join(dirname, "tls.key")
    Path(cert_path).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(key_path).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ------------------------------------------------------------------ server side


def client_pki(dirname: str) -> tuple[str, str, str]:
    """A client CA for the server and the API server's client certificate for the driver."""
    from kubectl_gitops.adapters import pki

    ca = pki.make_ca("bench client CA")
    ca_path, cert_path, key_path = (os.path.join(dirname, n) for n in ("client-ca.crt", "client.crt", "client.key"))
    Path(ca_path).write_bytes(ca.cert_pem)
    pki.issue(ca, "kube-apiserver-webhook-client", client=True).write(Path(cert_path), Path(key_path))
    return ca_path, cert_path, key_path


def run_server(cert: str, key: str, port: int, workers: int, threads: int, client_ca: str | None = None) -> None:
    from kubectl_gitops_webhook.app import create_app
    from kubectl_gitops_webhook.serve import ServeOptions, serve

    parent = json.loads((FIXTURES / "deployment_update_kubectl_edit.json").read_text())["request"]["oldObject"]

    def lookup(namespace: str, name: str) -> SyncInfo | None:
        return SYNC if (namespace, name) == (SYNC.namespace, SYNC.name) else None

    def fetch(req: AdmissionRequest) -> dict[str, Any] | None:
        return parent  # type: ignore[no-any-return]

    app = create_app(lambda: lookup, fetch)
    serve(app, ServeOptions(certfile=cert, keyfile=key, bind=f"127.0.0.1:{port}", workers=workers,
                            threads=threads, loglevel="warning", client_ca_file=client_ca,
                            client_names=("kube-apiserver-webhook-client",) if client_ca else ()))


def wait_ready(port: int, context: ssl.SSLContext, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"webhook did not become ready on port {port} within {timeout}s")


# ------------------------------------------------------------------ CPU accounting

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2:].split()  # the fields after "(comm) ", comm may hold spaces


def tree_cpu_seconds(root: int) -> float:
    """utime+stime of `root` and all its live descendants (gunicorn's arbiter and its workers)."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry))
        except (OSError, ValueError):
            continue  # exited meanwhile
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / TICKS
    wanted, total = {root}, 0.0
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    for pid in wanted:
        total += cpu.get(pid, 0.0)
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / TICKS


# ------------------------------------------------------------------ driver side


def client_context(cert: str, client: tuple[str, str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cert)
    if client:  # the API server's client certificate and key, when the server requires one
        ctx.load_cert_chain(*client)
    ctx.check_hostname = False  # we connect by IP; the SAN has it, but keep the driver simple
    return ctx


def drive(job: tuple[str, int, int, int, int, tuple[str, str] | None]) -> tuple[list[float], int, float]:
    """One driver process: `connections` keep-alive connections, `requests` reviews each.

    Returns the latencies, the error count and the CPU seconds this process spent driving."""
    cert, port, connections, requests, seed, client = job
    cpu_started = time.process_time()
    bodies = [(path, (FIXTURES / name).read_bytes()) for path, name in MIX]
    context = client_context(cert, client)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def one_connection(offset: int) -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        mine: list[float] = []
        failed = 0
        for i in range(requests):
            path, body = bodies[(i + offset) % len(bodies)]
            started = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200 or b'"uid"' not in data:
                    failed += 1
            except (OSError, http.client.HTTPException):
                failed += 1
                conn.close()
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
                continue
            mine.append(time.perf_counter() - started)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=one_connection, args=(seed * 31 + n,)) for n in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0], time.process_time() - cpu_started


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def main() -> None:
    parser = argparse.ArgumentParser(description="Load the kubectl-gitops webhook over keep-alive TLS.")
    parser.add_argument("--processes", type=int, default=2, help="driver processes")
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections per process")
    parser.add_argument("--requests", type=int, default=250, help="reviews per connection")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (the served default)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (the served default)")
    parser.add_argument("--client-cert", action=argparse.BooleanOptionalAction, default=True,
                        help="the server requires the API server's client certificate, as served (default)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed(tmp)
        client_ca, client = None, None
        if args.client_cert:
            client_ca, client_cert, client_key = client_pki(tmp)
            client = (client_cert, client_key)
        port = free_port()
        server = multiprocessing.Process(target=run_server, args=(cert, key, port, args.workers, args.threads,
                                                                  client_ca))
        server.start()
        try:
            wait_ready(port, client_context(cert, client))
            jobs = [(cert, port, args.connections, args.requests, n, client) for n in range(args.processes)]
            assert server.pid is not None
            with multiprocessing.Pool(args.processes) as pool:
                pool.map(time.sleep, [0.0] * args.processes)  # pool processes up before the clock starts
                server_cpu, busy = tree_cpu_seconds(server.pid), machine_busy_seconds()
                started = time.perf_counter()
                results = pool.map(drive, jobs)
                elapsed = time.perf_counter() - started
                server_cpu, busy = tree_cpu_seconds(server.pid) - server_cpu, machine_busy_seconds() - busy
        finally:
            if server.pid is not None:
                os.kill(server.pid, signal.SIGTERM)
            server.join(15)

    latencies = sorted(x for lat, _, _ in results for x in lat)
    errors = sum(e for _, e, _ in results)
    driver_cpu = sum(c for _, _, c in results)
    total = len(latencies)
    print(f"webhook: {args.workers} worker(s) x {args.threads} threads; driver: {args.processes} processes x "
          f"{args.connections} keep-alive TLS connections x {args.requests} reviews; client certificate "
          f"{'required' if args.client_cert else 'not required'}")
    print(f"reviews: {total} ok, {errors} errors in {elapsed:.2f}s -> {total / elapsed:.0f} reviews/s")
    if latencies:
        ms = [x * 1000 for x in latencies]
        print(f"latency ms: p50 {percentile(ms, 0.50):.2f}  p90 {percentile(ms, 0.90):.2f}  "
              f"p99 {percentile(ms, 0.99):.2f}  max {ms[-1]:.2f}  mean {statistics.fmean(ms):.2f}")
    cores = os.cpu_count() or 1
    other = max(0.0, busy - server_cpu - driver_cpu)
    per = 1000 / max(total, 1)
    print(f"cpu s ({cores} cores x {elapsed:.1f}s = {cores * elapsed:.1f} available): server {server_cpu:.1f} "
          f"({server_cpu * per:.2f} ms/review), driver {driver_cpu:.1f} ({driver_cpu * per:.2f} ms/review), "
          f"other {other:.1f}, idle {max(0.0, cores * elapsed - busy):.1f}")
    sys.exit(0)


if __name__ == "__main__":
    main()
