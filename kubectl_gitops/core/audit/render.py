"""An audit's result for people (table), programs (JSON), CI (SARIF 2.1.0, JUnit XML) and the
cluster (AuditReport objects, in the spirit of the wg-policy PolicyReport) (pure).

Everything is rendered from the sorted findings, and nothing that changes between runs of the same
cluster goes into the table or the JSON, so two audits diff cleanly. The JUnit file carries the
timestamp its schema requires; the reports carry the time they were written.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Final
from xml.etree import ElementTree as ET

from kubectl_gitops.constants import API_VERSION
from kubectl_gitops.core.audit.model import CLUSTER, AuditResult, Finding, Rule, Severity

JSON = dict[str, Any]
KIND_REPORT: Final = "AuditReport"
KIND_CLUSTER_REPORT: Final = "ClusterAuditReport"
PLURAL_REPORT: Final = "auditreports"
PLURAL_CLUSTER_REPORT: Final = "clusterauditreports"
REPORT_NAME: Final = "kubectl-gitops-audit"
REPORT_LABEL: Final = "app.kubernetes.io/managed-by"
MAX_REPORT_RESULTS: Final = 500
"""Results per report object (the rest counted in `truncated`): an object must stay far below etcd's 1.5 MiB."""
SARIF_SCHEMA: Final = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"


# ------------------------------------------------------------------ summary, JSON


def summary(result: AuditResult) -> JSON:
    return {"objects": result.objects, "findings": len(result.findings),
            "bySeverity": dict(result.counts_by_severity), "byRule": dict(result.counts_by_rule)}


def summary_line(result: AuditResult) -> str:
    sev = result.counts_by_severity
    line = (f"{len(result.findings)} finding(s): {sev.get('error', 0)} error, {sev.get('warning', 0)} warning "
            f"({result.objects:,} objects, {len(result.rules)} rules)")
    if result.errors:
        line += f"; INCOMPLETE, could not read: {'; '.join(result.errors)}"
    return line


def to_json(result: AuditResult, scope: str) -> str:
    doc = {"apiVersion": API_VERSION, "kind": "AuditResult", "scope": scope, "summary": summary(result),
           "findings": [f.as_dict() for f in result.findings], "errors": list(result.errors)}
    return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False)


# ------------------------------------------------------------------ table


def shown(finding: Finding) -> str:
    """`Kind/namespace/name`, or `(cluster)` for findings about the cluster as a whole."""
    return "(cluster)" if finding.object == CLUSTER else finding.object.display


def table(result: AuditResult) -> str:
    if not result.findings:
        return "no findings\n" + summary_line(result)
    rows = [(f.severity.value, f.rule, shown(f), f.message) for f in result.findings]
    widths = [max(len(r[i]) for r in [("SEVERITY", "RULE", "OBJECT", "MESSAGE"), *rows]) for i in range(3)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(("SEVERITY", "RULE", "OBJECT"), widths, strict=True)) + "  MESSAGE"]
    for finding, row in zip(result.findings, rows, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
        lines.append(" " * (sum(widths) + 6) + "fix: " + finding.fix)
    lines.append(summary_line(result))
    return "\n".join(lines)


# ------------------------------------------------------------------ SARIF 2.1.0


def sarif(result: AuditResult, version: str) -> str:
    rules = list(result.rules)
    index = {r.id: i for i, r in enumerate(rules)}
    run = {"tool": {"driver": {"name": "kubectl-gitops-audit", "version": version,
                               "rules": [_sarif_rule(r) for r in rules]}},
           "results": [_sarif_result(f, index.get(f.rule, -1)) for f in result.findings],
           "invocations": [{"executionSuccessful": not result.errors,
                            "toolExecutionNotifications": [{"level": "error", "message": {"text": e}}
                                                           for e in result.errors]}]}
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2, ensure_ascii=False)


def _level(severity: Severity) -> str:
    return "error" if severity is Severity.ERROR else "warning"


def _sarif_rule(rule: Rule) -> JSON:
    return {"id": rule.id, "name": rule.id.replace("/", "-"), "shortDescription": {"text": rule.title},
            "help": {"text": rule.fix}, "defaultConfiguration": {"level": _level(rule.severity)}}


def _sarif_result(finding: Finding, rule_index: int) -> JSON:
    ref = finding.object
    out: JSON = {"ruleId": finding.rule, "level": _level(finding.severity),
                 "message": {"text": f"{shown(finding)}: {finding.message} Fix: {finding.fix}"},
                 "locations": [{"physicalLocation": {"artifactLocation": {"uri": object_uri(finding)}},
                                "logicalLocations": [{"fullyQualifiedName": shown(finding), "kind": "resource"}]}],
                 "partialFingerprints": {"kubectlGitopsObject/v1": f"{finding.rule}|{ref.id}"}}
    if rule_index >= 0:
        out["ruleIndex"] = rule_index
    return out


def object_uri(finding: Finding) -> str:
    """A stable relative URI for the object (SARIF locations name artifacts; these are live objects)."""
    ref = finding.object
    return "/".join(["cluster", ref.namespace or "_cluster", ref.group or "core", ref.kind, ref.name or "_"])


# ------------------------------------------------------------------ JUnit (Apache Ant's schema)


def junit(result: AuditResult, *, now: dt.datetime, hostname: str) -> str:
    """One testsuite per rule; one failing testcase per finding, one passing testcase for a clean rule."""
    by_rule: dict[str, list[Finding]] = {r.id: [] for r in result.rules}
    for finding in result.findings:
        by_rule.setdefault(finding.rule, []).append(finding)
    root = ET.Element("testsuites")
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    for number, (rule_id, findings) in enumerate(sorted(by_rule.items())):
        suite = ET.SubElement(root, "testsuite", {
            "name": rule_id, "package": "kubectl-gitops.audit", "id": str(number), "timestamp": stamp,
            "hostname": hostname or "localhost", "tests": str(max(1, len(findings))),
            "failures": str(len(findings)), "errors": "0", "time": "0"})
        ET.SubElement(suite, "properties")
        for finding in findings:
            case = ET.SubElement(suite, "testcase", {"name": _xml(shown(finding)),
                                                     "classname": rule_id, "time": "0"})
            failure = ET.SubElement(case, "failure", {"message": _xml(finding.message),
                                                      "type": finding.severity.value})
            failure.text = _xml(f"{finding.message}\nFix: {finding.fix}")
        if not findings:
            ET.SubElement(suite, "testcase", {"name": "no findings", "classname": rule_id, "time": "0"})
        ET.SubElement(suite, "system-out")
        ET.SubElement(suite, "system-err")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")


_NOT_XML: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    """Text XML 1.0 can carry: object names and messages come from what clients wrote."""
    return _NOT_XML.sub("\ufffd", text)


# ------------------------------------------------------------------ AuditReport objects


def reports(result: AuditResult, scope: str, *, now: dt.datetime) -> tuple[JSON, list[JSON]]:
    """(the ClusterAuditReport, one AuditReport per namespace with findings)."""
    by_namespace: dict[str, list[Finding]] = {}
    for finding in result.findings:
        by_namespace.setdefault(finding.object.namespace, []).append(finding)
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster = _report(KIND_CLUSTER_REPORT, "", by_namespace.pop("", []), scope, stamp)
    cluster["total"] = _counts(result.findings)
    cluster["objects"] = result.objects
    return cluster, [_report(KIND_REPORT, ns, found, scope, stamp) for ns, found in sorted(by_namespace.items())]


def _report(kind: str, namespace: str, findings: list[Finding], scope: str, stamp: str) -> JSON:
    metadata: JSON = {"name": REPORT_NAME, "labels": {REPORT_LABEL: "kubectl-gitops"}}
    if namespace:
        metadata["namespace"] = namespace
    shown = findings[:MAX_REPORT_RESULTS]
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "scope": scope, "time": stamp,
            "summary": _counts(findings), "truncated": len(findings) - len(shown),
            "results": [f.as_dict() for f in shown]}


def _counts(findings: Iterable[Finding]) -> Mapping[str, int]:
    counted = Counter(f.severity.value for f in findings)
    return {"error": counted.get("error", 0), "warning": counted.get("warning", 0)}
