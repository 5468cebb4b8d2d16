"""The controller's periodic audit (controller/audit_loop.py) with a fake audit: the metrics it
publishes, leader only, failures counted and survived, reports written, and the flag's parsing."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry

from kubectl_gitops.controller.audit_loop import AuditLoop, AuditMetrics, parse_interval
from kubectl_gitops.core.audit.model import CLUSTER, AuditResult, Finding, Severity
from kubectl_gitops.core.audit.registry import RULES
from kubectl_gitops.core.objects import ObjectRef

REF = ObjectRef("", "v1", "ConfigMap", "app", "stray")


def result(*findings: Finding, errors: tuple[str, ...] = ()) -> AuditResult:
    return AuditResult.of(findings, RULES, objects=42, errors=errors)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def loop(audit: object, leading: bool = True, report: object = None) -> tuple[AuditLoop, CollectorRegistry]:
    registry = CollectorRegistry()
    return AuditLoop(audit, 60, lambda: leading, AuditMetrics(registry), report=report,  # type: ignore[arg-type]
                     clock=lambda: 1234.0), registry


def test_a_run_publishes_counts_by_rule_and_severity_zeros_included() -> None:
    found = [Finding("orphan/unowned", Severity.WARNING, REF, "m", "f"),
             Finding("signature/missing", Severity.ERROR, REF, "m", "f"),
             Finding("signature/missing", Severity.WARNING, REF, "m2", "f"),
             Finding("webhook/configuration", Severity.ERROR, CLUSTER, "m", "f")]
    audit, registry = loop(lambda: result(*found))
    assert audit.run_once()
    assert value(registry, "gitops_audit_findings", rule="orphan/unowned", severity="warning") == 1
    assert value(registry, "gitops_audit_findings", rule="signature/missing", severity="error") == 1
    assert value(registry, "gitops_audit_findings", rule="signature/missing", severity="warning") == 1
    assert value(registry, "gitops_audit_findings", rule="drift/changed", severity="error") == 0
    assert value(registry, "gitops_audit_objects") == 42
    assert value(registry, "gitops_audit_incomplete") == 0
    assert value(registry, "gitops_audit_last_run_timestamp_seconds") == 1234.0
    assert value(registry, "gitops_audit_duration_seconds") is not None
    assert value(registry, "gitops_audit_runs_total", result="ok") == 1


def test_the_next_run_replaces_the_counts() -> None:
    runs = iter([result(Finding("orphan/unowned", Severity.WARNING, REF, "m", "f")), result()])
    audit, registry = loop(lambda: next(runs))
    audit.run_once()
    audit.run_once()
    assert value(registry, "gitops_audit_findings", rule="orphan/unowned", severity="warning") == 0
    assert value(registry, "gitops_audit_runs_total", result="ok") == 2


def test_an_incomplete_audit_says_so() -> None:
    audit, registry = loop(lambda: result(errors=("secrets: forbidden",)))
    audit.run_once()
    assert value(registry, "gitops_audit_incomplete") == 1
    assert value(registry, "gitops_audit_runs_total", result="incomplete") == 1


def test_only_the_leader_audits() -> None:
    calls: list[int] = []
    audit, registry = loop(lambda: calls.append(1) or result(), leading=False)
    assert not audit.run_once()
    assert calls == [] and value(registry, "gitops_audit_last_run_timestamp_seconds") == 0


def test_a_failing_audit_is_counted_and_the_loop_goes_on() -> None:
    def broken() -> AuditResult:
        raise RuntimeError("API server gone")

    audit, registry = loop(broken)
    assert not audit.run_once()
    assert value(registry, "gitops_audit_runs_total", result="failed") == 1


def test_reports_are_written_after_each_run() -> None:
    written: list[AuditResult] = []
    audit, _ = loop(result, report=written.append)
    audit.run_once()
    assert len(written) == 1 and written[0].objects == 42


def test_the_thread_runs_at_once_and_stops() -> None:
    ran = threading.Event()
    registry = CollectorRegistry()
    audit = AuditLoop(lambda: ran.set() or result(), 3600, lambda: True, AuditMetrics(registry))
    audit.start()
    assert ran.wait(5)
    audit.stop()
    assert audit._thread is not None and not audit._thread.is_alive()


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), ("90s", 90.0), ("10m", 600.0), ("1h", 3600.0)])
def test_interval_parsing(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["10", "m", "-5m", "1d", "ten minutes"])
def test_bad_intervals_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_interval(text)
