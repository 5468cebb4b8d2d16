"""Does the webhook stay small and fast in a big cluster? The same load, before and after 1,000 CRDs
and 10,000 managed objects.

Not a test: it prints numbers and never fails on time. Some drift-prevention webhooks load the
cluster's OpenAPI schema to judge requests and run out of memory in clusters with many CRDs; ours
judges from managedFields and the declared-fields record and keeps only Syncs, Tenants and
TrustPolicies in memory. This shows it: it starts the served webhook with its production lookups
against a dev control plane (benchmarks/webhook_load.py's server and driver), drives `--repeats`
runs of the review mix, then creates `--crds` CustomResourceDefinitions (each with a real
structural schema) and `--objects` managed ConfigMaps (applied as the applier, stamped with a
Sync's labels and the declared-fields record, spread over 20 namespaces), and drives the same runs
again. Reported: reviews/s and p50/p99 per phase and their ratio (target: within 10 %), and the
RSS of the webhook's processes (gunicorn arbiter and workers, summed; target at most 200 MB)
after each phase, with the API server's own RSS for scale.

    .venv/bin/python benchmarks/webhook_scale.py                     # 1,000 CRDs, 10,000 objects
    .venv/bin/python benchmarks/webhook_scale.py --crds 100 --objects 1000 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import webhook_load as wl

from kubectl_gitops.constants import ANNOTATION_FIELDS

NAMESPACES = 20


def tree_rss_mb(root: int) -> float:
    """RSS of `root` and its descendants, summed (MB)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(wl._stat_fields(int(entry))[1])
            except (OSError, ValueError):
                continue
    wanted = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    return sum(_rss_kb(pid) for pid in wanted) / 1024


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def apiserver_rss_mb(kubeconfig: str) -> float:
    home = str(Path(kubeconfig).parent)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if b"kube-apiserver" in cmd.split(b"\0")[0] and home.encode() in cmd:
                return _rss_kb(int(entry)) / 1024
    return float("nan")


def crd(i: int) -> dict[str, Any]:
    plural = f"widgets{i:04d}"
    schema = {"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "size": {"type": "integer"}, "color": {"type": "string", "enum": ["red", "green", "blue"]},
            "replicas": {"type": "integer", "minimum": 0},
            "template": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.scale.bench.example"},
            "spec": {"group": "scale.bench.example", "scope": "Namespaced",
                     "names": {"plural": plural, "singular": f"widget{i:04d}", "kind": f"Widget{i:04d}"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema},
                                   "subresources": {"status": {}}}]}}


def managed_configmap(i: int) -> dict[str, Any]:
    ns = f"scale-{i % NAMESPACES:02d}"
    body = json.loads(wl.body_of(wl.MIX[0][1]))["request"]["object"]  # a stamped object from the mix
    labels = {k: v for k, v in (body["metadata"].get("labels") or {}).items() if k.startswith("kubectl-gitops")}
    data = {"LOG_LEVEL": "info", "index": str(i), "config.yaml": f"server:\n  port: 8080\n  name: cm-{i}\n"}
    fields = json.dumps({"f:data": {f"f:{k}": {} for k in data}}, separators=(",", ":"))
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"cm-{i:05d}", "namespace": ns, "labels": labels,
                         "annotations": {ANNOTATION_FIELDS: fields}}, "data": data}


def seed(kubeconfig: str, crds: int, objects: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import floor

    started = time.monotonic()
    http, host, headers = floor.pool(kubeconfig, 16)

    def apply(path: str, obj: dict[str, Any]) -> None:
        resp = http.request("PATCH", f"{host}{path}?fieldManager=kubectl-gitops&force=true",
                            body=json.dumps(obj), headers=headers)
        if resp.status >= 300:
            raise SystemExit(f"seeding {path}: HTTP {resp.status}: {resp.data[:300]!r}")

    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda i: apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                                    f"widgets{i:04d}.scale.bench.example", crd(i)), range(crds)))
    print(f"  {crds} CRDs created in {time.monotonic() - started:.0f}s; waiting for Established", file=sys.stderr)
    wl.gitops_cli("kubectl", "wait", "--for=condition=Established", "crd", "--all",
                  "--timeout=900s", kubeconfig=kubeconfig, check=False)
    for n in range(NAMESPACES):
        apply(f"/api/v1/namespaces/scale-{n:02d}", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": f"scale-{n:02d}"}})
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda i: apply(f"/api/v1/namespaces/scale-{i % NAMESPACES:02d}/configmaps/cm-{i:05d}",
                                    managed_configmap(i)), range(objects)))
    print(f"  seeded in {time.monotonic() - started:.0f}s", file=sys.stderr)


def phase(pool: Any, jobs: list[Any], server_pid: int, repeats: int, label: str,
          kubeconfig: str) -> tuple[list[wl.RunResult], float]:
    runs = []
    for n in range(repeats):
        run = wl.one_run(pool, jobs, server_pid)
        wl.report(run, f"{label} run {n + 1}")
        runs.append(run)
    rss = tree_rss_mb(server_pid)
    print(f"  {label}: webhook RSS {rss:.0f} MB (all processes), API server RSS "
          f"{apiserver_rss_mb(kubeconfig):.0f} MB")
    return runs, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crds", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--requests", type=int, default=250)
    parser.add_argument("--cluster", default="webhook-scale")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    from kubectl_gitops.devcluster.build import ensure_kubectl

    # kubectl at the server's version: a skewed one re-reads the (here huge) OpenAPI document per call.
    kubectl = ensure_kubectl(lambda m: print(m, file=sys.stderr, flush=True))
    os.environ["PATH"] = f"{kubectl.parent}{os.pathsep}{os.environ['PATH']}"
    kubeconfig = wl.prepare_cluster(args.cluster)
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = wl.self_signed(tmp)
        client_ca, client_cert, client_key = wl.client_pki(tmp)
        client = (client_cert, client_key)
        port = wl.free_port()
        server = multiprocessing.Process(target=wl.run_server, args=(cert, key, port, 2, 4, kubeconfig, client_ca))
        server.start()
        try:
            wl.wait_ready(port, wl.client_context(cert, client))
            assert server.pid is not None
            jobs = [(cert, port, args.connections, args.requests, n, client) for n in range(args.processes)]
            with multiprocessing.Pool(args.processes) as pool:
                pool.map(wl.drive, [(cert, port, args.connections, 5, n, client) for n in range(args.processes)])
                small, rss_small = phase(pool, jobs, server.pid, args.repeats, "small cluster", kubeconfig)
                seed(kubeconfig, args.crds, args.objects)
                big, rss_big = phase(pool, jobs, server.pid, args.repeats,
                                     f"{args.crds} CRDs + {args.objects} objects", kubeconfig)
        finally:
            if server.pid is not None:
                os.kill(server.pid, signal.SIGTERM)
            server.join(15)
            if not args.keep:
                wl.gitops_cli("kubectl-gitops", "dev", "down", "--name", args.cluster, check=False)

    def med(runs: list[wl.RunResult], f: Any) -> float:
        return float(statistics.median(f(r) for r in runs))

    rate_s, rate_b = med(small, lambda r: r.total / r.elapsed), med(big, lambda r: r.total / r.elapsed)
    p99_s, p99_b = med(small, lambda r: r.p99), med(big, lambda r: r.p99)
    print(f"\nsummary (median of {args.repeats} runs each): reviews/s {rate_s:.0f} -> {rate_b:.0f} "
          f"({rate_b / rate_s:.2f}x; target >= 0.90x: {'yes' if rate_b >= 0.9 * rate_s else 'NO'}); "
          f"p99 ms {p99_s:.2f} -> {p99_b:.2f} ({p99_b / p99_s:.2f}x; target <= 1.10x: "
          f"{'yes' if p99_b <= 1.1 * p99_s else 'NO'}); webhook RSS MB {rss_small:.0f} -> {rss_big:.0f} "
          f"(target <= 200: {'yes' if rss_big <= 200 else 'NO'})")


if __name__ == "__main__":
    main()
