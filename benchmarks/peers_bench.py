"""Us against the real peers, same cluster, same Git repository, same run: Flux, matched kubectl, the floor.

Not a test: it prints tables and always exits 0 (a missed target is a finding). The tools:

- gitops      `kubectl gitops sync NAME` (a child process: start-up included), from the Git repository
              served over HTTP;
- kubectl     `kubectl apply --server-side -f DIR` at the API server's own version (v1.37.2, built from
              the same pinned modules as the control plane) on the same files;
- floor       benchmarks/floor.py: the same server-side applies 16 at a time and nothing else;
- flux        Flux's source-controller + kustomize-controller v1.9.6 (built from Go modules) as local
              processes, with their defaults;
- flux-tuned  a second kustomize-controller with its API client tuned (qps 1000, burst 2000,
              concurrent SSA 16); the two split the Kustomizations with Flux's own sharding label.

Each tool gets its own copy of the objects (namespaces `<tool><rep>-NN`), all in one repository
served by `git http-backend`. Scenarios, per repetition, tools in alternating order: first sync,
no-change re-sync, one drifted object, a commit changing 10 objects, a commit removing 100 (prune).
Flux's time runs from the `reconcile.fluxcd.io/requestedAt` annotation (on its GitRepository and
Kustomization) to Ready at that revision; ours is the command's wall time (fetch included). Measured
per run: wall time, CPU of the tool's processes and of the control plane, the tool's peak RSS, and
API requests by verb from the API server's own `apiserver_request_total` (object kinds apart from
bookkeeping kinds; the benchmark's own status polls subtracted).

    .venv/bin/python benchmarks/peers_bench.py --reps 3                 # 1,000 objects
    .venv/bin/python benchmarks/peers_bench.py --objects 10000 --reps 1 --tools gitops,floor,flux-tuned
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_bench as sb

from kubectl_gitops.devcluster import build, peers

TOOLS = ("gitops", "kubectl", "floor", "flux", "flux-tuned")
SCENARIOS = ("first sync", "no-change re-sync", "one drifted object", "commit: 10 changed", "commit: 100 removed")
OBJECT_RESOURCES = {"namespaces", "configmaps", "secrets", "services", "deployments"}
RECORD_RESOURCES = {"syncs", "gitsources", "gitrepositories", "kustomizations", "events", "selfsubjectreviews",
                    "buckets", "ocirepositories"}
FLUX_NS = "flux-system"
BACKEND = "/usr/lib/git-core/git-http-backend"


# ---------------------------------------------------------------- Git over HTTP (for everyone)


def serve_git(root: Path) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            return

        def _serve(self) -> None:
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            env = {**os.environ, "GIT_PROJECT_ROOT": str(root), "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path,
                   "QUERY_STRING": query, "REQUEST_METHOD": self.command,
                   "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                   "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}
            out = subprocess.run([BACKEND], input=body, env=env, capture_output=True, check=False).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode().splitlines():
                key, _, value = line.partition(":")
                if key.lower() == "status":
                    status = int(value.split()[0])
                else:
                    headers.append((key, value.strip()))
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# ---------------------------------------------------------------- API server request counts


def api_counts(env: dict[str, str]) -> dict[tuple[str, str], float]:
    """(class, verb) -> count, class = objects | record, from the API server's own metrics."""
    text = sb.sh(["kubectl", "get", "--raw", "/metrics"], env)
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
        resource, verb = labels.get("resource", ""), labels.get("verb", "")
        if labels.get("subresource") and resource in OBJECT_RESOURCES:
            continue  # controllers' status writes of the objects, not the tool's
        klass = "objects" if resource in OBJECT_RESOURCES else "record" if resource in RECORD_RESOURCES else ""
        if klass:
            out[(klass, verb)] = out.get((klass, verb), 0) + float(line.rsplit(" ", 1)[1])
    return out


def diff_counts(a: dict[tuple[str, str], float], b: dict[tuple[str, str], float],
                polls: int) -> dict[str, int]:
    out = {f"{k}:{v}": int(b[(k, v)] - a.get((k, v), 0)) for (k, v) in b if b[(k, v)] - a.get((k, v), 0) > 0}
    if polls and "record:GET" in out:
        out["record:GET"] = max(0, out["record:GET"] - polls)
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- Flux as local processes


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]

    def cpu(self) -> float:
        return sb._proc_cpu(self.popen.pid)

    def peak_rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0


def start_flux(env: dict[str, str], work: Path) -> dict[str, Proc]:
    flux = peers.ensure_flux(lambda m: print(m, file=sys.stderr, flush=True))
    sb.sh(["kubectl", "apply", "--server-side", "-f", str(flux.crds[0].parent)], env)
    sb.sh(["kubectl", "create", "namespace", FLUX_NS], env, check=False)
    fenv = {**env, "RUNTIME_NAMESPACE": FLUX_NS}
    logs = work / "flux-logs"
    logs.mkdir(exist_ok=True)
    (work / "flux-storage").mkdir(exist_ok=True)  # source-controller refuses a storage path that doesn't exist
    common = ["--enable-leader-election=false", "--log-level=error"]
    procs = {
        "source": [str(flux.source_controller), *common, f"--storage-path={work}/flux-storage",
                   "--storage-addr=127.0.0.1:19790", "--storage-adv-addr=127.0.0.1:19790",
                   "--metrics-addr=127.0.0.1:19791", "--health-addr=127.0.0.1:19792"],
        "flux": [str(flux.kustomize_controller), *common, "--watch-label-selector=sharding.fluxcd.io/key=default",
                 "--metrics-addr=127.0.0.1:19793", "--health-addr=127.0.0.1:19794"],
        "flux-tuned": [str(flux.kustomize_controller), *common, "--watch-label-selector=sharding.fluxcd.io/key=tuned",
                       "--kube-api-qps=1000", "--kube-api-burst=2000", "--concurrent-ssa=16",
                       "--metrics-addr=127.0.0.1:19795", "--health-addr=127.0.0.1:19796"],
    }
    out = {}
    for name, cmd in procs.items():
        log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
        out[name] = Proc(name, subprocess.Popen(cmd, env=fenv, stdout=log, stderr=subprocess.STDOUT))
    time.sleep(3)
    for proc in out.values():
        if proc.popen.poll() is not None:
            for other in out.values():
                other.popen.terminate()
            raise SystemExit(f"Flux {proc.name} exited at start:\n{(logs / f'{proc.name}.log').read_text()[-2000:]}")
    return out


# ---------------------------------------------------------------- one measured run


@dataclass
class Result:
    tool: str
    scenario: str
    rep: int
    seconds: float
    cpu: float
    cluster_cpu: float
    rss_mb: float
    requests: dict[str, int] = field(default_factory=dict)
    ok: bool = True
    note: str = ""


class Bench:
    def __init__(self, env: dict[str, str], work: Path, url: str, total: int, ns_count: int,
                 flux: dict[str, Proc]) -> None:
        self.env, self.work, self.url, self.total, self.ns_count, self.flux = env, work, url, total, ns_count, flux
        self.repo = work / "repo"
        self.results: list[Result] = []
        self.polls = 0
        from kubernetes import client, config
        config.load_kube_config(config_file=env["KUBECONFIG"])
        self.custom = client.CustomObjectsApi()

    # -- repository

    def prefix(self, tool: str, rep: int) -> str:
        return f"{tool.replace('flux-tuned', 'fluxt')}{rep}"

    def write(self, tools: list[str], rep: int) -> None:
        for tool in tools:
            sb.write_manifests(self.repo / self.prefix(tool, rep), self.prefix(tool, rep), self.total, self.ns_count)

    def commit(self, message: str) -> str:
        git = ["git", "-C", str(self.repo), "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
        sb.sh([*git, "add", "-A"], self.env)
        sb.sh([*git, "commit", "-q", "-m", message], self.env)
        return sb.sh([*git, "rev-parse", "HEAD"], self.env).strip()

    def change_ten(self, tool: str, rep: int, n: int) -> None:
        """Change the LOG_LEVEL of 10 ConfigMaps in the tool's copy."""
        import yaml
        d = self.repo / self.prefix(tool, rep)
        changed = 0
        for path in sorted(d.glob("*.yaml")):
            docs = list(yaml.safe_load_all(path.read_text()))
            for doc in docs:
                if doc["kind"] == "ConfigMap" and changed < 10:
                    doc["data"]["LOG_LEVEL"] = f"change-{n}"
                    changed += 1
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False))

    def remove_hundred(self, tool: str, rep: int) -> None:
        """Drop the last ConfigMaps/Secrets (not Namespaces) until 100 objects are gone."""
        import yaml
        d = self.repo / self.prefix(tool, rep)
        removed = 0
        for path in sorted(d.glob("*.yaml")):
            docs = list(yaml.safe_load_all(path.read_text()))
            keep = []
            for doc in docs:
                if removed < 100 and doc["kind"] in ("ConfigMap", "Secret"):
                    removed += 1
                    continue
                keep.append(doc)
            path.write_text(yaml.safe_dump_all(keep, sort_keys=False))

    # -- per-tool actions

    def setup(self, tool: str, rep: int) -> None:
        p = self.prefix(tool, rep)
        if tool == "gitops":
            sb.sh([sb.GITOPS, "-n", sb.SYNC_NS, "create", "source", p, "--url", f"{self.url}/repo",
                   "--branch", "main", "--insecure"], self.env)
            sb.sh([sb.GITOPS, "-n", sb.SYNC_NS, "create", "sync", p, "--source", p, "--path", p, "--prune"], self.env)

    def run(self, tool: str, rep: int, revision: str, first: bool) -> tuple[float, float, float, bool, str]:
        """Do the tool's reconcile; return seconds, own CPU, peak RSS MB, ok, note."""
        p = self.prefix(tool, rep)
        if tool == "gitops":
            r = sb.run_gitops_sync(p, self.env)
            return r.seconds, r.cpu, r.rss_mb, r.rc == 0, ""
        if tool == "kubectl":
            r = sb.timed(["kubectl", "apply", "-f", str(self.repo / p), "--server-side",
                          "--field-manager=bench-kubectl",
                          "--force-conflicts"], self.env)
            if r.rc != 0:
                print(f"  ! kubectl: {sb._tail(r.out)}", file=sys.stderr)
            return r.seconds, r.cpu, r.rss_mb, r.rc == 0, ""
        if tool == "floor":
            r = sb.timed([sys.executable, str(Path(__file__).parent / "floor.py"), str(self.repo / p),
                          "--kubeconfig", self.env["KUBECONFIG"]], self.env)
            return r.seconds, r.cpu, r.rss_mb, r.rc == 0, "no prune" if r.rc == 0 else sb._tail(r.out)
        return self.run_flux(tool, rep, revision, first)

    def run_flux(self, tool: str, rep: int, revision: str, first: bool) -> tuple[float, float, float, bool, str]:
        p = self.prefix(tool, rep)
        procs = [self.flux["source"], self.flux[tool]]
        cpu0 = sum(x.cpu() for x in procs)
        token = str(time.time_ns())
        start = time.perf_counter()
        if first:
            self.create_flux(tool, p, token)
        else:
            for plural in ("gitrepositories", "kustomizations"):
                group, version = ("source.toolkit.fluxcd.io", "v1") if plural == "gitrepositories" else \
                    ("kustomize.toolkit.fluxcd.io", "v1")
                self.custom.patch_namespaced_custom_object(
                    group, version, FLUX_NS, plural, p,
                    {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}})
        ok, note = self.wait_flux(p, revision, token, timeout=900)
        seconds = time.perf_counter() - start
        return seconds, sum(x.cpu() for x in procs) - cpu0, sum(x.peak_rss_mb() for x in procs), ok, note

    def create_flux(self, tool: str, p: str, token: str) -> None:
        shard = "tuned" if tool == "flux-tuned" else "default"
        meta = {"name": p, "namespace": FLUX_NS, "labels": {"sharding.fluxcd.io/key": shard},
                "annotations": {"reconcile.fluxcd.io/requestedAt": token}}
        self.custom.create_namespaced_custom_object("source.toolkit.fluxcd.io", "v1", FLUX_NS, "gitrepositories", {
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "metadata": meta,
            "spec": {"url": f"{self.url}/repo", "ref": {"branch": "main"}, "interval": "1h", "timeout": "5m"}})
        self.custom.create_namespaced_custom_object("kustomize.toolkit.fluxcd.io", "v1", FLUX_NS, "kustomizations", {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "metadata": meta,
            "spec": {"sourceRef": {"kind": "GitRepository", "name": p}, "path": f"./{p}", "prune": True,
                     "interval": "1h", "timeout": "10m", "wait": False}})

    def wait_flux(self, p: str, revision: str, token: str, timeout: float) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self.polls += 1
            obj = self.custom.get_namespaced_custom_object("kustomize.toolkit.fluxcd.io", "v1", FLUX_NS,
                                                           "kustomizations", p)
            st = obj.get("status", {})
            ready = next((c for c in st.get("conditions", []) if c.get("type") == "Ready"), {})
            last = f"{ready.get('reason')}: {ready.get('message', '')[:200]}"
            if (st.get("lastAppliedRevision", "").endswith(revision) and ready.get("status") == "True"
                    and st.get("lastHandledReconcileAt", token) == token):
                return True, ""
            time.sleep(0.1)
        return False, f"timeout: {last}"

    # -- scenarios

    def measure(self, tool: str, rep: int, scenario: str, revision: str, first: bool = False,
                check: Callable[[], str] | None = None) -> None:
        # The floor has no Git and kubectl no inventory: neither takes part in the commit that prunes, and
        # the floor (which has no notion of a change) sits out both commits.
        skip = (tool == "floor" and scenario.startswith("commit")) or (tool == "kubectl" and "removed" in scenario)
        if not skip:
            sb.settle(self.env)
            cluster0 = {pid: sb._proc_cpu(pid) for pid in sb._cluster_pids()}
            counts0 = api_counts(self.env)
            polls0 = self.polls
            seconds, cpu, rss, ok, note = self.run(tool, rep, revision, first)
            cluster = sum(sb._proc_cpu(pid) - c for pid, c in cluster0.items())
            requests = diff_counts(counts0, api_counts(self.env), self.polls - polls0)
            problem = check() if (check and ok) else ""
            res = Result(tool, scenario, rep, seconds, cpu, cluster, rss, requests, ok and not problem,
                         note or problem)
            self.results.append(res)
            print(f"  {tool:10s} {scenario:20s} rep {rep}: {seconds:7.2f}s cpu {cpu:5.1f}s "
                  f"cluster {cluster:5.1f}s rss {rss:5.0f}MB {'ok' if res.ok else 'FAILED ' + res.note}",
                  file=sys.stderr, flush=True)


def run_rep(bench: Bench, tools: list[str], rep: int) -> None:
    order = tools if rep % 2 else list(reversed(tools))
    print(f"== repetition {rep}: {', '.join(order)}", file=sys.stderr)
    bench.write(order, rep)
    revision = bench.commit(f"rep {rep}: {bench.total} objects per tool")
    for tool in order:
        bench.setup(tool, rep)
    for tool in order:
        bench.measure(tool, rep, "first sync", revision, first=True)
    for tool in order:
        bench.measure(tool, rep, "no-change re-sync", revision)
    for tool in order:
        ns = f"{bench.prefix(tool, rep)}-{bench.ns_count // 2:02d}"
        sb.drift(bench.env, ns, "app-00000")
        bench.measure(tool, rep, "one drifted object", revision,
                      check=lambda ns=ns: "" if sb.drift_value(bench.env, ns, "app-00000") == "info"
                      else "drift not corrected")
    for tool in order:
        bench.change_ten(tool, rep, rep)
    revision = bench.commit(f"rep {rep}: 10 objects changed")
    for tool in order:
        bench.measure(tool, rep, "commit: 10 changed", revision)
    for tool in order:
        bench.remove_hundred(tool, rep)
    revision = bench.commit(f"rep {rep}: 100 objects removed")
    for tool in order:
        bench.measure(tool, rep, "commit: 100 removed", revision)


# ---------------------------------------------------------------- report


def summarise(results: list[Result], tools: list[str]) -> str:
    lines = ["| scenario | tool | median s (min-max) | ratio to gitops | CPU s tool/cluster | peak RSS MB | "
             "API requests (median run, by verb) | ok |", "|---|---|---|---|---|---|---|---|"]
    for scenario in SCENARIOS:
        ours = [r.seconds for r in results if r.tool == "gitops" and r.scenario == scenario]
        base = statistics.median(ours) if ours else float("nan")
        for tool in tools:
            rs = sorted((r for r in results if r.tool == tool and r.scenario == scenario), key=lambda r: r.seconds)
            if not rs:
                continue
            mid = rs[len(rs) // 2]
            med = statistics.median(r.seconds for r in rs)
            ratio = base / med if tool != "gitops" else 1.0
            reqs = ", ".join(f"{k}={v}" for k, v in mid.requests.items())
            lines.append(f"| {scenario} | {tool} | {med:.2f} ({rs[0].seconds:.2f}-{rs[-1].seconds:.2f}) | "
                         f"gitops/{tool} = {ratio:.2f}x | {statistics.median(r.cpu for r in rs):.1f}/"
                         f"{statistics.median(r.cluster_cpu for r in rs):.1f} | "
                         f"{max(r.rss_mb for r in rs):.0f} | {reqs} | "
                         f"{'yes' if all(r.ok for r in rs) else 'NO: ' + '; '.join(r.note for r in rs if not r.ok)} |")
    return "\n".join(lines)


def versions(env: dict[str, str]) -> str:
    kubectl = sb.sh(["kubectl", "version", "--client", "-o", "json"], env)
    return (f"kubectl {json.loads(kubectl)['clientVersion']['gitVersion']}, Flux source/kustomize-controller "
            f"{peers.FLUX_VERSION}, {sb.sh([sb.GITOPS, '--version'], env).strip()}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--cluster", default="peers")
    parser.add_argument("--json", help="also write every run to this file")
    parser.add_argument("--down", action="store_true")
    args = parser.parse_args(argv)
    tools = [t for t in args.tools.split(",") if t]
    kubectl = build.ensure_kubectl(lambda m: print(m, file=sys.stderr, flush=True))
    os.environ["PATH"] = f"{kubectl.parent}{os.pathsep}{os.environ['PATH']}"
    env = sb.start_cluster(args.cluster)
    work = Path(tempfile.mkdtemp(prefix="peers-bench-"))
    repo = work / "repo"
    sb.sh(["git", "init", "-q", "-b", "main", str(repo)], env)
    server, url = serve_git(work)
    flux = start_flux(env, work) if any(t.startswith("flux") for t in tools) else {}
    bench = Bench(env, work, url, args.objects, args.namespaces, flux)
    try:
        print(versions(env), file=sys.stderr)
        for rep in range(1, args.reps + 1):
            run_rep(bench, tools, rep)
        print(f"\n{args.objects} objects, {args.reps} repetitions; {versions(env)}\n")
        print(summarise(bench.results, tools))
        if args.json:
            Path(args.json).write_text(json.dumps([r.__dict__ for r in bench.results], indent=1))
    finally:
        for proc in flux.values():
            proc.popen.terminate()
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
        if args.down:
            sb.sh([sb.GITOPS, "dev", "down", "--name", args.cluster], env, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
