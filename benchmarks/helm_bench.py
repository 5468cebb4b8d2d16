"""Time a chart Sync against `helm template | kubectl apply --server-side`, same chart, same cluster, same run.

Not a test: it prints a table and always exits 0 (a missed target is a finding, not a failure).
It starts (or reuses) a private dev control plane, writes a chart of N objects (ConfigMaps,
Secrets, headless Services and 0-replica Deployments in equal parts), packages it, serves it from
a local HTTP chart repository and measures, back to back, per round:

- install             `kubectl gitops sync` of a Sync with spec.chart into an empty namespace
                      vs  `helm template ... | kubectl apply --server-side -f -` into another
- no-change re-sync   the same sync again (target: at most 0.25x of the kubectl install), end to end
                      (a fresh `kubectl gitops` process each time, as a user runs it) and the
                      reconcile alone (the Sync's durationSeconds: no interpreter start-up), and
                      for context a plain-YAML Sync of the same rendered objects from a Git repository

kubectl is the one at the API server's version (`ensure_kubectl()`); both sides render with the
same pinned helm. Targets (issue 15): install at most 1.5x, no-change at most 0.25x.

    .venv/bin/python benchmarks/helm_bench.py [--objects 200] [--rounds 3] [--cluster helmbench] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kubectl_gitops.adapters.helm_binary import ensure_helm  # noqa: E402
from kubectl_gitops.devcluster.build import ensure_kubectl  # noqa: E402
from tests.e2e.chartrepo import Chart, HttpChartRepo  # noqa: E402
from tests.e2e.gitrepo import GitRepo  # noqa: E402

GITOPS = str(ROOT / ".venv" / "bin" / "kubectl-gitops")

TEMPLATE = """\
{{- range $i := until (int .Values.each) }}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: "cm-{{ $i }}", labels: {app: bench}}
data: {index: "{{ $i }}", greeting: {{ $.Values.greeting | quote }}}
---
apiVersion: v1
kind: Secret
metadata: {name: "secret-{{ $i }}"}
stringData: {token: "t-{{ $i }}"}
---
apiVersion: v1
kind: Service
metadata: {name: "svc-{{ $i }}"}
spec:
  clusterIP: None
  selector: {app: "app-{{ $i }}"}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: "app-{{ $i }}"}
spec:
  replicas: 0
  selector: {matchLabels: {app: "app-{{ $i }}"}}
  template:
    metadata: {labels: {app: "app-{{ $i }}"}}
    spec:
      containers: [{name: app, image: "registry.example/app:{{ $.Chart.Version }}"}]
{{- end }}
"""


def sh(args: list[str], kubeconfig: str, stdin: str | None = None, check: bool = True) -> str:
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"}
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    proc = subprocess.run(args, input=stdin, capture_output=True, text=True, env=env, check=False, timeout=900)
    if check and proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


@dataclass
class Figures:
    installs: list[tuple[float, float]] = field(default_factory=list)  # (ours, helm|kubectl)
    nochange: list[float] = field(default_factory=list)
    engine: list[float] = field(default_factory=list)  # the reconcile alone (the Sync's durationSeconds)
    kubectl_again: list[float] = field(default_factory=list)
    yaml_nochange: list[float] = field(default_factory=list)  # the same objects as plain YAML from Git


def yaml_sync(n: int, rendered: str, kubeconfig: str, figures: Figures, root: Path) -> None:
    """The same objects as plain YAML in a Git repository: what a no-change re-sync costs without a chart."""
    ns = f"hb-yaml-{n}"
    sh(["kubectl", "create", "namespace", ns], kubeconfig)
    repo = GitRepo(root / f"git-{n}")
    repo.write("app/objects.yaml", rendered).commit("objects")
    sh([GITOPS, "-n", ns, "create", "source", "src", "--url", repo.url, "--branch", "main"], kubeconfig)
    sh([GITOPS, "-n", ns, "create", "sync", "bench", "--source", "src", "--path", "app", "--prune"], kubeconfig)
    sync_json(ns, kubeconfig)
    for _ in range(3):
        figures.yaml_nochange.append(sync_json(ns, kubeconfig)[0])


def sync_json(ns: str, kubeconfig: str) -> tuple[float, float]:
    """(wall seconds of a fresh `kubectl gitops sync` process, the reconcile's own durationSeconds)."""
    start = time.perf_counter()
    out = sh([GITOPS, "-n", ns, "sync", "bench", "-o", "json"], kubeconfig)
    return time.perf_counter() - start, float(json.loads(out)["durationSeconds"])


def one_round(n: int, repo: HttpChartRepo, archive: Path, tools: tuple[str, str], kubeconfig: str,
              figures: Figures, root: Path) -> None:
    kubectl, helm = tools
    ours, theirs = f"hb-gitops-{n}", f"hb-kubectl-{n}"
    for ns in (ours, theirs):
        sh([kubectl, "create", "namespace", ns], kubeconfig)
    sh([GITOPS, "-n", ours, "create", "source", "helm", "charts", "--url", repo.url], kubeconfig)
    sync = {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "Sync",
            "metadata": {"name": "bench", "namespace": ours},
            "spec": {"sourceRef": {"kind": "HelmRepository", "name": "charts"}, "prune": True,
                     "chart": {"name": "bench", "version": "1.x"}}}
    sh([kubectl, "apply", "--server-side", "-f", "-"], kubeconfig, yaml.safe_dump(sync))

    def baseline() -> None:
        rendered = sh([helm, "template", "bench", str(archive), "--namespace", theirs], kubeconfig)
        sh([kubectl, "apply", "--server-side", "-n", theirs, "-f", "-"], kubeconfig, rendered)

    t_kubectl = timed(baseline)
    t_ours, _ = sync_json(ours, kubeconfig)
    figures.installs.append((t_ours, t_kubectl))
    for _ in range(3):
        wall, engine = sync_json(ours, kubeconfig)
        figures.nochange.append(wall)
        figures.engine.append(engine)
        figures.kubectl_again.append(timed(baseline))
    count = len(sh([kubectl, "-n", ours, "get", "cm,secret,svc,deploy", "-l", "kubectl-gitops.dev/sync=bench",
                    "-o", "name"], kubeconfig).split())
    print(f"round {n}: install ours {t_ours:.2f}s ({count} objects) vs helm|kubectl {t_kubectl:.2f}s", flush=True)
    yaml_sync(n, sh([helm, "template", "bench", str(archive)], kubeconfig), kubeconfig, figures, root)


def report(objects: int, f: Figures) -> None:
    ours = statistics.median(t for t, _ in f.installs)
    base = statistics.median(b for _, b in f.installs)
    again, engine = statistics.median(f.nochange), statistics.median(f.engine)
    print(f"\n{objects}-object chart, median of {len(f.installs)} installs / {len(f.nochange)} re-syncs")
    print(f"{'':26}{'kubectl-gitops':>16}{'helm|kubectl':>14}{'ratio':>8}{'target':>8}")
    print(f"{'install':26}{ours:>15.2f}s{base:>13.2f}s{ours / base:>8.2f}{'1.50':>8}")
    print(f"{'no-change re-sync':26}{again:>15.2f}s{base:>13.2f}s{again / base:>8.2f}{'0.25':>8}")
    print(f"{'  of which the reconcile':26}{engine:>15.2f}s{base:>13.2f}s{engine / base:>8.2f}")
    plain = statistics.median(f.yaml_nochange)
    print(f"{'(same YAML from Git)':26}{plain:>15.2f}s{base:>13.2f}s{plain / base:>8.2f}")
    print(f"{'(kubectl re-apply)':26}{'':>16}{statistics.median(f.kubectl_again):>13.2f}s")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cluster", default="helmbench")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running")
    args = parser.parse_args()
    tools = (str(ensure_kubectl(print)), str(ensure_helm(print)))
    sh([GITOPS, "dev", "up", "--name", args.cluster], "")
    kubeconfig = sh([GITOPS, "dev", "kubeconfig", "--name", args.cluster, "--path"], "").strip()
    sh([GITOPS, "install", "--no-webhook"], kubeconfig)
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="helm-bench-") as tmp:
        repo = HttpChartRepo(Path(tmp) / "repo").start()
        try:
            chart = Chart("bench", "1.0.0", {"objects.yaml": TEMPLATE}, {"each": args.objects // 4, "greeting": "hi"})
            archive = repo.publish(chart)
            for n in range(args.rounds):
                one_round(n, repo, archive, tools, kubeconfig, figures, Path(tmp))
        finally:
            repo.stop()
            if not args.keep:
                sh([GITOPS, "dev", "down", "--name", args.cluster], "", check=False)
    report(args.objects, figures)


if __name__ == "__main__":
    main()
