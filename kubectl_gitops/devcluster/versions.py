"""Pinned versions of the dev control plane, one setting each.

The Kubernetes minor follows the `kubernetes` Python client's major version
(client 37.x talks to v1.37), so that the client's models match the server's API.
Override with KUBECTL_GITOPS_KUBE_VERSION for experiments; the cache is keyed by version.
"""

import os
from typing import Final

KUBE_VERSION: Final = os.environ.get("KUBECTL_GITOPS_KUBE_VERSION", "v1.37.2")
ETCD_VERSION: Final = "v3.6.16"
KWOK_VERSION: Final = "v0.8.0"
# Go 1.26 links an extra ~20 MB of tracing code with older protobuf releases.
PROTOBUF_MIN: Final = "v1.36.12"

KUBE_BINARIES: Final = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
