"""The audit on an interval, inside the controller (`controller --audit-interval`, docs/controller.md).

`kubectl gitops audit` is a one-off for people and CI; a platform also wants to be told when the
live cluster stops matching its rules (a break-glass edit, an object made during a webhook
outage, a certificate about to expire), without a CronJob of its own. This loop runs the very same
`engine.audit.run_audit` every interval and publishes the counts as Prometheus metrics:

* `gitops_audit_findings{rule,severity}`: findings of the last run (every rule listed, 0 included,
  so an alert on `> 0` never sees a series vanish);
* `gitops_audit_objects`: objects read by the last run;
* `gitops_audit_incomplete`: 1 when part of the cluster could not be read (the counts are a floor);
* `gitops_audit_duration_seconds` and `gitops_audit_last_run_timestamp_seconds` (last completed run);
* `gitops_audit_runs_total{result}`: `ok`, `incomplete` or `failed` (the audit did not run).

Only the leader audits (`leading` is asked before each run; a standby's gauges keep its last values
and are not updated). With `--audit-report` the results are also written as AuditReports, as
`audit --report` does. A failing run is logged and counted; it never stops the controller.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from kubectl_gitops.core.audit.model import AuditResult

log = logging.getLogger("kubectl_gitops.controller.audit")


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.findings = Gauge("gitops_audit_findings", "Findings of the last audit by rule and severity.",
                              ["rule", "severity"], registry=registry)
        self.objects = Gauge("gitops_audit_objects", "Objects the last audit read.", registry=registry)
        self.incomplete = Gauge("gitops_audit_incomplete", "1 when the last audit could not read part of the "
                                "cluster.", registry=registry)
        self.duration = Gauge("gitops_audit_duration_seconds", "Duration of the last audit.", registry=registry)
        self.last_run = Gauge("gitops_audit_last_run_timestamp_seconds", "When the last audit completed (Unix time).",
                              registry=registry)
        self.runs = Counter("gitops_audit_runs_total", "Audits run, by result (ok, incomplete, failed).",
                            ["result"], registry=registry)

    def record(self, result: AuditResult, seconds: float, when: float) -> None:
        severities = {r.id: r.severity.value for r in result.rules}
        counted: dict[tuple[str, str], int] = {(rule, sev): 0 for rule, sev in severities.items()}
        for finding in result.findings:
            key = (finding.rule, finding.severity.value)
            counted[key] = counted.get(key, 0) + 1
        self.findings.clear()
        for (rule, severity), count in sorted(counted.items()):
            self.findings.labels(rule, severity).set(count)
        self.objects.set(result.objects)
        self.incomplete.set(1 if result.errors else 0)
        self.duration.set(seconds)
        self.last_run.set(when)
        self.runs.labels("incomplete" if result.errors else "ok").inc()


class AuditLoop:
    """Run `audit()` every `interval` seconds while `leading()`; `report(result)` after each run if given."""

    def __init__(self, audit: Callable[[], AuditResult], interval: float, leading: Callable[[], bool],
                 metrics: AuditMetrics, report: Callable[[AuditResult], object] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if interval <= 0:
            raise ValueError("the audit interval must be positive")
        self.audit, self.interval, self.leading = audit, interval, leading
        self.metrics, self.report, self.clock = metrics, report, clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AuditLoop:
        self._thread = threading.Thread(target=self._loop, name="audit", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)

    def run_once(self) -> bool:
        """One audit if this replica leads; whether it ran and completed."""
        if not self.leading():
            return False
        started = time.monotonic()
        try:
            result = self.audit()
            if self.report is not None:
                self.report(result)
        except Exception as err:  # logged and counted; the next interval tries again
            self.metrics.runs.labels("failed").inc()
            log.error("audit failed: %s", err)
            return False
        seconds = time.monotonic() - started
        self.metrics.record(result, seconds, self.clock())
        log.info("audit: %d findings over %d objects in %.1fs%s", len(result.findings), result.objects, seconds,
                 f" (incomplete: {len(result.errors)} kinds unreadable)" if result.errors else "")
        return True


def parse_interval(text: str) -> float:
    """`0` (off), or a duration like `90s`, `10m`, `1h`; ValueError otherwise."""
    if text.strip() in ("0", ""):
        return 0.0
    units = {"s": 1, "m": 60, "h": 3600}
    value, unit = text[:-1], text[-1:]
    if unit not in units or not value.isdigit() or int(value) <= 0:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 10m, 1h; 0 turns it off)")
    return float(int(value) * units[unit])
