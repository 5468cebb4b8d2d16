"""The audit's outputs: JSON that diffs cleanly, SARIF 2.1.0 and JUnit XML that pass their published
schemas (vendored in tests/schemas: OASIS's sarif-schema-2.1.0.json and the Apache Ant JUnit XSD),
and AuditReport objects the CRDs' structural schemas keep whole."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import xmlschema
import yaml
from jsonschema import Draft4Validator

from kubectl_gitops.core.audit import render
from kubectl_gitops.core.audit.model import CLUSTER, AuditResult, Finding
from kubectl_gitops.core.audit.registry import RULES, by_id
from kubectl_gitops.core.objects import ObjectRef
from tests.unit.test_crd_manifests import problems, root_schema

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
CRDS = Path(__file__).resolve().parents[2] / "manifests" / "crds"
NOW = dt.datetime(2026, 11, 27, 12, 0, 0, tzinfo=dt.UTC)
SARIF = Draft4Validator(json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text()))
JUNIT = xmlschema.XMLSchema(str(SCHEMAS / "JUnit.xsd"))


def finding(rule: str, ns: str, name: str, message: str = "something is off", kind: str = "ConfigMap") -> Finding:
    return by_id()[rule].finding(ObjectRef("", "v1", kind, ns, name), message)


RESULT = AuditResult.of([
    finding("orphan/unowned", "b", "x"),
    finding("drift/changed", "a", "web", 'spec.replicas changed by "kubectl-edit" <&> ünïcode', "Deployment"),
    by_id()["webhook/endpoint"].finding(CLUSTER, "webhook endpoint: down"),
    finding("rbac/tenant-escalation", "", "tina-root", kind="ClusterRoleBinding"),
], RULES, 42)


def test_json_is_sorted_and_the_same_whatever_order_findings_arrive_in() -> None:
    again = AuditResult.of(reversed(RESULT.findings), RULES, 42)
    assert render.to_json(RESULT, "all namespaces") == render.to_json(again, "all namespaces")
    doc = json.loads(render.to_json(RESULT, "all namespaces"))
    assert [(f["object"]["namespace"], f["rule"]) for f in doc["findings"]] == [
        ("", "webhook/endpoint"), ("", "rbac/tenant-escalation"), ("a", "drift/changed"), ("b", "orphan/unowned")]
    assert doc["summary"]["bySeverity"] == {"error": 3, "warning": 1}
    assert set(doc["summary"]["byRule"]) == {r.id for r in RULES}


@pytest.mark.parametrize("result", [RESULT, AuditResult.of([], RULES),
                                    AuditResult.of([], RULES, errors=["pods: forbidden"])],
                         ids=["findings", "clean", "incomplete"])
def test_sarif_passes_the_sarif_2_1_0_schema(result: AuditResult) -> None:
    doc = json.loads(render.sarif(result, "1.2.3"))
    SARIF.validate(doc)
    run = doc["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [r.id for r in RULES]
    for res in run["results"]:
        assert run["tool"]["driver"]["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("error", "warning")


def test_the_sarif_validator_does_fail_on_a_broken_document() -> None:
    doc = json.loads(render.sarif(RESULT, "1"))
    doc["runs"][0]["results"][0]["level"] = "fatal"
    assert not SARIF.is_valid(doc)


@pytest.mark.parametrize("result", [RESULT, AuditResult.of([], RULES)], ids=["findings", "clean"])
def test_junit_passes_the_junit_xsd(result: AuditResult) -> None:
    text = render.junit(result, now=NOW, hostname="ci-runner")
    JUNIT.validate(text)
    assert text.count("<testsuite ") == len(RULES)
    assert text.count("<failure ") == len(result.findings)


def test_the_junit_validator_does_fail_on_a_broken_document() -> None:
    text = render.junit(RESULT, now=NOW, hostname="h").replace(' hostname="h"', "", 1)
    assert not JUNIT.is_valid(text)


def test_control_characters_from_objects_still_make_valid_xml() -> None:
    nasty = AuditResult.of([finding("orphan/unowned", "n", "x", "bad \x00\x07 bytes \x1b[31m")], RULES)
    JUNIT.validate(render.junit(nasty, now=NOW, hostname="h"))


def test_the_table_names_severity_rule_object_message_and_fix() -> None:
    text = render.table(RESULT)
    assert text.splitlines()[0].split() == ["SEVERITY", "RULE", "OBJECT", "MESSAGE"]
    assert "Deployment/a/web" in text and "fix: Put the change in Git" in text
    assert "(cluster)" in text.splitlines()[1]
    assert text.endswith("4 finding(s): 3 error, 1 warning (42 objects, 18 rules)")
    assert render.table(AuditResult.of([], RULES)).startswith("no findings")


def _crd_schema(name: str) -> dict[str, Any]:
    return root_schema(yaml.safe_load((CRDS / name).read_text()))


def test_reports_are_one_per_namespace_plus_one_cluster_wide_and_fit_their_crds() -> None:
    cluster, per_namespace = render.reports(RESULT, "all namespaces", now=NOW)
    assert [r["metadata"]["namespace"] for r in per_namespace] == ["a", "b"]
    assert cluster["summary"] == {"error": 2, "warning": 0} and cluster["total"] == {"error": 3, "warning": 1}
    assert problems(_crd_schema("clusterauditreports.yaml"), cluster) == []
    for report in per_namespace:
        assert problems(_crd_schema("auditreports.yaml"), report) == []


def test_a_report_is_bounded_whatever_the_number_of_findings() -> None:
    many = AuditResult.of([finding("orphan/unowned", "n", f"cm-{i:04d}") for i in range(1200)], RULES)
    _, (report,) = render.reports(many, "x", now=NOW)
    assert len(report["results"]) == render.MAX_REPORT_RESULTS and report["truncated"] == 700
    assert report["summary"] == {"error": 0, "warning": 1200}
    assert len(json.dumps(report)) < 512 * 1024
