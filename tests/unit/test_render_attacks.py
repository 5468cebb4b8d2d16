"""A kustomization reads nothing outside the repository and nothing remote, in any field.

Each attack is a repository tree in tmp_path (with a "machine" file beside it that the attacker
wants to read), built by the real `kubectl kustomize` through adapters.render. The legitimate
layouts (overlays over bases elsewhere in the repository, generators, patches, components) still
build.
"""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

from kubectl_gitops.adapters.render import render
from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.core.limits import Limits

MACHINE_SECRET = "machine-secret-value-0451"


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def cm(name: str, value: str = "x") -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  v: {value}\n"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(repository root, a directory of this machine outside it holding a kustomization and a secret file)."""
    repo, machine = tmp_path / "repo", tmp_path / "machine"
    write(machine, {"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": cm("stolen", MACHINE_SECRET),
                    "secret.env": f"TOKEN={MACHINE_SECRET}\n", "patch.yaml": cm("app", MACHINE_SECRET)})
    repo.mkdir()
    return repo, machine


def names(root: Path, path: str) -> set[str]:
    return {m.obj["metadata"]["name"] for m in render(root, path)}


def refused(root: Path, path: str, *fragments: str) -> str:
    with pytest.raises(BuildFailed) as err:
        render(root, path)
    message = str(err.value)
    assert MACHINE_SECRET not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_base_directory_outside_the_repository_is_refused(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    # kubectl kustomize's own LoadRestrictionsRootOnly lets a base *directory* be anywhere.
    write(repo, {"apps/kustomization.yaml": "resources: [cm.yaml, ../../machine]\n", "apps/cm.yaml": cm("app")})
    refused(repo, "apps", "apps/kustomization.yaml", "resources", "../../machine", "outside the repository")


@pytest.mark.parametrize("field", ["bases", "components", "resources"])
def test_absolute_and_climbing_directories_in_every_directory_field(layout: tuple[Path, Path], field: str) -> None:
    repo, machine = layout
    write(repo, {"kustomization.yaml": f"{field}: [{machine}]\n"})
    refused(repo, ".", field, "outside the repository")


def test_a_symlink_inside_the_repository_to_outside_is_refused(layout: tuple[Path, Path]) -> None:
    repo, machine = layout
    write(repo, {"kustomization.yaml": "resources: [vendor]\n"})
    (repo / "vendor").symlink_to(machine)
    refused(repo, ".", "vendor", "outside the repository")


def test_a_chain_of_links_is_resolved_whole(layout: tuple[Path, Path]) -> None:
    repo, _ = layout
    write(repo, {"kustomization.yaml": "resources: [b/machine]\n"})
    (repo / "a").symlink_to(".")
    (repo / "b").symlink_to("a/..")
    refused(repo, ".", "outside the repository")


@pytest.mark.parametrize(("field", "body"), [
    ("configMapGenerator[].files", "configMapGenerator:\n- name: g\n  files: [../machine/secret.env]\n"),
    ("configMapGenerator[].files", "configMapGenerator:\n- name: g\n  files: [key=../machine/secret.env]\n"),
    ("secretGenerator[].envs", "secretGenerator:\n- name: g\n  envs: [../machine/secret.env]\n"),
    ("secretGenerator[].envs", "secretGenerator:\n- name: g\n  env: ../machine/secret.env\n"),
    ("patchesStrategicMerge", "resources: [cm.yaml]\npatchesStrategicMerge: [../machine/patch.yaml]\n"),
    ("patches[].path", "resources: [cm.yaml]\npatches:\n- path: ../machine/patch.yaml\n"),
    ("patchesJson6902[].path", "resources: [cm.yaml]\npatchesJson6902:\n- target: {version: v1, kind: ConfigMap, "
     "name: app}\n  path: ../machine/patch.yaml\n"),
    ("replacements[].path", "resources: [cm.yaml]\nreplacements:\n- path: ../machine/patch.yaml\n"),
    ("transformers", "resources: [cm.yaml]\ntransformers: [../machine/patch.yaml]\n"),
    ("generators", "generators: [../machine]\n"),
    ("validators", "validators: [../machine/patch.yaml]\n"),
    ("crds", "crds: [../machine/patch.yaml]\n"),
    ("configurations", "configurations: [../machine/patch.yaml]\n"),
    ("openapi.path", "openapi:\n  path: ../machine/patch.yaml\n"),
])
def test_files_outside_the_repository_are_refused_in_every_field(tmp_path: Path, field: str, body: str) -> None:
    # The repository is `tmp_path/repo`; `tmp_path/machine` is outside it.
    repo = tmp_path / "repo"
    write(tmp_path / "machine", {"secret.env": f"TOKEN={MACHINE_SECRET}\n", "patch.yaml": cm("app", MACHINE_SECRET),
                                 "kustomization.yaml": "resources: [patch.yaml]\n"})
    write(repo, {"kustomization.yaml": body, "cm.yaml": cm("app")})
    refused(repo, ".", field, "outside the repository")


@pytest.mark.parametrize(("field", "body"), [
    ("resources", "resources: [https://raw.githubusercontent.com/o/r/main/cm.yaml]\n"),
    ("resources", "resources: ['github.com/org/repo//deploy?ref=v1']\n"),
    ("components", "components: [git@github.com:org/repo.git]\n"),
    ("transformers", "transformers: [https://example.com/t.yaml]\n"),
    ("generators", "generators: [git::https://example.com/g]\n"),
    ("configMapGenerator[].files", "configMapGenerator:\n- name: g\n  files: [https://example.com/f]\n"),
    ("patches[].path", "patches:\n- path: https://example.com/p.yaml\n"),
    ("crds", "crds: [https://example.com/crd.yaml]\n"),
])
def test_remote_references_are_refused_in_every_field(tmp_path: Path, field: str, body: str) -> None:
    write(tmp_path, {"kustomization.yaml": body})
    refused(tmp_path, ".", field, "remote reference")


def test_a_missing_resource_is_refused_rather_than_fetched(tmp_path: Path) -> None:
    # kustomize would retry `example.org/x` as a remote repository.
    write(tmp_path, {"kustomization.yaml": "resources: [example.org/x]\n"})
    refused(tmp_path, ".", "does not exist in the repository")


def test_helm_charts_are_refused(tmp_path: Path) -> None:
    write(tmp_path, {"kustomization.yaml": "helmCharts:\n- name: x\n  repo: https://charts.example.com\n"})
    refused(tmp_path, ".", "helmCharts")


def test_legitimate_layouts_still_build(tmp_path: Path) -> None:
    write(tmp_path, {
        "base/kustomization.yaml": "resources: [cm.yaml]\n",
        "base/cm.yaml": cm("app"),
        "components/extra/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                                               "resources: [extra.yaml]\n",
        "components/extra/extra.yaml": cm("extra"),
        "overlays/prod/kustomization.yaml": """
            resources: [../../base]
            components: [../../components/extra]
            configMapGenerator:
            - name: gen
              files: [settings.txt]
              envs: [vars.env]
            patches:
            - path: patch.yaml
            """,
        "overlays/prod/settings.txt": "a=1\n",
        "overlays/prod/vars.env": "B=2\n",
        "overlays/prod/patch.yaml": cm("app", "patched"),
    })
    built = {m.obj["metadata"]["name"]: m.obj for m in render(tmp_path, "overlays/prod")}
    assert set(built) == {"app", "extra"} | {n for n in built if n.startswith("gen-")}
    assert any(n.startswith("gen-") for n in built)
    assert built["app"]["data"]["v"] == "patched"


def test_the_object_limit_names_the_limit(tmp_path: Path) -> None:
    write(tmp_path, {"many.yaml": "---\n".join(cm(f"c{i}") for i in range(30))})
    with pytest.raises(BuildFailed, match=r"max_objects=10.*KUBECTL_GITOPS_MAX_OBJECTS"):
        render(tmp_path, ".", limits=Limits(max_objects=10))


def test_a_billion_laughs_file_stops_at_the_node_limit(tmp_path: Path) -> None:
    levels = ["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]" for i in range(8)]
    write(tmp_path, {"laughs.yaml": "\n".join(levels) + "\n"})
    assert (tmp_path / "laughs.yaml").stat().st_size < 600
    with pytest.raises(BuildFailed, match=r"laughs.yaml document 1: .*max_yaml_nodes"):
        render(tmp_path, ".")


def test_secret_values_are_masked_in_build_errors(tmp_path: Path) -> None:
    write(tmp_path, {"cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${NAME}\n"})
    with pytest.raises(BuildFailed) as err:
        render(tmp_path, ".", {"NAME": "Not_A_Valid_Name_S3cret"}, secrets=["Not_A_Valid_Name_S3cret"])
    assert "Not_A_Valid_Name_S3cret" not in str(err.value) and "***" in str(err.value)


def test_a_nul_byte_in_the_path_is_a_build_error(tmp_path: Path) -> None:
    with pytest.raises(BuildFailed, match="NUL"):
        render(tmp_path, "apps\x00")


@pytest.mark.parametrize(("field", "config"), [
    ("generators", "apiVersion: builtin\nkind: ConfigMapGenerator\nmetadata: {name: g}\n"
                   "files: [http://169.254.169.254/latest/meta-data/iam]\n"),
    ("transformers", "apiVersion: builtin\nkind: PatchTransformer\nmetadata: {name: p}\n"
                     "path: https://example.com/patch.yaml\ntarget: {kind: ConfigMap}\n"),
])
def test_plugin_configs_cannot_name_remote_files(tmp_path: Path, field: str, config: str) -> None:
    # kustomize fetches an http(s) URL in a plugin config from this machine's network, load
    # restrictor or not: a request forgery from the syncing machine.
    write(tmp_path, {"kustomization.yaml": f"resources: [cm.yaml]\n{field}: [plugin.yaml]\n", "cm.yaml": cm("app"),
                     "plugin.yaml": config})
    refused(tmp_path, ".", "plugin.yaml", "remote reference")
    inline = "    " + config.replace("\n", "\n    ")
    write(tmp_path, {"kustomization.yaml": f"resources: [cm.yaml]\n{field}:\n- |\n{inline}\n"})
    refused(tmp_path, ".", "remote reference")


def test_local_plugin_configs_still_build(tmp_path: Path) -> None:
    write(tmp_path, {"kustomization.yaml": "resources: [cm.yaml]\ntransformers: [labels.yaml]\n", "cm.yaml": cm("app"),
                     "labels.yaml": "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: l}\n"
                                    "labels: {team: a}\nfieldSpecs: [{path: metadata/labels, create: true}]\n"})
    (built,) = render(tmp_path, ".")
    assert built.obj["metadata"]["labels"] == {"team": "a"}


@pytest.mark.parametrize(("name", "text"), [
    ("flow.yaml", "a: " + "[" * 300_000 + "]" * 300_000 + "\n"),
    ("compact.yaml", "- " * 300_000 + "x\n"),
    ("indented.yaml", "x:\n" + "".join(" " * i + "- \n" for i in range(1, 3000))),
    ("keys.yaml", "? " * 300_000 + "x\n"),
    ("deep.json", "[" * 300_000 + "]" * 300_000),
    ("just-over.yaml", "a: " + "[" * 101 + "]" * 101 + "\n"),
])
def test_deep_nesting_is_refused_without_crashing(tmp_path: Path, name: str, text: str) -> None:
    # libyaml's C composer would overflow the C stack (a segfault, not an exception) on these.
    write(tmp_path, {name: text})
    started = time.perf_counter()
    # (libyaml's own parser refuses very deep *flow* nesting first, with its own clean message.)
    with pytest.raises(BuildFailed, match=rf"{re.escape(name)} document 1.*(max_depth=100|maximum nesting depth)"):
        render(tmp_path, ".")
    assert time.perf_counter() - started < 10


def test_depth_within_the_limit_still_parses(tmp_path: Path) -> None:
    nested = "v"
    for _ in range(90):
        nested = "{k: " + nested + "}"
    write(tmp_path, {"cm.yaml": cm("app") + f"  deep: '{'x' * 3}'\nextra: {nested}\n"})
    (built,) = render(tmp_path, ".")
    assert built.obj["metadata"]["name"] == "app"
