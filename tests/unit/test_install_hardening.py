"""`install --fail-closed` and `--client-ca-*` on the REAL rendered install manifests.

Fail-closed must touch the main guard entry only (the scale entry has no objectSelector and would
freeze every autoscaler; the stamps must never stand in the applier's way), and the requests the
guard always lets pass must be matchConditions, so they never depend on the webhook being up.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubectl_gitops.core.drift import SYSTEM_DELETERS
from kubectl_gitops.core.install import (
    CLIENT_CA_CONFIGMAP,
    GUARD_ENTRY,
    SIGNATURE_ENTRIES,
    SIGNATURES_ENTRY,
    SIGNATURES_SCALE_ENTRY,
    TENANCY_ENTRIES,
    WEBHOOK_NAME,
    client_ca_configmap,
    select,
    with_client_ca,
)
from tests.unit.test_install_shape import hooks, pytestmark, rendered  # noqa: F401  (fixture, skip mark)

JSON = dict[str, Any]
APPLIER = "system:serviceaccount:kubectl-gitops-system:kubectl-gitops-applier"


def by_name(objs: list[JSON]) -> dict[str, JSON]:
    return {h["name"]: h for h in hooks(objs)}


def test_default_install_fails_open_everywhere(rendered: list[JSON]) -> None:  # noqa: F811
    assert {h["failurePolicy"] for h in hooks(select(rendered, webhook=True))} == {"Ignore"}


@pytest.mark.parametrize("url", [None, "https://127.0.0.1:9443"])
def test_fail_closed_changes_the_main_guard_tenancy_and_signature_entries_only(
        rendered: list[JSON], url: str | None) -> None:  # noqa: F811
    before = by_name(select(rendered, webhook=True, webhook_url=url))
    after = by_name(select(rendered, webhook=True, webhook_url=url, fail_closed=True))
    assert set(SIGNATURE_ENTRIES) <= set(after), "the signatures configuration's entries are shipped"
    for name in (GUARD_ENTRY, *TENANCY_ENTRIES, *SIGNATURE_ENTRIES):
        assert after[name]["failurePolicy"] == "Fail", name
        if name != SIGNATURES_ENTRY:  # reshaped: see the next test
            assert {k: v for k, v in after[name].items() if k != "failurePolicy"} == \
                {k: v for k, v in before[name].items() if k != "failurePolicy"}
    for name, hook in after.items():
        if name == SIGNATURES_SCALE_ENTRY:
            assert hook["failurePolicy"] == "Ignore"
        elif name not in (GUARD_ENTRY, *TENANCY_ENTRIES, *SIGNATURE_ENTRIES):
            assert hook == before[name], f"{name} must stay as it is"


def test_fail_closed_never_mutates_the_input(rendered: list[JSON]) -> None:  # noqa: F811
    original = copy.deepcopy(rendered)
    select(rendered, webhook=True, fail_closed=True)
    assert rendered == original


def test_the_guard_entry_skips_what_the_guard_always_allows(rendered: list[JSON]) -> None:  # noqa: F811
    conditions = {c["name"]: c["expression"] for c in by_name(rendered)[GUARD_ENTRY]["matchConditions"]}
    assert APPLIER in conditions["not-the-default-applier"]
    system_delete = conditions["not-a-system-delete"]
    assert "request.operation == 'DELETE'" in system_delete
    for user in SYSTEM_DELETERS:  # the same users the guard itself lets delete (core/drift.py)
        assert f"'{user}'" in system_delete
    finalizing = conditions["not-a-system-finalizer-update"]
    assert "deletionTimestamp" in finalizing
    assert "request.operation == 'UPDATE'" in finalizing
    for user in SYSTEM_DELETERS:  # only the control plane: anyone else's edit of a terminating object is judged
        assert f"'{user}'" in finalizing


def test_client_ca_mounts_the_configmap_and_passes_the_flags(rendered: list[JSON]) -> None:  # noqa: F811
    out = with_client_ca(select(rendered, webhook=True), "api-ca", ("kube-apiserver", "apiserver.example"))
    deploy = next(o for o in out if o["kind"] == "Deployment" and o["metadata"]["name"] == WEBHOOK_NAME)
    pod = deploy["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "client-ca")
    assert volume["configMap"]["name"] == "api-ca"
    container = pod["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "client-ca")
    args = container["args"]
    assert args[args.index("--client-ca-file") + 1] == f"{mount['mountPath']}/ca.crt"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--client-name"] == ["kube-apiserver",
                                                                                  "apiserver.example"]
    assert mount["readOnly"] is True
    # probes stay certificate-free (the webhook only guards /validate and /mutate)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_client_ca_leaves_everything_else_alone(rendered: list[JSON]) -> None:  # noqa: F811
    base = select(rendered, webhook=True)
    out = with_client_ca(base, "api-ca")
    assert [o for o in out if o["kind"] != "Deployment"] == [o for o in base if o["kind"] != "Deployment"]


def test_client_ca_configmap_shape() -> None:
    cm = client_ca_configmap(b"PEM")
    assert cm["metadata"]["name"] == CLIENT_CA_CONFIGMAP
    assert cm["metadata"]["namespace"] == "kubectl-gitops-system"
    assert cm["data"] == {"ca.crt": "PEM"}


def test_fail_closed_splits_the_signatures_scale_writes_off_and_keeps_the_applier_out(
        rendered: list[JSON]) -> None:  # noqa: F811
    from kubectl_gitops.core.install import KEPT_OPEN, MANAGED_OR_AN_APPLIER

    before = by_name(select(rendered, webhook=True))
    after = by_name(select(rendered, webhook=True, fail_closed=True))
    assert SIGNATURES_SCALE_ENTRY not in before
    main, scale = after[SIGNATURES_ENTRY], after[SIGNATURES_SCALE_ENTRY]
    assert (main["failurePolicy"], scale["failurePolicy"]) == ("Fail", "Ignore")
    assert [r["resources"] for r in main["rules"]] == [["*", "pods/ephemeralcontainers", "pods/resize"]]
    assert [r["resources"] for r in scale["rules"]] == [["*/scale"]]
    assert "matchConditions" not in scale  # its rules match scale writes only
    assert main["matchConditions"] == [MANAGED_OR_AN_APPLIER, *KEPT_OPEN]
    # The shipped condition minus its scale clause (an evaluation error on main resources under Fail).
    shipped = " ".join(before[SIGNATURES_ENTRY]["matchConditions"][0]["expression"].split())
    scale_clause = "(has(request.subResource) && request.subResource == 'scale') || "
    assert shipped == scale_clause + MANAGED_OR_AN_APPLIER["expression"]
    # The exemptions are the drift guard's own, word for word.
    guard = {c["name"]: " ".join(c["expression"].split()) for c in before[GUARD_ENTRY]["matchConditions"]}
    for condition in KEPT_OPEN:
        assert " ".join(condition["expression"].split()) == guard[condition["name"]], condition["name"]
    assert main["clientConfig"] == scale["clientConfig"] and main["namespaceSelector"] == scale["namespaceSelector"]
