"""The named steps of a run, and the reason each one records when it fails.

A run is a fixed sequence of steps. Each step is entered with `failing_as(run, step)`, which turns
a failure that carries no reason of its own (an API error, an unreachable or refusing API server,
a bare GitOpsError) into that step's reason, keeping the message: a 403 while listing live objects
is recorded as `PlanFailed` with the API server's words, not as a generic "Failed". A failure that
already names its reason (InventoryCorrupt, VerificationFailed, TenantViolation, InvalidSpec, ...)
keeps it. Anything that is not a GitOpsError is a bug; it is left to the caller, which records it
as ReconcileError naming the step it happened in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Final, Protocol

from kubectl_gitops.core.errors import (
    ApplyFailed,
    BuildFailed,
    DependencyNotReady,
    GitOpsError,
    HealthCheckFailed,
    PlanFailed,
    PruneFailed,
    RecordFailed,
    SourceFailed,
    TenancyCheckFailed,
)


class Step(StrEnum):
    """The steps of a run, in the order they run."""

    TENANCY = "tenancy"
    DEPENDENCIES = "dependencies"
    SOURCE = "source"
    """Fetch the GitSource, verify its signatures (spec.verify), export the tree."""
    BUILD = "build"
    PLAN = "plan"
    APPLY = "apply"
    PRUNE = "prune"
    HEALTH = "health"
    RECORD = "record"


STEP_ERRORS: Final[dict[Step, type[GitOpsError]]] = {
    Step.TENANCY: TenancyCheckFailed,
    Step.DEPENDENCIES: DependencyNotReady,
    Step.SOURCE: SourceFailed,
    Step.BUILD: BuildFailed,
    Step.PLAN: PlanFailed,
    Step.APPLY: ApplyFailed,
    Step.PRUNE: PruneFailed,
    Step.HEALTH: HealthCheckFailed,
    Step.RECORD: RecordFailed,
}

GENERIC_REASONS: Final = frozenset({"Failed", "ClusterUnreachable", "TooLarge"})
"""Reasons that say how a request failed, not which step: replaced by the step's reason."""


class Tracked(Protocol):
    """What a step reports to: the run (its current step, and the steps it went through)."""

    step: Step | None
    steps: list[Step]


def as_step_failure(step: Step, err: GitOpsError) -> GitOpsError:
    """`err` with the step's reason when it has no specific one of its own (the message is kept)."""
    if err.reason not in GENERIC_REASONS:
        return err
    named = STEP_ERRORS[step](str(err))
    named.__cause__ = err
    return named


@contextmanager
def failing_as(run: Tracked, step: Step, on_step: Callable[[Step], None] | None = None) -> Iterator[None]:
    """Run one step: note it on the run, and give its failures the step's reason."""
    run.step = step
    run.steps.append(step)
    if on_step is not None:
        on_step(step)
    try:
        yield
    except GitOpsError as err:
        named = as_step_failure(step, err)
        if named is err:
            raise
        raise named from err
