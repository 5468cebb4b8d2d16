"""Chart repositories and `helm template`: the only module that talks to a chart repository or runs helm.

HTTP(S) repositories are read the way Helm reads them (index.yaml, then the chart archive the
entry names); OCI registries through the distribution API (tags, manifest, the chart layer's
blob), with basic auth, a bearer token or a registry token exchange. Downloads are cached under
the user cache by content digest (`helm/charts/sha256/<hex>.tgz`, verified before use, written
atomically) and an index by URL, refreshed once it is older than the HelmRepository's interval.

Credentials are sent only to the repository's own host (never to a chart URL on another host,
Flux's passCredentials default) and never over plain http:// unless the HelmRepository says
`insecure: true`. helm itself runs with a throw-away HOME and no kubeconfig, repositories or
plugins of this machine: `helm template` of a local archive needs none of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubectl_gitops.adapters.helm_binary import HELM_VERSION, ensure_helm
from kubectl_gitops.adapters.paths import cache_root
from kubectl_gitops.core.errors import BuildFailed, SourceFailed
from kubectl_gitops.core.helm import ChartVersion, HelmRepoSpec, chart_layer, oci_tags, parse_index, pick_version
from kubectl_gitops.core.limits import DEFAULT_LIMITS, Limits

MAX_INDEX_BYTES = 64 * 1024 * 1024
MAX_CHART_BYTES = 32 * 1024 * 1024
_MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class RepoAuth:
    """What the HelmRepository's Secret holds: username/password, bearerToken, ca.crt."""

    username: str = ""
    password: str = ""
    bearer_token: str = ""
    ca_pem: str = ""

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.password, self.bearer_token) if s)

    @property
    def any(self) -> bool:
        return bool(self.username or self.password or self.bearer_token)


@dataclass(frozen=True)
class FetchedChart:
    """A chart archive on disk, and what it is."""

    name: str
    version: str
    digest: str
    path: Path


class _Http:
    """Small HTTP client: one repository's credentials, its CA, bounded reads, named errors."""

    def __init__(self, repo: HelmRepoSpec, auth: RepoAuth) -> None:
        self.repo = repo
        self.auth = auth
        self.host = urllib.parse.urlsplit(_http_url(repo)).netloc
        self._context: ssl.SSLContext | None = None  # loading the system CAs costs ~0.1 s: only for https
        self._token = ""

    @property
    def context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.create_default_context(cadata=self.auth.ca_pem or None)
        return self._context

    def get(self, url: str, limit: int, accept: str = "") -> tuple[bytes, Mapping[str, str]]:
        parts = urllib.parse.urlsplit(url)
        same_host = parts.netloc == self.host
        if same_host and self.auth.any and parts.scheme == "http" and not self.repo.insecure:
            raise SourceFailed(f"HelmRepository {self.repo.key}: refusing to send credentials over plain http:// "
                               "(set spec.insecure: true to allow it)")
        headers = {"User-Agent": "kubectl-gitops"}
        if accept:
            headers["Accept"] = accept
        if same_host:
            headers.update(self._authorization())
        try:
            return self._read(url, headers, limit)
        except urllib.error.HTTPError as err:
            challenge = err.headers.get("WWW-Authenticate", "") if err.headers else ""
            if err.code == 401 and same_host and challenge.lower().startswith("bearer ") and not self._token:
                self._token = self._exchange(challenge)
                headers.update(self._authorization())
                return self._read(url, headers, limit)
            raise

    def _read(self, url: str, headers: dict[str, str], limit: int) -> tuple[bytes, Mapping[str, str]]:
        request = urllib.request.Request(url, headers=headers)
        context = self.context if url.startswith("https://") else None
        with urllib.request.urlopen(request, timeout=self.repo.timeout, context=context) as resp:
            body = resp.read(limit + 1)
            if len(body) > limit:
                raise SourceFailed(f"{_redact(url)}: more than {limit} bytes")
            return body, dict(resp.headers.items())

    def _authorization(self) -> dict[str, str]:
        if self._token or self.auth.bearer_token:
            return {"Authorization": f"Bearer {self._token or self.auth.bearer_token}"}
        if self.auth.username or self.auth.password:
            pair = f"{self.auth.username}:{self.auth.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    def _exchange(self, challenge: str) -> str:
        """A registry's token service (`WWW-Authenticate: Bearer realm=...,service=...,scope=...`)."""
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        realm = params.pop("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise SourceFailed(f"HelmRepository {self.repo.key}: the registry asked for a token from {realm!r}")
        url = realm + "?" + urllib.parse.urlencode({k: v for k, v in params.items() if k in ("service", "scope")})
        headers = {"User-Agent": "kubectl-gitops"}
        if self.auth.username or self.auth.password:
            pair = f"{self.auth.username}:{self.auth.password}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        body, _ = self._read(url, headers, 1024 * 1024)
        try:
            answer = json.loads(body)
        except ValueError:
            raise SourceFailed(f"HelmRepository {self.repo.key}: the registry's token service answered "
                               "something that is not JSON") from None
        return str(answer.get("token") or answer.get("access_token") or "")


class ChartRepository:
    """Resolve and download charts from one HelmRepository, through the cache."""

    def __init__(self, repo: HelmRepoSpec, auth: RepoAuth, cache: Path | None = None) -> None:
        self.repo = repo
        self.auth = auth
        self.cache = cache or cache_root() / "helm"
        self.http = _Http(repo, auth)
        self.index_digest = ""

    def fetch(self, name: str, constraint: str) -> FetchedChart:
        """The chart archive for `name` at the highest version `constraint` admits."""
        try:
            if self.repo.oci:
                return self._fetch_oci(name, constraint)
            return self._fetch_http(name, constraint)
        except urllib.error.HTTPError as err:
            raise SourceFailed(f"{self.where}: {_redact(err.url or '')}: HTTP {err.code} {err.reason}") from None
        except (urllib.error.URLError, OSError, ssl.SSLError) as err:
            reason = getattr(err, "reason", err)
            raise SourceFailed(f"{self.where}: cannot reach {_redact(self.repo.url)}: {reason}") from None

    @property
    def where(self) -> str:
        return f"HelmRepository {self.repo.key} ({_redact(self.repo.url)})"

    # ------------------------------------------------------------ HTTP repositories

    def index(self) -> dict[str, list[ChartVersion]]:
        """index.yaml, from the cache while it is younger than the repository's interval."""
        folder = self.cache / "index" / hashlib.sha256(self.repo.url.encode()).hexdigest()[:32]
        cached = folder / "index.yaml"
        try:
            fresh = time.time() - cached.stat().st_mtime < self.repo.interval
        except OSError:
            fresh = False
        if fresh:
            text = cached.read_bytes()
        else:
            text, _ = self.http.get(f"{self.repo.url}/index.yaml", MAX_INDEX_BYTES)
            _write_atomic(cached, text)
        self.index_digest = "sha256:" + hashlib.sha256(text).hexdigest()
        return parse_index(text.decode(errors="replace"), self.where)

    def _fetch_http(self, name: str, constraint: str) -> FetchedChart:
        entries = self.index()
        chosen = pick_version(name, entries.get(name), constraint, self.where)
        if not chosen.urls:
            raise SourceFailed(f"{self.where}: chart {name} {chosen.version} lists no download URL")
        url = urllib.parse.urljoin(self.repo.url + "/", chosen.urls[0])
        digest = chosen.digest.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{64}", digest):
            path = self._cached(digest)
            if path is None:
                body, _ = self.http.get(url, MAX_CHART_BYTES)
                path = self._store(body, digest, f"chart {name} {chosen.version} ({_redact(url)})")
        else:  # an index without digests: the archive's own digest, downloaded every time
            body, _ = self.http.get(url, MAX_CHART_BYTES)
            digest = hashlib.sha256(body).hexdigest()
            path = self._store(body, digest, url)
        return FetchedChart(name, chosen.version, f"sha256:{digest}", path)

    # ------------------------------------------------------------ OCI registries

    def _fetch_oci(self, name: str, constraint: str) -> FetchedChart:
        parts = urllib.parse.urlsplit(self.repo.url)
        scheme = "http" if self.repo.insecure else "https"
        repository = f"{parts.path.strip('/')}/{name}".strip("/")
        base = f"{scheme}://{parts.netloc}/v2/{repository}"
        tags = self._tags(base)
        where = f"{self.where} (oci repository {repository})"
        chosen = pick_version(name, oci_tags(tags) if tags is not None else None, constraint, where)
        body, _ = self.http.get(f"{base}/manifests/{chosen.urls[0]}", 4 * 1024 * 1024, _MANIFEST_ACCEPT)
        try:
            manifest = json.loads(body)
        except ValueError:
            raise SourceFailed(f"{where}: the manifest of {chosen.version} is not JSON") from None
        digest, _size = chart_layer(manifest, f"{where} {chosen.version}")
        hexdigest = digest.removeprefix("sha256:")
        path = self._cached(hexdigest)
        if path is None:
            blob, _ = self.http.get(f"{base}/blobs/{digest}", MAX_CHART_BYTES)
            path = self._store(blob, hexdigest, f"chart {name} {chosen.version}")
        return FetchedChart(name, chosen.version, digest, path)

    def _tags(self, base: str) -> list[str] | None:
        try:
            body, _ = self.http.get(f"{base}/tags/list?n=1000", 4 * 1024 * 1024)
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise
        try:
            tags = json.loads(body).get("tags") or []
        except (ValueError, AttributeError):
            raise SourceFailed(f"{self.where}: the tag list is not JSON") from None
        return [str(t) for t in tags]

    # ------------------------------------------------------------ the digest cache

    def _cached(self, hexdigest: str) -> Path | None:
        path = self.cache / "charts" / "sha256" / f"{hexdigest}.tgz"
        if not path.is_file():
            return None
        if hashlib.sha256(path.read_bytes()).hexdigest() != hexdigest:
            path.unlink(missing_ok=True)  # corrupted: download again
            return None
        return path

    def _store(self, body: bytes, hexdigest: str, what: str) -> Path:
        got = hashlib.sha256(body).hexdigest()
        if got != hexdigest:
            raise SourceFailed(f"{self.where}: {what}: digest mismatch (index says sha256:{hexdigest}, "
                               f"downloaded sha256:{got}); nothing was used")
        path = self.cache / "charts" / "sha256" / f"{hexdigest}.tgz"
        _write_atomic(path, body)
        return path


def _http_url(repo: HelmRepoSpec) -> str:
    if repo.oci:
        return ("http://" if repo.insecure else "https://") + repo.url.removeprefix("oci://")
    return repo.url


def _write_atomic(path: Path, body: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as fh:
        fh.write(body)
    os.replace(tmp, path)


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


# ---------------------------------------------------------------- charts in a Git tree

def chart_metadata(directory: Path, where: str) -> tuple[str, str]:
    """(name, version) from a chart directory's Chart.yaml."""
    try:
        meta = yaml.safe_load((directory / "Chart.yaml").read_text())
    except FileNotFoundError:
        raise BuildFailed(f"{where}: no Chart.yaml: not a chart directory") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise BuildFailed(f"{where}: Chart.yaml cannot be read: {err}") from None
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        raise BuildFailed(f"{where}: Chart.yaml needs a name and a version")
    return str(meta["name"]), str(meta["version"])


# ---------------------------------------------------------------- helm template

@dataclass(frozen=True)
class TemplateRequest:
    """Everything `helm template` is given: no cluster, no network, no files of this machine."""

    chart: Path
    chart_name: str
    version: str
    release: str
    namespace: str
    values: Mapping[str, Any]
    kube_version: str
    api_versions: Sequence[str]
    include_crds: bool
    upgrade: bool
    hooks: bool = True
    identity: str = ""
    """What the chart's content is (its archive digest, or commit and path): "" disables the cache."""

    def cache_key(self) -> str:
        fields = [HELM_VERSION, os.environ.get("KUBECTL_GITOPS_HELM", ""), self.identity, self.release,
                  self.namespace, self.values, self.kube_version, sorted(self.api_versions), self.include_crds,
                  self.upgrade, self.hooks]
        return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def template(req: TemplateRequest, timeout: float = 120.0, limits: Limits = DEFAULT_LIMITS, *,
             slot: str = "", cache: Path | None = None) -> str:
    """The rendered stream, or BuildFailed naming chart, version and the template helm names.

    With a `slot` (one per Sync) and a chart identity, the last rendering is kept under the user
    cache and reused while every input is the same: a no-change re-sync does not run helm. (Charts
    that call `randAlphaNum` or `now` therefore keep their first output until an input changes,
    which is what a GitOps diff wants anyway.)"""
    if not slot or not req.identity:
        return _template(req, timeout, limits)
    key = req.cache_key()
    path = (cache or cache_root() / "helm") / "render" / f"{hashlib.sha256(slot.encode()).hexdigest()[:32]}.yaml"
    header = f"# kubectl-gitops render cache {key}\n"
    try:
        with path.open() as fh:
            if fh.readline() == header:
                return fh.read()
    except (OSError, UnicodeDecodeError):
        pass
    text = _template(req, timeout, limits)
    _write_atomic(path, (header + text).encode())
    return text


def _template(req: TemplateRequest, timeout: float, limits: Limits) -> str:
    helm = ensure_helm()
    with tempfile.TemporaryDirectory(prefix="kubectl-gitops-helm-") as tmp:
        home = Path(tmp)
        values = home / "values.yaml"
        values.write_text(json.dumps(req.values))
        args = [str(helm), "template", req.release, str(req.chart), "--namespace", req.namespace,
                "--kube-version", req.kube_version, "--values", str(values), "--skip-tests"]
        for version in req.api_versions:
            args += ["--api-versions", version]
        if req.include_crds:
            args.append("--include-crds")
        if req.upgrade:
            args.append("--is-upgrade")
        if not req.hooks:
            args.append("--no-hooks")
        out = home / "out.yaml"
        with out.open("wb") as fh:
            try:
                proc = subprocess.run(args, stdout=fh, stderr=subprocess.PIPE, timeout=timeout, check=False,
                                      env=_helm_env(home), cwd=tmp)
            except subprocess.TimeoutExpired:
                raise BuildFailed(f"chart {req.chart_name} {req.version}: helm template timed out after "
                                  f"{timeout:.0f}s") from None
        if proc.returncode != 0:
            from kubectl_gitops.core.helm import template_error

            raise template_error(proc.stderr.decode(errors="replace"), req.chart_name, req.version)
        size = out.stat().st_size
        if size > limits.max_bytes:
            raise BuildFailed(f"chart {req.chart_name} {req.version}: helm template printed {size} bytes "
                              f"({limits.hint('max_bytes')})")
        return out.read_text(errors="replace")


def _helm_env(home: Path) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ}
    env.update({"HOME": str(home), "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
                "HELM_DATA_HOME": str(home / "data"), "HELM_PLUGINS": str(home / "plugins"),
                "KUBECONFIG": os.devnull, "HELM_NO_PLUGINS": "1", "TMPDIR": str(home)})
    return env


def helm_version() -> str:
    """`helm version --short` of the binary in use (for `check` and the docs)."""
    proc = subprocess.run([str(ensure_helm()), "version", "--short"], capture_output=True, text=True, check=False,
                          env=_helm_env(Path(tempfile.gettempdir())), timeout=30)
    return proc.stdout.strip()


def load_auth(data: Mapping[str, str]) -> RepoAuth:
    return RepoAuth(username=data.get("username", ""), password=data.get("password", ""),
                    bearer_token=data.get("bearerToken", ""), ca_pem=data.get("ca.crt", ""))
