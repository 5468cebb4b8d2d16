"""Load the served webhook the way the API server does: keep-alive TLS connections, recorded reviews.

Not a test: it prints numbers and never fails on time. It starts the real gunicorn server
(`kubectl_gitops_webhook.serve`) with a throwaway self-signed certificate and the production
lookups: `CachedSyncLookup` and `ApiParentFetcher` over the project's API client
(`webhook.lookup.from_cluster`), against a real API server, a dev control plane started here
(`kubectl gitops dev up --name bench-load`, stopped afterwards unless `--keep`) holding the Sync,
its GitSource and the scale requests' parent Deployment. Scale requests therefore cost a real GET
each (parents are never cached), Sync lookups a GET per TTL. `--static-lookup` uses in-process
constants instead (no cluster), to separate the webhook's own cost from the lookups'.

It drives the server from several processes (so the driver's GIL does not become the bottleneck
being measured), each holding a few keep-alive connections in threads, `--repeats` times.

    .venv/bin/python benchmarks/webhook_load.py                          # 3 x 4,000 reviews at 16 connections
    .venv/bin/python benchmarks/webhook_load.py --processes 4 --connections 8 --requests 500 --threads 16

The mix is what an API server sends a drift guard: a person's edit of a Git field (refused), a
person's edit of a field Git does not own on an object carrying the declared-fields record
(judged in full, allowed), status writes, a delete (refused), a scale (refused, parent fetched)
and a stamp on /mutate.

`--tenancy` adds the tenancy reviews an API server sends /tenancy (a person's create in their own
namespace, in another tenant's, a RoleBinding for a teammate, a tenant applier's ClusterRoleBinding,
a GitSource with a URL not allowed) to the mix, judged against 50 Tenants held in memory (as the
watch-backed cache holds them; no per-review API call). `--tenancy-micro` times `core.tenancy.review`
alone (parsing included) over the same reviews, with no server: what a tenancy decision adds.

    .venv/bin/python benchmarks/webhook_load.py --static-lookup --tenancy
    .venv/bin/python benchmarks/webhook_load.py --tenancy-micro

Output per run: reviews/s, p50/p90/p99/max latency per review (failed requests included, at the
time they failed), errors (non-200 answers, answers without the uid, broken connections), and
where the machine's CPU went: the server (gunicorn arbiter + workers, from /proc/<pid>/stat
utime+stime), the driver processes (their own process_time) and everything else (the API server
and etcd among it, and other users of the machine, from /proc/stat). Then the median and range
over the runs, and the load average before the first run.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubectl_gitops.constants import ANNOTATION_FIELDS
from kubectl_gitops.core import declared
from kubectl_gitops.core.admission import AdmissionRequest
from kubectl_gitops.core.drift import SyncInfo

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "admission"
JUDGED = "(generated) annotation edit of a declared object"
# (endpoint, fixture): the mix an API server sends a drift guard (mostly passes, some denials).
MIX = [
    ("/validate", "deployment_update_kubectl_edit.json"),
    ("/validate", JUDGED),
    ("/validate", "deployment_status.json"),
    ("/validate", "deployment_status.json"),
    ("/validate", "deployment_delete.json"),
    ("/validate", "deployment_scale.json"),
    ("/mutate", "configmap_create_by_applier.json"),
]
SYNC = SyncInfo(name="shop-apps", namespace="gitops", source_url="https://github.com/acme/shop.git",
                path="./apps/shop", revision="main@sha1:abc",
                appliers=frozenset({"system:serviceaccount:gitops:shop-applier"}))


def judged_body() -> bytes:
    """A person's edit of an annotation Git does not own, on a Deployment that carries the
    declared-fields record: every rule runs (owned, declared, lifecycle, record) and it passes."""
    doc = json.loads((FIXTURES / "deployment_update_kubectl_edit.json").read_text())
    old = doc["request"]["oldObject"]
    manifest = {k: v for k, v in old.items() if k != "status"}
    manifest["metadata"] = {"name": "web", "labels": old["metadata"]["labels"]}
    old["metadata"]["annotations"][ANNOTATION_FIELDS] = declared.encode(declared.with_declared(manifest))
    new = json.loads(json.dumps(old))
    new["metadata"]["annotations"]["team"] = "checkout"
    doc["request"]["object"] = new
    return json.dumps(doc).encode()


def body_of(name: str) -> bytes:
    if name in TENANCY_BODIES:
        return json.dumps(TENANCY_BODIES[name]).encode()
    return judged_body() if name == JUDGED else (FIXTURES / name).read_bytes()


# ------------------------------------------------------------------ tenancy reviews

TENANTS = 50
"""Tenants in memory, 5 namespaces each: a mid-size platform."""


def tenancy_review(kind: str, namespace: str, user: str, obj: dict[str, Any], group: str = "") -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "bench-tenancy", "kind": {"group": group, "version": "v1", "kind": kind},
        "resource": {"group": group, "version": "v1", "resource": kind.lower() + "s"}, "operation": "CREATE",
        "name": obj["metadata"]["name"], "namespace": namespace,
        "userInfo": {"username": user, "groups": ["system:authenticated"]}, "object": obj}}


RBAC_GROUP = "rbac.authorization.k8s.io"
LAST = TENANTS - 1  # the last Tenant: every lookup walks the whole list
TENANCY_BODIES: dict[str, dict[str, Any]] = {
    "(tenancy) own configmap": tenancy_review(
        "ConfigMap", f"t{LAST}-ns0", f"person-{LAST}",
        {"metadata": {"name": "cfg", "labels": {"app": "web"}}, "data": {"a": "1"}}),
    "(tenancy) other tenant's namespace": tenancy_review(
        "ConfigMap", "t0-ns0", f"person-{LAST}", {"metadata": {"name": "cfg"}, "data": {"a": "1"}}),
    "(tenancy) rolebinding for a teammate": tenancy_review(
        "RoleBinding", f"t{LAST}-ns1", f"person-{LAST}",
        {"metadata": {"name": "rb"}, "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": "edit"},
         "subjects": [{"kind": "User", "name": f"person-{LAST}"}]}, group=RBAC_GROUP),
    "(tenancy) applier clusterrolebinding": tenancy_review(
        "ClusterRoleBinding", "", f"system:serviceaccount:kubectl-gitops-system:tenant-t{LAST}-applier",
        {"metadata": {"name": "crb"}, "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole",
                                                  "name": "cluster-admin"}}, group=RBAC_GROUP),
    "(tenancy) gitsource url": tenancy_review(
        "GitSource", f"t{LAST}-ns2", f"person-{LAST}",
        {"metadata": {"name": "src"}, "spec": {"url": "https://evil.example.com/x.git"}}, group="kubectl-gitops.dev"),
}
TENANCY_MIX = [("/tenancy", name) for name in TENANCY_BODIES]
TENANCY_ENV = "KUBECTL_GITOPS_BENCH_TENANCY"


def mix() -> list[tuple[str, str]]:
    """The reviews sent, in order: the drift guard's, then the tenancy ones with --tenancy."""
    return MIX + (TENANCY_MIX if os.environ.get(TENANCY_ENV) else [])


def bench_facts() -> Any:
    """50 Tenants in memory, the shape the watch-backed cache serves (`webhook.tenants.ClusterFacts`)."""
    from kubectl_gitops.core.tenancy import StaticFacts
    from kubectl_gitops.core.tenant import parse_tenant, tenant_for

    tenants = tuple(parse_tenant({"metadata": {"name": f"t{i}"}, "spec": {
        "namespaces": [f"t{i}-ns{n}" for n in range(5)], "people": {"users": [f"person-{i}"]},
        "sourceURLs": [f"https://git.example.com/t{i}/*"], "kinds": {"deny": ["core/Secret"]}}})
        for i in range(TENANTS))

    class Facts(StaticFacts):
        def tenant_of(self, namespace: str, labels: Any = None) -> str:
            found = tenant_for(self.all_tenants, namespace, labels)
            return found.name if found else ""

        def synced(self) -> bool:
            return True

    return Facts(tenants)


def tenancy_micro(iterations: int) -> None:
    """Time parse + core.tenancy.review per review of the tenancy mix (no server, no I/O)."""
    from kubectl_gitops.core.admission import parse_review
    from kubectl_gitops.core.tenancy import review

    facts = bench_facts()
    bodies = [(name, json.dumps(doc).encode()) for name, doc in TENANCY_BODIES.items()]
    print(f"tenancy decision (parse_review + core.tenancy.review), {TENANTS} Tenants, {iterations} each; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, body in bodies:
        timings = []
        answer = review(parse_review(body), facts)
        for _ in range(iterations):
            started = time.perf_counter()
            review(parse_review(body), facts)
            timings.append((time.perf_counter() - started) * 1e6)
        timings.sort()
        parse_only = []
        for _ in range(iterations):
            started = time.perf_counter()
            parse_review(body)
            parse_only.append((time.perf_counter() - started) * 1e6)
        parse_only.sort()
        print(f"  {name.removeprefix('(tenancy) ')}: allowed={answer.allowed}; p50 {percentile(timings, 0.5):.1f} us "
              f"(of which parsing {percentile(parse_only, 0.5):.1f} us), p99 {percentile(timings, 0.99):.1f} us")


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
    pki.issue(ca, CLIENT_NAME, client=True).write(Path(cert_path), Path(key_path))
    return ca_path, cert_path, key_path


CLIENT_NAME = "kube-apiserver-webhook-client"


def run_server(cert: str, key: str, port: int, workers: int, threads: int, kubeconfig: str | None,
               client_ca: str | None = None, tenancy: bool = False) -> None:
    from kubectl_gitops_webhook.app import create_app
    from kubectl_gitops_webhook.serve import ServeOptions, serve

    if kubeconfig is None:
        lookup_factory, fetch = static_lookups()
    else:
        lookup_factory, fetch = cluster_lookups(kubeconfig)
    app = create_app(lookup_factory, fetch, tenancy_factory=bench_facts if tenancy else None)
    serve(app, ServeOptions(certfile=cert, keyfile=key, bind=f"127.0.0.1:{port}", workers=workers,
                            threads=threads, loglevel="warning", client_ca_file=client_ca,
                            client_names=(CLIENT_NAME,) if client_ca else ()))


def static_lookups() -> tuple[Any, Any]:
    parent = json.loads((FIXTURES / "deployment_update_kubectl_edit.json").read_text())["request"]["oldObject"]

    def lookup(namespace: str, name: str) -> SyncInfo | None:
        return SYNC if (namespace, name) == (SYNC.namespace, SYNC.name) else None

    def fetch(req: AdmissionRequest) -> dict[str, Any] | None:
        return parent  # type: ignore[no-any-return]

    return (lambda: lookup), fetch


def cluster_lookups(kubeconfig: str) -> tuple[Any, Any]:
    """What `serve` builds in production: one API client per worker, made after the fork."""
    from kubectl_gitops_webhook.lookup import from_cluster

    lock = threading.Lock()
    built: list[Any] = []

    def pair() -> Any:
        with lock:
            if not built:
                built.append(from_cluster(5.0, kubeconfig))
            return built[0]

    def fetch(req: AdmissionRequest) -> dict[str, Any] | None:
        return pair()[1](req)  # type: ignore[no-any-return]

    return (lambda: pair()[0]), fetch


# ------------------------------------------------------------------ the control plane behind the lookups


def gitops_cli(*args: str, kubeconfig: str | None = None, check: bool = True) -> str:
    import subprocess

    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    proc = subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=900, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def prepare_cluster(name: str) -> str:
    """Start (or reuse) the dev control plane and create what the recorded reviews refer to."""
    gitops_cli("kubectl-gitops", "dev", "up", "--name", name)
    kubeconfig = gitops_cli("kubectl-gitops", "dev", "kubeconfig", "--name", name, "--path").strip()
    crds = Path(__file__).resolve().parent.parent / "manifests" / "crds"
    gitops_cli("kubectl", "apply", "--server-side", "-k", str(crds), kubeconfig=kubeconfig)
    gitops_cli("kubectl", "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s",
               kubeconfig=kubeconfig)
    for ns in (SYNC.namespace, "shop"):
        gitops_cli("kubectl", "create", "namespace", ns, kubeconfig=kubeconfig, check=False)
    gitops_cli("kubectl-gitops", "-n", SYNC.namespace, "create", "source", "shop", "--url", SYNC.source_url,
               "--branch", "main", kubeconfig=kubeconfig)
    gitops_cli("kubectl-gitops", "-n", SYNC.namespace, "create", "sync", SYNC.name, "--source", "shop",
               "--path", SYNC.path, "--service-account", "shop-applier", kubeconfig=kubeconfig)
    parent = json.loads((FIXTURES / "deployment_update_kubectl_edit.json").read_text())["request"]["oldObject"]
    manifest = {k: v for k, v in parent.items() if k not in ("status",)}
    manifest["metadata"] = {k: v for k, v in parent["metadata"].items()
                            if k in ("name", "namespace", "labels", "annotations")}
    path = Path(tempfile.mkdtemp()) / "parent.json"
    path.write_text(json.dumps(manifest))
    gitops_cli("kubectl", "apply", "--server-side", "--field-manager=kubectl-gitops", "--force-conflicts",
               "-f", str(path), kubeconfig=kubeconfig)
    return kubeconfig


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


def drive(job: tuple[str, int, int, int, int, tuple[str, str] | None]) -> tuple[list[tuple[int, float]], int, float]:
    """One driver process: `connections` keep-alive connections, `requests` reviews each.

    Returns the latencies, the error count and the CPU seconds this process spent driving."""
    cert, port, connections, requests, seed, client = job
    cpu_started = time.process_time()
    bodies = [(path, body_of(name)) for path, name in mix()]
    context = client_context(cert, client)
    latencies: list[tuple[int, float]] = []
    errors = [0]
    lock = threading.Lock()

    def one_connection(offset: int) -> None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        mine: list[tuple[int, float]] = []
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
            # a failed request counts, at the time it failed
            mine.append(((i + offset) % len(bodies), time.perf_counter() - started))
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


def show_mix(port: int, context: ssl.SSLContext) -> None:
    """Each review of the mix once, with the answer: proof the lookups found the Sync and the parent."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    for path, name in mix():
        conn.request("POST", path, body=body_of(name), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = json.loads(resp.read()).get("response", {})
        message = str(answer.get("status", {}).get("message", "")).split("\n")[0]
        print(f"  {path} {name}: HTTP {resp.status}, allowed={answer.get('allowed')} {message[:110]}")
    conn.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class RunResult:
    total: int
    errors: int
    elapsed: float
    p50: float
    p90: float
    p99: float
    worst: float
    mean: float
    server_cpu: float
    driver_cpu: float
    busy: float
    per_item: dict[int, tuple[float, float]]


def one_run(pool: Any, jobs: list[tuple[str, int, int, int, int]], server_pid: int) -> RunResult:
    server_cpu, busy = tree_cpu_seconds(server_pid), machine_busy_seconds()
    started = time.perf_counter()
    results = pool.map(drive, jobs)
    elapsed = time.perf_counter() - started
    server_cpu, busy = tree_cpu_seconds(server_pid) - server_cpu, machine_busy_seconds() - busy
    ms = sorted(x * 1000 for lat, _, _ in results for _, x in lat)
    per_item: dict[int, list[float]] = {}
    for lat, _, _ in results:
        for item, x in lat:
            per_item.setdefault(item, []).append(x * 1000)
    return RunResult(total=len(ms), errors=sum(e for _, e, _ in results), elapsed=elapsed,
                     p50=percentile(ms, 0.50), p90=percentile(ms, 0.90), p99=percentile(ms, 0.99),
                     worst=ms[-1] if ms else float("nan"), mean=statistics.fmean(ms) if ms else float("nan"),
                     server_cpu=server_cpu, driver_cpu=sum(c for _, _, c in results), busy=busy,
                     per_item={i: (percentile(sorted(v), 0.5), percentile(sorted(v), 0.99))
                               for i, v in sorted(per_item.items())})


def report(run: RunResult, label: str) -> None:
    cores = os.cpu_count() or 1
    rate = run.total / run.elapsed
    other = max(0.0, run.busy - run.server_cpu - run.driver_cpu)
    per = 1000 / max(run.total, 1)
    print(f"{label}: {run.total} reviews ({run.errors} errors) in {run.elapsed:.2f}s -> {rate:.0f} reviews/s; "
          f"latency ms p50 {run.p50:.2f} p90 {run.p90:.2f} p99 {run.p99:.2f} max {run.worst:.2f} "
          f"mean {run.mean:.2f}")
    print(f"  cpu s ({cores} cores x {run.elapsed:.1f}s = {cores * run.elapsed:.1f}): server {run.server_cpu:.1f} "
          f"({run.server_cpu * per:.2f} ms/review), driver {run.driver_cpu:.1f}, other {other:.1f} "
          f"(API server, etcd, other users), idle {max(0.0, cores * run.elapsed - run.busy):.1f}")
    print("  p50/p99 ms by review: " + ", ".join(
        f"{mix()[i][1].split('.')[0].removeprefix('(tenancy) ').split(' ')[-1]} {p50:.1f}/{p99:.1f}"
        for i, (p50, p99) in run.per_item.items()))


def summary(runs: list[RunResult]) -> None:
    def spread(values: list[float], fmt: str) -> str:
        return f"median {statistics.median(values):{fmt}} (range {min(values):{fmt}}..{max(values):{fmt}})"
    print(f"over {len(runs)} runs: reviews/s {spread([r.total / r.elapsed for r in runs], '.0f')}; "
          f"p50 ms {spread([r.p50 for r in runs], '.2f')}; p99 ms {spread([r.p99 for r in runs], '.2f')}; "
          f"errors {sum(r.errors for r in runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Load the kubectl-gitops webhook over keep-alive TLS.")
    parser.add_argument("--processes", type=int, default=2, help="driver processes")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections per process")
    parser.add_argument("--requests", type=int, default=250, help="reviews per connection and run")
    parser.add_argument("--repeats", type=int, default=3, help="runs against the same server")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (the served default)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (the served default)")
    parser.add_argument("--cluster", default="bench-load", help="dev control plane behind the lookups")
    parser.add_argument("--keep", action="store_true", help="leave the dev control plane running")
    parser.add_argument("--static-lookup", action="store_true", help="in-process lookups, no cluster")
    parser.add_argument("--tenancy", action="store_true",
                        help="add tenancy reviews (/tenancy, 50 Tenants in memory) to the mix")
    parser.add_argument("--tenancy-micro", type=int, nargs="?", const=20000, default=0, metavar="N",
                        help="only time core.tenancy.review N times per review (no server, no cluster)")
    parser.add_argument("--client-cert", action=argparse.BooleanOptionalAction, default=True,
                        help="the server requires the API server's client certificate, as served (default)")
    args = parser.parse_args()
    if args.tenancy_micro:
        tenancy_micro(args.tenancy_micro)
        sys.exit(0)
    if args.tenancy:
        os.environ[TENANCY_ENV] = "1"  # before the server and the drivers start (inherited, any start method)

    kubeconfig = None if args.static_lookup else prepare_cluster(args.cluster)
    load = os.getloadavg()
    try:
        runs = serve_and_drive(args, kubeconfig)
    finally:
        if kubeconfig is not None and not args.keep:
            gitops_cli("kubectl-gitops", "dev", "down", "--name", args.cluster, check=False)
    print(f"webhook: {args.workers} worker(s) x {args.threads} threads; lookups: "
          f"{'static' if kubeconfig is None else 'CachedSyncLookup + ApiParentFetcher over a dev control plane'}; "
          f"driver: {args.processes} processes x {args.connections} keep-alive TLS connections x "
          f"{args.requests} reviews; tenancy reviews {'in the mix' if args.tenancy else 'not sent'}; "
          f"client certificate {'required' if args.client_cert else 'not required'}; "
          f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for n, run in enumerate(runs, 1):
        report(run, f"run {n}")
    summary(runs)
    sys.exit(0)


def serve_and_drive(args: argparse.Namespace, kubeconfig: str | None) -> list[RunResult]:
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = self_signed(tmp)
        client_ca, client = None, None
        if args.client_cert:
            client_ca, client_cert, client_key = client_pki(tmp)
            client = (client_cert, client_key)
        port = free_port()
        server = multiprocessing.Process(target=run_server, args=(cert, key, port, args.workers, args.threads,
                                                                  kubeconfig, client_ca, args.tenancy))
        server.start()
        try:
            wait_ready(port, client_context(cert, client))
            show_mix(port, client_context(cert, client))
            jobs = [(cert, port, args.connections, args.requests, n, client) for n in range(args.processes)]
            assert server.pid is not None
            with multiprocessing.Pool(args.processes) as pool:
                pool.map(time.sleep, [0.0] * args.processes)  # pool processes up before the clock starts
                pool.map(drive, [(cert, port, args.connections, 5, n, client)
                                 for n in range(args.processes)])  # warm
                return [one_run(pool, jobs, server.pid) for _ in range(args.repeats)]
        finally:
            if server.pid is not None:
                os.kill(server.pid, signal.SIGTERM)
            server.join(15)


if __name__ == "__main__":
    main()
