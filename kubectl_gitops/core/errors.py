"""The domain error tree: one base class caught in `main()` and turned into a message and exit code.

Every failure a user can meet is one of these, carrying a reason that names what failed and
where; tracebacks are for `--debug` only.
"""

from __future__ import annotations


class GitOpsError(Exception):
    """Base of every expected failure. `reason` is the kstatus-style reason string."""

    reason = "Failed"
    exit_code = 1


class DevClusterError(GitOpsError):
    reason = "DevClusterFailed"


class ClusterUnreachable(GitOpsError):
    reason = "ClusterUnreachable"


class SourceFailed(GitOpsError):
    reason = "SourceFailed"


class BuildFailed(GitOpsError):
    reason = "BuildFailed"


class ApplyFailed(GitOpsError):
    reason = "ApplyFailed"


class PruneFailed(GitOpsError):
    reason = "PruneFailed"


class HealthCheckFailed(GitOpsError):
    reason = "HealthCheckFailed"


class DependencyNotReady(GitOpsError):
    reason = "DependencyNotReady"


class UsageError(GitOpsError):
    exit_code = 2


class TooLarge(GitOpsError):
    """The API server refused a request as too large (HTTP 413, etcd's request limit)."""

    reason = "TooLarge"


class ReconcileError(GitOpsError):
    """An unexpected failure inside a run (a bug or an object nothing foresaw): recorded, not raised."""

    reason = "ReconcileError"


class InventoryCorrupt(GitOpsError):
    """`Sync.status.inventory` cannot be read; `kubectl gitops sync NAME --reset-inventory` repairs it."""

    reason = "InventoryCorrupt"


class VerificationFailed(GitOpsError):
    """A signature did not verify (unsigned, untrusted or expired key, malformed, bad): nothing is applied."""

    reason = "VerificationFailed"


class PlanFailed(GitOpsError):
    """Reading what is live (the inventory's kinds, by label) or deciding what to write failed."""

    reason = "PlanFailed"


class RecordFailed(GitOpsError):
    """The outcome of a run could not be written to the Sync's status."""

    reason = "RecordFailed"


class TenancyCheckFailed(GitOpsError):
    """The Tenants (or the namespace's labels) could not be read, so no tenant rule can be applied."""

    reason = "TenancyCheckFailed"
