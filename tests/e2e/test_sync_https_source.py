"""A GitSource over HTTPS with a secretRef (Flux's keys: username, password, ca.crt) synced into the
real cluster: the secret travels from the cluster to git, and nothing leaks into the status."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from tests.helpers import gitops, kubectl
from tests.unit.git_https_server import serve
from tests.unit.test_git_source import Upstream

USER, PASSWORD = "deploy", "e2e-s3cret-password"


def test_https_source_with_basic_auth_and_ca_from_a_secret(kubeconfig: str, namespace: str, tmp_path: Path) -> None:
    gitops("install", "--no-webhook", kubeconfig=kubeconfig)
    repos = tmp_path / "repos"
    repos.mkdir()
    upstream = Upstream(repos / "app")
    sha = upstream.commit("app", {"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: over-https\n"
                                                  "data:\n  via: https\n"})
    with serve(repos, tmp_path, username=USER, password=PASSWORD, token="unused") as host:
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git-auth", "namespace": namespace},
                  "data": {k: base64.b64encode(v.encode()).decode() for k, v in
                           {"username": USER, "password": PASSWORD, "ca.crt": host.ca_file.read_text()}.items()}}
        kubectl("apply", "-f", "-", input=json.dumps(secret), kubeconfig=kubeconfig)
        gitops("-n", namespace, "create", "source", "app", "--url", f"{host.url_base}/app", "--branch", "main",
               "--secret", "git-auth", kubeconfig=kubeconfig)
        gitops("-n", namespace, "create", "sync", "app", "--source", "app", "--path", "apps", "--prune",
               "--target-namespace", namespace, kubeconfig=kubeconfig)
        out = gitops("-n", namespace, "sync", "app", "-o", "json", kubeconfig=kubeconfig)
        assert "Basic" in host.requests
    report = json.loads(out.stdout)
    assert report["ready"] is True and report["revision"] == f"main@sha1:{sha}"
    got = kubectl("-n", namespace, "get", "configmap", "over-https", "-o", "jsonpath={.data.via}",
                  kubeconfig=kubeconfig)
    assert got.stdout == "https"
    source = kubectl("-n", namespace, "get", "gitsource", "app", "-o", "json", kubeconfig=kubeconfig).stdout
    assert PASSWORD not in source and PASSWORD not in out.stdout + out.stderr


def test_wrong_secret_keeps_the_last_good_revision(kubeconfig: str, namespace: str, tmp_path: Path) -> None:
    gitops("install", "--no-webhook", kubeconfig=kubeconfig)
    repos = tmp_path / "repos"
    repos.mkdir()
    upstream = Upstream(repos / "app")
    upstream.commit("app", {"apps/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"})
    with serve(repos, tmp_path, username=USER, password=PASSWORD, token="unused") as host:
        def secret(password: str) -> str:
            values = {"username": USER, "password": password, "ca.crt": host.ca_file.read_text()}
            return json.dumps({"apiVersion": "v1", "kind": "Secret",
                               "metadata": {"name": "git-auth", "namespace": namespace},
                               "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}})
        kubectl("apply", "-f", "-", input=secret(PASSWORD), kubeconfig=kubeconfig)
        gitops("-n", namespace, "create", "source", "app", "--url", f"{host.url_base}/app", "--secret", "git-auth",
               kubeconfig=kubeconfig)
        gitops("-n", namespace, "create", "sync", "app", "--source", "app", "--path", "apps", "--prune",
               "--target-namespace", namespace, kubeconfig=kubeconfig)
        good = json.loads(gitops("-n", namespace, "sync", "app", "-o", "json", kubeconfig=kubeconfig).stdout)
        kubectl("apply", "-f", "-", input=secret("wrong-" + PASSWORD), kubeconfig=kubeconfig)
        upstream.commit("removes c", {"apps/cm.yaml": "# nothing\n"})
        bad = gitops("-n", namespace, "sync", "app", "-o", "json", kubeconfig=kubeconfig, check=False)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["reason"] == "SourceFailed" and PASSWORD not in bad.stdout + bad.stderr
    status = json.loads(kubectl("-n", namespace, "get", "sync", "app", "-o", "json", kubeconfig=kubeconfig).stdout)
    assert status["status"]["lastAppliedRevision"] == good["revision"], "the last good revision stays"
    kubectl("-n", namespace, "get", "configmap", "c", kubeconfig=kubeconfig)  # nothing pruned
