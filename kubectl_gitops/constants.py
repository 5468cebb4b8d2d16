"""Every name the project shares with users and with the cluster, spelled once.

Labels, annotations, the API group and the field manager are a contract with live
clusters: changing one orphans objects applied by an older version, so they live here
and nowhere else.
"""

from typing import Final

PROJECT: Final = "kubectl-gitops"
GROUP: Final = "kubectl-gitops.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

KIND_SOURCE: Final = "GitSource"
KIND_SYNC: Final = "Sync"
KIND_TENANT: Final = "Tenant"
KIND_TRUST_POLICY: Final = "TrustPolicy"

FIELD_MANAGER: Final = "kubectl-gitops"

LABEL_SYNC: Final = f"{GROUP}/sync"
LABEL_SYNC_NAMESPACE: Final = f"{GROUP}/sync-namespace"
LABEL_TENANT: Final = f"{GROUP}/tenant"
ANNOTATION_REVISION: Final = f"{GROUP}/revision"
ANNOTATION_SIGNATURE: Final = f"{GROUP}/signature"
ANNOTATION_PRUNE: Final = f"{GROUP}/prune"
ANNOTATION_FIELDS: Final = f"{GROUP}/fields"
"""The map keys Git declares for an object, recorded by the applier (core/declared.py)."""
PRUNE_DISABLED: Final = "disabled"

SYSTEM_NAMESPACE: Final = "kubectl-gitops-system"
BREAK_GLASS_GROUP: Final = "kubectl-gitops:break-glass"
DEFAULT_APPLIER_SA: Final = "kubectl-gitops-applier"
PLURAL_SYNC: Final = "syncs"
PLURAL_SOURCE: Final = "gitsources"
ANNOTATION_DIGEST: Final = f"{GROUP}/digest"
FINALIZER: Final = f"{GROUP}/finalizer"
"""On a Sync the controller reconciles: deleting the Sync prunes what it owns first (docs/controller.md)."""
ANNOTATION_REQUESTED_AT: Final = f"{GROUP}/requestedAt"
"""Set by `kubectl gitops sync NAME --remote`: the controller reconciles now and records the value
in status.lastHandledReconcileAt when done."""
ANNOTATION_ORPHAN: Final = f"{GROUP}/orphan"
"""`"true"` on a Sync being deleted: the controller drops its finalizer without pruning (the escape)."""
LABEL_SHARD: Final = f"{GROUP}/shard"
