"""adapters/helm.py `template`: the arguments helm gets, its isolation, its errors, and the render cache.

helm is replaced by a small script (KUBECTL_GITOPS_HELM) that records its arguments and environment,
so these run without the pinned helm being built; the e2e tests use the real one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubectl_gitops.adapters.helm import TemplateRequest, template
from kubectl_gitops.core.errors import BuildFailed

FAKE = """#!/bin/sh
printf '%s\\n' "$@" >> "{log}"
env | grep -E '^(HOME|KUBECONFIG|HELM_[A-Z_]+)=' | sort > "{env}"
if [ "$3" = /charts/fail.tgz ]; then echo "Error: template: app/templates/x.yaml:1:2: boom" >&2; exit 1; fi
printf -- '---\\n# Source: app/templates/cm.yaml\\napiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: c\\n'
"""


@pytest.fixture
def fake_helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "helm"
    script.write_text(FAKE.format(log=tmp_path / "args.log", env=tmp_path / "env.log"))
    script.chmod(0o755)
    monkeypatch.setenv("KUBECTL_GITOPS_HELM", str(script))
    return tmp_path


def request(**changes: object) -> TemplateRequest:
    fields: dict[str, object] = dict(chart=Path("/charts/app.tgz"), chart_name="app", version="1.0.0", release="rel",
                                     namespace="team", values={"a": 1}, kube_version="v1.37.2",
                                     api_versions=["v1", "apps/v1", "apps/v1/Deployment"], include_crds=True,
                                     upgrade=False, identity="sha256:abc")
    fields.update(changes)
    return TemplateRequest(**fields)  # type: ignore[arg-type]


def calls(root: Path) -> int:
    log = root / "args.log"
    return log.read_text().count("\ntemplate\n") + log.read_text().startswith("template\n") if log.exists() else 0


def test_helm_gets_the_cluster_versions_and_no_files_of_this_machine(fake_helm: Path) -> None:
    out = template(request(upgrade=True))
    assert "kind: ConfigMap" in out
    args = (fake_helm / "args.log").read_text().splitlines()
    assert args[:3] == ["template", "rel", "/charts/app.tgz"]
    for flag, value in (("--namespace", "team"), ("--kube-version", "v1.37.2")):
        assert args[args.index(flag) + 1] == value
    assert [args[i + 1] for i, a in enumerate(args) if a == "--api-versions"] == ["v1", "apps/v1", "apps/v1/Deployment"]
    assert {"--skip-tests", "--include-crds", "--is-upgrade"} <= set(args)
    values = Path(args[args.index("--values") + 1])
    assert not values.exists()  # a temporary file, gone after the run
    env = dict(line.split("=", 1) for line in (fake_helm / "env.log").read_text().splitlines())
    assert env["KUBECONFIG"] == "/dev/null"
    assert not env["HOME"].startswith(str(Path.home()))


def test_a_failing_template_names_chart_version_and_template(fake_helm: Path) -> None:
    expected = r"chart app 1\.0\.0 failed to render: template: app/templates/x\.yaml:1:2: boom"
    with pytest.raises(BuildFailed, match=expected):
        template(request(chart=Path("/charts/fail.tgz")))


def test_the_render_cache_skips_helm_while_every_input_is_the_same(fake_helm: Path) -> None:
    cache = fake_helm / "cache"
    first = template(request(), slot="ns/app", cache=cache)
    assert template(request(), slot="ns/app", cache=cache) == first
    assert calls(fake_helm) == 1
    for change in ({"values": {"a": 2}}, {"identity": "sha256:def"}, {"kube_version": "v1.38.0"},
                   {"api_versions": ["v1"]}, {"upgrade": True}, {"include_crds": False}, {"namespace": "other"}):
        template(request(**change), slot="ns/app", cache=cache)
    assert calls(fake_helm) == 8
    template(request(identity=""), slot="ns/app", cache=cache)  # no identity: never cached
    template(request(identity=""), slot="ns/app", cache=cache)
    assert calls(fake_helm) == 10


def test_a_damaged_cache_entry_renders_again(fake_helm: Path) -> None:
    cache = fake_helm / "cache"
    template(request(), slot="ns/app", cache=cache)
    [entry] = list((cache / "render").iterdir())
    entry.write_text("garbage")
    assert "kind: ConfigMap" in template(request(), slot="ns/app", cache=cache)
    assert calls(fake_helm) == 2
