"""engine.steps: a failure without a reason of its own takes the reason of the step it happened in."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from kubectl_gitops.adapters.kube import ApiError
from kubectl_gitops.core.errors import (
    ClusterUnreachable,
    GitOpsError,
    InventoryCorrupt,
    PlanFailed,
    PruneFailed,
    TooLarge,
)
from kubectl_gitops.engine.steps import STEP_ERRORS, Step, as_step_failure, failing_as


@dataclass
class FakeRun:
    step: Step | None = None
    steps: list[Step] = field(default_factory=list)


@pytest.mark.parametrize("err", [ApiError(403, "forbidden"), ClusterUnreachable("unreachable"),
                                 TooLarge("too large"), GitOpsError("plain")])
def test_generic_failures_take_the_steps_reason_and_keep_their_message(err: GitOpsError) -> None:
    named = as_step_failure(Step.PLAN, err)
    assert isinstance(named, PlanFailed) and named.reason == "PlanFailed" and str(named) == str(err)
    assert named.__cause__ is err


def test_a_failure_with_its_own_reason_keeps_it() -> None:
    err = InventoryCorrupt("unreadable")
    assert as_step_failure(Step.PLAN, err) is err


def test_failing_as_notes_the_step_and_renames_the_failure() -> None:
    run = FakeRun()
    seen: list[Step] = []
    with pytest.raises(PruneFailed, match="forbidden"), failing_as(run, Step.PRUNE, seen.append):
        raise ApiError(403, "forbidden")
    assert run.step is Step.PRUNE and run.steps == [Step.PRUNE] and seen == [Step.PRUNE]


def test_a_bug_is_not_renamed() -> None:
    with pytest.raises(KeyError), failing_as(FakeRun(), Step.APPLY):
        raise KeyError("bug")


def test_every_step_has_a_reason_of_its_own() -> None:
    reasons = [STEP_ERRORS[step].reason for step in Step]
    assert len(set(reasons)) == len(reasons) and "Failed" not in reasons
