"""What the admission webhook costs the applier, measured through the real API server.

Not a test: it prints numbers and never fails on time. It starts (or reuses) a dev control plane
with the local webhook (`kubectl gitops dev up --name NAME --webhook`), creates a GitSource and a
Sync so the webhook's Sync lookup finds a real owner, and then writes managed ConfigMaps the way a
Sync does: server-side apply (`fieldManager=kubectl-gitops`, `force=true`) as the applier
ServiceAccount, impersonated by the admin client (`Impersonate-User`), over keep-alive TLS.

Three operations, each timed per request:

* create: the applier's apply of a stamped ConfigMap that does not exist yet;
* update: the applier's apply that changes the data of an existing managed ConfigMap;
* judged: a person's apply (the admin, field manager bench-person) of an annotation Git does not
  own on a managed ConfigMap: the guard is called, looks up the Sync, finds no owned field changed
  and allows. This is the price of the guard on every non-applier write to a managed object.

The webhook configurations' matchConditions spare the default applier the guard and spare already
stamped objects the stamps webhook, so "create" and "update" normally make no webhook call at all
(the /metrics count printed per pass shows it); "judged" always makes one.

Each is measured with the webhook configurations installed ("with") and deleted ("without"), in
the same run, alternating in rounds so that background load on the machine hits both sides alike.
After every toggle the script waits until the API server really behaves accordingly: a server-side
dry-run change by the admin (not the applier) to a managed object is refused while the guard is
installed and passes once it is gone. A sequential pass (one connection) and a concurrent pass
(several threads, one keep-alive connection each) are run.

    .venv/bin/python benchmarks/webhook_e2e.py                 # N=500 per op and mode, 8 threads
    .venv/bin/python benchmarks/webhook_e2e.py -n 200 --rounds 4 --threads 4 --keep

Output: p50/p90/p99/mean per operation and mode, the overhead ratios (with / without) for p50 and
p99, and the targets (p50 overhead <= 10 %, p99 <= 2x the baseline).
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kubectl_gitops.constants import (
    DEFAULT_APPLIER_SA,
    FIELD_MANAGER,
    SYSTEM_NAMESPACE,
)

BIN = Path(sys.executable).parent
APPLIER = f"system:serviceaccount:{SYSTEM_NAMESPACE}:{DEFAULT_APPLIER_SA}"
CONFIGS = (("validatingwebhookconfiguration", "kubectl-gitops-drift-guard"),
           ("mutatingwebhookconfiguration", "kubectl-gitops-stamps"))
SYNC = "bench"


def sh(*args: str, kubeconfig: str | None = None, input: str | None = None, check: bool = True) -> str:
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    proc = subprocess.run(list(args), capture_output=True, text=True, env=env, input=input, timeout=600,
                          check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout + proc.stderr


# ------------------------------------------------------------------ a keep-alive API client


@dataclass
class Api:
    """The admin's client certificate from the kubeconfig, impersonating the applier."""

    host: str
    port: int
    context: ssl.SSLContext
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_kubeconfig(cls, path: str, tmp: Path, impersonate: str | None) -> Api:
        cfg = yaml.safe_load(Path(path).read_text())
        cluster = cfg["clusters"][0]["cluster"]
        user = cfg["users"][0]["user"]
        ca = tmp / "ca.crt"
        cert = tmp / "client.crt"
        key = tmp / "client.key"
        ca.write_bytes(base64.b64decode(cluster["certificate-authority-data"]))
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        context = ssl.create_default_context(cafile=str(ca))
        context.load_cert_chain(str(cert), str(key))
        url = urlsplit(cluster["server"])
        headers = {"Impersonate-User": impersonate} if impersonate else {}
        return cls(url.hostname or "127.0.0.1", url.port or 443, context, headers)

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=30)


def apply_body(namespace: str, name: str, value: str) -> bytes:
    """The object exactly as a Sync sends it: stamped by the engine (ownership labels, digest, revision)."""
    from kubectl_gitops.core.plan import stamp

    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
           "data": {"value": value}}
    return json.dumps(stamp(obj, SYNC, namespace, "main@sha1:" + "0" * 40)).encode()


def judged_body(namespace: str, name: str, value: str) -> bytes:
    """A person's change to a field Git does not own: the guard is called, judges, and allows it."""
    obj = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": namespace, "annotations": {"bench.example.com/note": value}}}
    return json.dumps(obj).encode()


def timed_apply(conn: http.client.HTTPSConnection, api: Api, namespace: str, name: str, value: str,
                expect: int, *, judged: bool = False) -> float:
    manager = "bench-person" if judged else FIELD_MANAGER
    path = f"/api/v1/namespaces/{namespace}/configmaps/{name}?fieldManager={manager}&force=true"
    person = {k: v for k, v in api.headers.items() if k != "Impersonate-User"}
    headers = {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json",
               **(person if judged else api.headers)}
    body = judged_body(namespace, name, value) if judged else apply_body(namespace, name, value)
    started = time.perf_counter()
    conn.request("PATCH", path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    elapsed = time.perf_counter() - started
    if resp.status != expect:
        raise SystemExit(f"PATCH {path}: expected {expect}, got {resp.status}: {data[:300]!r}")
    return elapsed


# ------------------------------------------------------------------ the webhook on / off


@dataclass
class Toggle:
    kubeconfig: str
    namespace: str
    saved: list[dict[str, Any]] = field(default_factory=list)
    probe: str = "probe"

    def save(self) -> None:
        for kind, name in CONFIGS:
            obj = json.loads(sh("kubectl", "get", kind, name, "-o", "json", kubeconfig=self.kubeconfig))
            for key in ("resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"):
                obj["metadata"].pop(key, None)
            self.saved.append(obj)

    def off(self) -> None:
        for kind, name in CONFIGS:
            sh("kubectl", "delete", kind, name, "--ignore-not-found", kubeconfig=self.kubeconfig)
        self._wait(guarded=False)

    def on(self) -> None:
        sh("kubectl", "create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                             "items": self.saved}),
           kubeconfig=self.kubeconfig)
        self._wait(guarded=True)

    def _wait(self, guarded: bool, timeout: float = 30) -> None:
        """Until a non-applier's dry-run change to a managed object is refused (on) or passes (off)."""
        deadline = time.monotonic() + timeout
        patch = json.dumps({"data": {"value": uuid.uuid4().hex}})
        while time.monotonic() < deadline:
            out = subprocess.run(["kubectl", "-n", self.namespace, "patch", "configmap", self.probe,
                                  "--type=merge", "-p", patch, "--dry-run=server"],
                                 capture_output=True, text=True, env=dict(os.environ, KUBECONFIG=self.kubeconfig),
                                 check=False)
            if (out.returncode != 0 and "denied the request" in out.stderr) == guarded and (
                    guarded or out.returncode == 0):
                return
            time.sleep(0.2)
        raise SystemExit(f"the API server did not {'start' if guarded else 'stop'} calling the webhook in time")


@contextmanager
def webhook(toggle: Toggle, on: bool) -> Iterator[None]:
    if on:
        toggle.on()
    try:
        yield
    finally:
        if on:
            toggle.off()


# ------------------------------------------------------------------ the measurement


@dataclass
class Samples:
    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, op: str, mode: str, xs: list[float]) -> None:
        self.values.setdefault((op, mode), []).extend(xs)


def run_batch(api: Api, namespace: str, names: list[str], op: str, threads: int) -> list[float]:
    """Apply each name once (create: 201; update, judged: 200) over `threads` keep-alive connections."""
    expect = 201 if op == "create" else 200
    value = f"{op}-{uuid.uuid4().hex[:8]}"
    chunks = [names[i::threads] for i in range(threads)]
    out: list[list[float]] = [[] for _ in chunks]

    def worker(i: int) -> None:
        conn = api.connect()
        try:
            for name in chunks[i]:
                out[i].append(timed_apply(conn, api, namespace, name, value, expect, judged=op == "judged"))
        finally:
            conn.close()

    if threads == 1:
        worker(0)
    else:
        ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return [x for xs in out for x in xs]


def warm(api: Api, namespace: str, threads: int) -> None:
    """A few unmeasured requests: connections, caches (the webhook's Sync lookup) and TLS sessions."""
    names = [f"warm-{uuid.uuid4().hex[:8]}" for _ in range(max(threads, 4) * 2)]
    run_batch(api, namespace, names, "create", threads)
    run_batch(api, namespace, names, "update", threads)


def reviews_answered(toggle: Toggle) -> int:
    """The webhook's own count of admission reviews answered (its /metrics): proof it was called."""
    hook = toggle.saved[0]["webhooks"][0]["clientConfig"]
    url = urlsplit(hook["url"])
    with tempfile.NamedTemporaryFile("wb", suffix=".crt") as ca:
        ca.write(base64.b64decode(hook["caBundle"]))
        ca.flush()
        context = ssl.create_default_context(cafile=ca.name)
    conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port or 443, context=context, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("kubectl_gitops_webhook_requests_total{") and (
                'endpoint="/validate"' in line or 'endpoint="/mutate"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def measure(api: Api, toggle: Toggle, namespace: str, n: int, rounds: int, threads: int) -> Samples:
    samples = Samples()
    per_round = max(1, n // rounds)
    for r in range(rounds):
        # Alternate which side goes first so neither always follows a toggle.
        order = (True, False) if r % 2 == 0 else (False, True)
        for on in order:
            mode = "with" if on else "without"
            with webhook(toggle, on):
                warm(api, namespace, threads)
                names = [f"cm-{threads}-{mode}-{r}-{i}-{uuid.uuid4().hex[:4]}" for i in range(per_round)]
                samples.add("create", mode, run_batch(api, namespace, names, "create", threads))
                samples.add("update", mode, run_batch(api, namespace, names, "update", threads))
                samples.add("judged", mode, run_batch(api, namespace, names, "judged", threads))
    return samples


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def report(title: str, samples: Samples, seconds: dict[str, float] | None = None) -> None:
    print(f"\n{title}")
    print(f"  {'op':<7} {'mode':<8} {'n':>5} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for op in ("create", "update", "judged"):
        stats = {}
        for mode in ("without", "with"):
            xs = [x * 1000 for x in samples.values.get((op, mode), [])]
            if not xs:
                continue
            stats[mode] = (pct(xs, 0.5), pct(xs, 0.99))
            print(f"  {op:<7} {mode:<8} {len(xs):>5} {pct(xs, 0.5):>8.2f} {pct(xs, 0.9):>8.2f} "
                  f"{pct(xs, 0.99):>8.2f} {statistics.fmean(xs):>8.2f}")
        if len(stats) == 2:
            p50 = stats["with"][0] / stats["without"][0]
            p99 = stats["with"][1] / stats["without"][1]
            print(f"  {op:<7} overhead: p50 x{p50:.2f} ({(p50 - 1) * 100:+.0f} %, target <= +10 %)"
                  f" {'ok' if p50 <= 1.10 else 'MISSED'};  p99 x{p99:.2f} (target <= x2.00)"
                  f" {'ok' if p99 <= 2.0 else 'MISSED'}")


# ------------------------------------------------------------------ setup


def prepare(kubeconfig: str, namespace: str, tmp: Path) -> None:
    sh("kubectl", "create", "namespace", namespace, kubeconfig=kubeconfig)
    repo = tmp / "repo"
    (repo / "apps").mkdir(parents=True)
    (repo / "apps" / "empty.yaml").write_text("# nothing: the benchmark writes the objects itself\n")
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false"]
    sh(*git, "-C", str(repo), "init", "-q", "-b", "main")
    sh(*git, "-C", str(repo), "add", "-A")
    sh(*git, "-C", str(repo), "commit", "-q", "-m", "bench")
    sh("kubectl", "gitops", "-n", namespace, "create", "source", "s", "--url", repo.as_uri(), "--branch", "main",
       kubeconfig=kubeconfig)
    sh("kubectl", "gitops", "-n", namespace, "create", "sync", SYNC, "--source", "s", "--path", "apps",
       kubeconfig=kubeconfig)


def main() -> None:
    parser = argparse.ArgumentParser(description="Webhook overhead on applies through the real API server.")
    parser.add_argument("-n", type=int, default=500, help="requests per operation, mode and pass")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of with/without per pass")
    parser.add_argument("--threads", type=int, default=8, help="connections of the concurrent pass (0: skip)")
    parser.add_argument("--name", default="webhook-bench", help="dev cluster name (started if not running)")
    parser.add_argument("--keep", action="store_true", help="leave the dev cluster running")
    args = parser.parse_args()

    started_here = "not running" in sh("kubectl", "gitops", "dev", "status", "--name", args.name, check=False)
    sh("kubectl", "gitops", "dev", "up", "--name", args.name, "--webhook")
    kubeconfig = sh("kubectl", "gitops", "dev", "kubeconfig", "--name", args.name, "--path").strip()
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    toggle = Toggle(kubeconfig, namespace)
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            prepare(kubeconfig, namespace, tmp)
            api = Api.from_kubeconfig(kubeconfig, tmp, APPLIER)
            run_batch(api, namespace, [toggle.probe], "create", 1)
            toggle.save()
            toggle._wait(guarded=True)
            toggle.off()  # measure() turns it on around each "with" batch
            try:
                passes: list[tuple[str, Callable[[], Samples]]] = [
                    (f"sequential: 1 connection, {args.n} applies per op and mode, {args.rounds} rounds",
                     lambda: measure(api, toggle, namespace, args.n, args.rounds, 1))]
                if args.threads > 0:
                    passes.append((f"concurrent: {args.threads} connections, {args.n} applies per op and mode",
                                   lambda: measure(api, toggle, namespace, args.n, args.rounds, args.threads)))
                print(f"dev cluster {args.name!r}; applies as {APPLIER} (impersonated), server-side apply, "
                      f"keep-alive TLS; webhook configurations installed vs deleted, alternating")
                for title, fn in passes:
                    t0 = time.perf_counter()
                    answered = reviews_answered(toggle)
                    samples = fn()
                    answered = reviews_answered(toggle) - answered
                    report(f"{title} ({time.perf_counter() - t0:.0f}s)", samples)
                    print(f"  the webhook answered {answered} admission reviews during this pass "
                          "(measured applies with it, warm-up and toggle probes included)")
            finally:
                toggle.on()  # leave the cluster as it was found
    finally:
        sh("kubectl", "delete", "namespace", namespace, "--wait=false", kubeconfig=kubeconfig, check=False)
        if started_here and not args.keep:
            sh("kubectl", "gitops", "dev", "down", "--name", args.name, check=False)


if __name__ == "__main__":
    main()
