"""`kubectl gitops dev up|down|status|kubeconfig`: a real, throwaway control plane on loopback.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake nodes, so
Deployments really become Available without a kubelet), all real binaries built by
`build.py`. Everything lives in one state directory per cluster name; `up` either finds a
healthy cluster there or starts a new one, and if any step fails it stops what it started,
so a failed `up` never leaves half a control plane behind.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from kubectl_gitops.adapters import pki
from kubectl_gitops.core.errors import DevClusterError, GitOpsError
from kubectl_gitops.devcluster import build, processes, versions
from kubectl_gitops.devcluster.processes import Proc

if TYPE_CHECKING:
    from kubectl_gitops.adapters.kube import Kube

Progress = Callable[[str], None]
SERVICE_RANGE = "10.0.0.0/24"
POD_CIDR = "10.244.0.0/16"
FAKE_NODES = 2
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
WEBHOOK_CLIENT_NAME = "kube-apiserver-webhook-client"
"""CN of the client certificate the API server presents to the local webhook (its own CA, not the
cluster CA: a user's certificate from `dev kubeconfig` must not pass as the API server)."""


def state_root() -> Path:
    explicit = os.environ.get("KUBECTL_GITOPS_DEV_HOME")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kubectl-gitops" / "dev"


@dataclass
class Cluster:
    """A dev cluster's files and recorded processes."""

    name: str
    home: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    started: float = 0.0

    @property
    def pki(self) -> Path:
        return self.home / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.home / "admin.kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def context(self) -> str:
        return f"kubectl-gitops-{self.name}"

    def save(self) -> None:
        data = {"name": self.name, "ports": self.ports, "started": self.started,
                "kube_version": versions.KUBE_VERSION, "procs": [p.to_json() for p in self.procs]}
        tmp = self.home / "state.json.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.home / "state.json")


def load(name: str = "default") -> Cluster | None:
    home = state_root() / name
    try:
        data = json.loads((home / "state.json").read_text())
    except (OSError, ValueError):
        return None
    procs = [Proc.from_json(p) for p in data.get("procs", [])]
    return Cluster(name, home, {k: int(v) for k, v in data.get("ports", {}).items()}, procs,
                   float(data.get("started", 0.0)))


# ---------------------------------------------------------------- status

@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int
    running: bool
    log: str


@dataclass(frozen=True)
class Status:
    name: str
    home: str
    server: str
    kubeconfig: str
    ready: bool
    components: tuple[ComponentStatus, ...]
    kube_version: str = versions.KUBE_VERSION

    @property
    def exists(self) -> bool:
        return bool(self.components)

    @property
    def healthy(self) -> bool:
        return self.ready and all(c.running for c in self.components)


def status(name: str = "default") -> Status:
    cluster = load(name)
    if cluster is None:
        return Status(name, str(state_root() / name), "", "", False, ())
    comps = tuple(ComponentStatus(p.name, p.pid, processes.alive(p), p.log) for p in cluster.procs)
    ready = "apiserver" in cluster.ports and _readyz(cluster, timeout=2.0)
    return Status(name, str(cluster.home), cluster.server if cluster.ports else "",
                  str(cluster.kubeconfig), ready, comps)


# ---------------------------------------------------------------- up / down

@dataclass(frozen=True)
class UpResult:
    status: Status
    reused: bool
    seconds: float
    built: bool


def up(name: str = "default", progress: Progress = print, *, port: int | None = None,
       nodes: int = FAKE_NODES) -> UpResult:
    """Start the dev cluster `name`, or find it already healthy (idempotent)."""
    t0 = time.monotonic()
    current = status(name)
    if current.healthy:
        return UpResult(current, True, time.monotonic() - t0, False)
    if current.exists:
        dead = [c.name for c in current.components if not c.running] or ["apiserver not ready"]
        healed = _heal(name, progress, dead)
        if healed is not None:
            return UpResult(healed, False, time.monotonic() - t0, False)
        progress(f"found a stale dev control plane in {current.home} ({', '.join(dead)} down) that could "
                 "not be restarted in place: stopping what is left and starting afresh")
        down(name, progress=lambda _m: None)
    elif (state_root() / name).exists():
        progress(f"removing a stale data directory {state_root() / name} (no live processes)")
        shutil.rmtree(state_root() / name)
    was_built = build.is_built(build.binaries())
    bins = build.ensure_built(progress)
    cluster = Cluster(name, state_root() / name, started=time.time())
    try:
        _start_all(cluster, bins, progress, port, nodes)
    except BaseException:
        processes.stop(cluster.procs, timeout=5)
        cluster.save()
        raise
    return UpResult(status(name), False, time.monotonic() - t0, not was_built)


def _heal(name: str, progress: Progress, dead: list[str]) -> Status | None:
    """Restart only the dead components with their recorded flags, keeping etcd's data.

    Returns the healthy status, or None when healing is not possible (then `up` starts afresh)."""
    cluster = load(name)
    if cluster is None or not (cluster.home / "etcd").is_dir() or not all(p.args for p in cluster.procs):
        return None
    if not all(Path(p.args[0]).is_file() for p in cluster.procs):
        return None  # a binary moved (another version or venv): start afresh instead
    progress(f"dev control plane {name!r}: {', '.join(dead)} down; restarting in place (data kept)")
    try:
        for i, proc in enumerate(cluster.procs):
            if processes.alive(proc):
                continue
            cluster.procs[i] = processes.start(proc.name, list(proc.args), Path(proc.log))
            cluster.save()
            if proc.name == "etcd":
                _wait(cluster, "etcd", lambda: _http_ok(f"http://127.0.0.1:{cluster.ports['etcd']}/health"), 30)
            if proc.name == "kube-apiserver":
                _wait(cluster, "kube-apiserver", lambda: _readyz(cluster, 2.0), 90)
        _wait(cluster, "kube-apiserver", lambda: _readyz(cluster, 2.0), 90)
    except DevClusterError as err:
        progress(f"restart in place failed: {err}")
        return None
    time.sleep(0.3)
    healthy = status(name)
    return healthy if healthy.healthy else None


def down(name: str = "default", progress: Progress = print, *, keep_data: bool = False) -> list[str]:
    """Stop every process of the cluster and remove its state directory. Returns what was stopped."""
    cluster = load(name)
    home = state_root() / name
    stopped: list[str] = []
    if cluster is not None:
        stopped = [p.name for p in cluster.procs if processes.alive(p)]
        # Clients first, then the API server (it drains its watches quickly once they are gone),
        # then etcd: stopping all at once makes kube-apiserver wait out its clients' connections.
        tiers = [[p for p in cluster.procs if p.name not in ("kube-apiserver", "etcd")],
                 [p for p in cluster.procs if p.name == "kube-apiserver"],
                 [p for p in cluster.procs if p.name == "etcd"]]
        killed = [name for tier in tiers for name in processes.stop(tier)]
        if killed:
            progress(f"killed after timeout: {', '.join(killed)}")
        leftovers = [p.name for p in cluster.procs if processes.alive(p)]
        if leftovers:
            raise DevClusterError(f"could not stop {', '.join(leftovers)}; see {home}/state.json for pids")
    if home.exists() and not keep_data:
        shutil.rmtree(home, ignore_errors=True)
    return stopped


def _start_all(cluster: Cluster, bins: build.Binaries, progress: Progress, port: int | None,
               nodes: int) -> None:
    cluster.home.mkdir(parents=True, exist_ok=True)
    cluster.ports = _allocate_ports(port)
    cluster.save()
    _write_pki(cluster)
    progress(f"starting etcd on 127.0.0.1:{cluster.ports['etcd']}")
    _launch(cluster, "etcd", _etcd_args(cluster, bins))
    _wait(cluster, "etcd", lambda: _http_ok(f"http://127.0.0.1:{cluster.ports['etcd']}/health"), 30)
    progress(f"starting kube-apiserver {versions.KUBE_VERSION} on {cluster.server}")
    _launch(cluster, "kube-apiserver", _apiserver_args(cluster, bins))
    _write_kubeconfig(cluster)
    kube = _kube(cluster)
    _wait(cluster, "kube-apiserver", lambda: _readyz(cluster, 2.0, kube), 90)
    progress("starting kube-controller-manager, kube-scheduler and kwok")
    _launch(cluster, "kube-controller-manager", _kcm_args(cluster, bins))
    _launch(cluster, "kube-scheduler", _scheduler_args(cluster, bins))
    _launch(cluster, "kwok", _kwok_args(cluster, bins))
    _create_nodes(cluster, nodes)
    time.sleep(0.3)
    for proc in cluster.procs:
        if not processes.alive(proc):
            raise DevClusterError(f"{proc.name} exited right after start; its log ({proc.log}) ends:\n"
                                  f"{processes.log_tail(proc.log)}")


def _allocate_ports(apiserver: int | None) -> dict[str, int]:
    if apiserver is not None and not _port_free(apiserver):
        raise DevClusterError(f"port {apiserver} on 127.0.0.1 is in use by another process: "
                              "choose another with --port, or omit --port to pick a free one")
    names = ["etcd", "etcd-peer", "kcm", "scheduler", "kwok", "webhook"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    ports["apiserver"] = apiserver if apiserver is not None else _free_ports(1)[0]
    return ports


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _launch(cluster: Cluster, name: str, args: list[str]) -> None:
    cluster.procs.append(processes.start(name, args, cluster.home / "logs" / f"{name}.log"))
    cluster.save()


def _wait(cluster: Cluster, name: str, ready: Callable[[], bool], timeout: float) -> None:
    proc = next(p for p in cluster.procs if p.name == name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not processes.alive(proc):
            raise DevClusterError(_exit_message(proc))
        time.sleep(0.2)
    raise DevClusterError(f"{name} did not become ready within {timeout:.0f}s; its log ({proc.log}) ends:\n"
                          f"{processes.log_tail(proc.log)}")


def _exit_message(proc: Proc) -> str:
    tail = processes.log_tail(proc.log)
    hint = ""
    if "address already in use" in tail:
        hint = "\na port it needs is taken: run `kubectl gitops dev up` again (free ports are picked anew)"
    return f"{proc.name} exited during start; its log ({proc.log}) ends:\n{tail}{hint}"


# ---------------------------------------------------------------- files

def _write_pki(cluster: Cluster) -> None:
    d = cluster.pki
    d.mkdir(parents=True, exist_ok=True)
    ca = pki.make_ca(f"kubectl-gitops dev CA ({cluster.name})")
    ca.write(d / "ca.crt", d / "ca.key")
    pki.issue(ca, "kube-apiserver", hosts=("127.0.0.1", "localhost", "10.0.0.1", "kubernetes",
                                            "kubernetes.default", "kubernetes.default.svc"),
              server=True).write(d / "apiserver.crt", d / "apiserver.key")
    pki.issue(ca, "admin", orgs=("system:masters",), client=True).write(d / "admin.crt", d / "admin.key")
    sa_key, sa_pub = pki.make_rsa_signing_key()
    (d / "sa.key").write_bytes(sa_key)
    (d / "sa.pub").write_bytes(sa_pub)
    _write_webhook_client(cluster)


def _write_webhook_client(cluster: Cluster) -> None:
    """The API server's identity towards admission webhooks: an AdmissionConfiguration whose
    kubeConfigFile gives it a client certificate for the local webhook's host:port (reserved now,
    so the API server's flags never change when `dev up --webhook` comes later)."""
    d = cluster.pki
    ca = pki.make_ca(f"kubectl-gitops dev webhook-client CA ({cluster.name})")
    ca.write(d / "webhook-client-ca.crt", d / "webhook-client-ca.key")
    client = pki.issue(ca, WEBHOOK_CLIENT_NAME, client=True, days=3650)
    hosts = [f"127.0.0.1:{cluster.ports['webhook']}", f"localhost:{cluster.ports['webhook']}"]
    kubeconfig = {"apiVersion": "v1", "kind": "Config",
                  "users": [{"name": host, "user": {"client-certificate-data": _b64(client.cert_pem),
                                                    "client-key-data": _b64(client.key_pem)}}
                            for host in hosts]}
    (d / "webhook-client.kubeconfig").touch(mode=0o600, exist_ok=True)
    (d / "webhook-client.kubeconfig").write_text(yaml.safe_dump(kubeconfig, sort_keys=False))
    plugin = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "WebhookAdmissionConfiguration",
              "kubeConfigFile": str(d / "webhook-client.kubeconfig")}
    admission = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
                 "plugins": [{"name": name, "configuration": plugin}
                             for name in ("ValidatingAdmissionWebhook", "MutatingAdmissionWebhook")]}
    (d / "admission.yaml").write_text(yaml.safe_dump(admission, sort_keys=False))


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def webhook_client_args(name: str) -> list[str]:
    """`webhook serve` flags that accept reviews from this dev cluster's API server only."""
    ca = _require(name).pki / "webhook-client-ca.crt"
    if not ca.is_file():  # a cluster started by an older version: its API server has no client cert
        return []
    return ["--client-ca-file", str(ca), "--client-name", WEBHOOK_CLIENT_NAME]


def kubeconfig_yaml(server: str, ca_pem: bytes, cert: pki.KeyPair, user: str, context: str) -> str:
    """A self-contained kubeconfig (certificates inlined) for one user."""
    import base64

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": context, "preferences": {},
        "clusters": [{"name": context, "cluster": {"server": server,
                                                   "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert.cert_pem),
                                          "client-key-data": b64(cert.key_pem)}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user,
                                                   "namespace": "default"}}],
    }
    return yaml.safe_dump(config, sort_keys=False)


def _ca(cluster: Cluster) -> pki.KeyPair:
    return pki.KeyPair((cluster.pki / "ca.crt").read_bytes(), (cluster.pki / "ca.key").read_bytes())


def _write_kubeconfig(cluster: Cluster) -> None:
    admin = pki.KeyPair((cluster.pki / "admin.crt").read_bytes(), (cluster.pki / "admin.key").read_bytes())
    text = kubeconfig_yaml(cluster.server, _ca(cluster).cert_pem, admin, "admin", cluster.context)
    cluster.kubeconfig.touch(mode=0o600, exist_ok=True)
    cluster.kubeconfig.write_text(text)


def user_kubeconfig(name: str, user: str, groups: tuple[str, ...], days: int = 30) -> str:
    """Issue a client certificate for `user` in `groups` and return its kubeconfig."""
    cluster = load(name)
    if cluster is None or not (cluster.pki / "ca.key").exists():
        raise DevClusterError(f"no dev control plane named {name!r}: run `kubectl gitops dev up` first")
    if user == "admin" and not groups:
        return cluster.kubeconfig.read_text()
    cert = pki.issue(_ca(cluster), user, orgs=groups, client=True, days=days)
    return kubeconfig_yaml(cluster.server, _ca(cluster).cert_pem, cert, user, f"{cluster.context}-{user}")


# ---------------------------------------------------------------- component flags

def _etcd_args(c: Cluster, b: build.Binaries) -> list[str]:
    client = f"http://127.0.0.1:{c.ports['etcd']}"
    peer = f"http://127.0.0.1:{c.ports['etcd-peer']}"
    return [str(b.etcd), "--name", "dev", "--data-dir", str(c.home / "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"dev={peer}", "--unsafe-no-fsync", "--log-level", "warn",
            "--quota-backend-bytes", str(4 * 1024**3)]


def _apiserver_args(c: Cluster, b: build.Binaries) -> list[str]:
    p, port = c.pki, c.ports["apiserver"]
    return [str(b.kube_apiserver), f"--etcd-servers=http://127.0.0.1:{c.ports['etcd']}",
            f"--cert-dir={p}", f"--secure-port={port}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--allow-privileged=true", "--authorization-mode=Node,RBAC",
            f"--client-ca-file={p / 'ca.crt'}", f"--tls-cert-file={p / 'apiserver.crt'}",
            f"--tls-private-key-file={p / 'apiserver.key'}",
            f"--service-account-issuer=https://127.0.0.1:{port}/",
            f"--service-account-key-file={p / 'sa.pub'}",
            f"--service-account-signing-key-file={p / 'sa.key'}",
            "--enable-priority-and-fairness=false", "--max-requests-inflight=2000",
            "--max-mutating-requests-inflight=1000", "--v=1",
            f"--admission-control-config-file={p / 'admission.yaml'}"]


def _component_kubeconfig(c: Cluster) -> list[str]:
    return [f"--kubeconfig={c.kubeconfig}", "--leader-elect=false", "--bind-address=127.0.0.1"]


def _kcm_args(c: Cluster, b: build.Binaries) -> list[str]:
    p = c.pki
    return [str(b.kube_controller_manager), *_component_kubeconfig(c),
            f"--secure-port={c.ports['kcm']}", f"--service-account-private-key-file={p / 'sa.key'}",
            f"--root-ca-file={p / 'ca.crt'}", f"--cluster-signing-cert-file={p / 'ca.crt'}",
            f"--cluster-signing-key-file={p / 'ca.key'}", f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--use-service-account-credentials=true", "--kube-api-qps=200", "--kube-api-burst=400",
            "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10", "--v=1"]


def _scheduler_args(c: Cluster, b: build.Binaries) -> list[str]:
    return [str(b.kube_scheduler), *_component_kubeconfig(c), f"--secure-port={c.ports['scheduler']}",
            "--kube-api-qps=200", "--kube-api-burst=400", "--v=1"]


def _kwok_args(c: Cluster, b: build.Binaries) -> list[str]:
    return [str(b.kwok), f"--kubeconfig={c.kubeconfig}", f"--config={b.kwok_stages}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_ANNOTATION}=fake",
            f"--cidr={POD_CIDR}", "--node-ip=127.0.0.1",
            f"--server-address=127.0.0.1:{c.ports['kwok']}"]


def fake_node(name: str) -> dict[str, object]:
    capacity = {"cpu": "64", "memory": "256Gi", "pods": "1100"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {KWOK_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "kubernetes.io/role": "agent"}},
        "spec": {},
        "status": {"allocatable": capacity, "capacity": capacity,
                   "nodeInfo": {"kubeletVersion": "fake", "architecture": "amd64", "operatingSystem": "linux"}},
    }


def _create_nodes(c: Cluster, count: int) -> None:
    from kubectl_gitops.adapters.kube import ApiError
    from kubectl_gitops.core.discovery import ResourceInfo

    nodes = ResourceInfo("", "v1", "Node", "nodes", False)
    kube = _kube(c)
    for i in range(count):
        try:
            kube.create(nodes, fake_node(f"kwok-node-{i}"))
        except ApiError as err:
            if err.status != 409:  # already there: idempotent
                raise DevClusterError(f"creating fake node kwok-node-{i} failed: {err}") from err


# ---------------------------------------------------------------- probes

def _kube(c: Cluster) -> Kube:
    """The admin connection, through the one API client module (adapters.kube)."""
    from kubectl_gitops.adapters.kube import Kube, Target

    return Kube.connect(Target(str(c.kubeconfig)))


def _readyz(c: Cluster, timeout: float, kube: Kube | None = None) -> bool:
    if not c.kubeconfig.is_file():
        return False
    try:
        return (kube or _kube(c)).ready(timeout)
    except GitOpsError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


# ---------------------------------------------------------------- extra processes (the local webhook)

def reserve_port(name: str, key: str) -> int:
    """A port recorded in the cluster's state under `key` (picked once, reused after)."""
    cluster = _require(name)
    if key not in cluster.ports:
        cluster.ports[key] = _free_ports(1)[0]
        cluster.save()
    return cluster.ports[key]


def run_process(name: str, proc_name: str, args: list[str], ready: Callable[[], bool],
                timeout: float = 60) -> Proc:
    """Start (or keep) a process that belongs to the dev cluster: `down` stops it, `status` shows it."""
    cluster = _require(name)
    for proc in cluster.procs:
        if proc.name == proc_name and processes.alive(proc) and list(proc.args) == args:
            return proc
    processes.stop([p for p in cluster.procs if p.name == proc_name])
    cluster.procs = [p for p in cluster.procs if p.name != proc_name]
    _launch(cluster, proc_name, args)
    _wait(cluster, proc_name, ready, timeout)
    return next(p for p in cluster.procs if p.name == proc_name)


def _require(name: str) -> Cluster:
    cluster = load(name)
    if cluster is None:
        raise DevClusterError(f"no dev control plane named {name!r}: run `kubectl gitops dev up` first")
    return cluster


def http_ready(url: str) -> Callable[[], bool]:
    """A probe: True once `url` answers 200 over plain HTTP (the local controller's /readyz)."""
    return lambda: _http_ok(url)


def https_ready(url: str, ca_file: Path) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            ctx = ssl.create_default_context(cafile=str(ca_file))
            with urllib.request.urlopen(url, context=ctx, timeout=2) as resp:
                return bool(resp.status == 200)
        except (OSError, ssl.SSLError, urllib.error.URLError):
            return False
    return probe
