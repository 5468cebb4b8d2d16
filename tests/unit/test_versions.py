"""The dev control plane's Kubernetes version is one setting, kept in step with the API client."""

from __future__ import annotations

import importlib.metadata

from kubectl_gitops.core.checks import minor_of
from kubectl_gitops.devcluster import versions


def test_kube_version_matches_the_python_clients_major() -> None:
    client_major = int(importlib.metadata.version("kubernetes").split(".")[0])
    parsed = minor_of(versions.KUBE_VERSION)
    assert parsed is not None
    assert parsed == (1, client_major), (
        f"dev control plane {versions.KUBE_VERSION} but kubernetes client {client_major}.x talks to v1.{client_major}")


def test_versions_are_full_semver_pins() -> None:
    for pin in (versions.KUBE_VERSION, versions.ETCD_VERSION, versions.KWOK_VERSION):
        assert pin.startswith("v") and pin.count(".") == 2, pin
