"""Render a Sync's path into manifests: `kubectl kustomize` when there is a kustomization (or a
standalone `kustomize build` where there is no kubectl, as in the image; see kustomize_command),
otherwise every YAML/JSON file under the path. The only module that runs kustomize.

Everything after the bytes leave kustomize or the files (substitution, parsing, validation)
is the pure core's; this module finds inputs and keeps the build inside the repository.

Why our own checks before kustomize: `kubectl kustomize` defaults to LoadRestrictionsRootOnly,
but its root is the *kustomization's* directory, and the restriction covers files only: a base
or component *directory* may be anywhere on the machine (`resources: [../../../../home/you/x]`
builds fine), and a missing local path is retried as a remote Git URL (cloned with the machine's
Git credentials). Flux builds on a filesystem rooted at the repository for that reason. So every
path a kustomization names, in every field kustomize reads files from (resources, bases,
components, crds, configurations, generators, transformers, validators, patches,
patchesStrategicMerge, patchesJson6902, replacements, configMap/secretGenerator files and envs,
openapi, helm), is resolved (symlinks included) and must exist inside the repository, and
anything that looks remote is refused, in every field. kustomize then runs with its own
restriction on top, a throw-away HOME, and no Git configuration or credentials of the machine.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.core.limits import DEFAULT_LIMITS, Limits
from kubectl_gitops.core.manifests import Manifest, check_duplicates, validate
from kubectl_gitops.core.substitute import mask, substitute_documents

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_BUILD_TIMEOUT = 120.0
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:|::|\?ref=|"
                     r"^(github\.com|gitlab\.com|bitbucket\.org)/")
# Fields holding a list of paths (files or kustomization directories); entries with a newline are inline YAML.
_PATH_LISTS = ("resources", "bases", "components", "crds", "configurations", "generators", "transformers",
               "validators", "patchesStrategicMerge")
_PLUGIN_FIELDS = ("generators", "transformers", "validators")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Fields holding a list of mappings, each of which may name a file under `path`.
_PATH_ITEMS = ("patches", "patchesJson6902", "replacements")
_GENERATORS = ("configMapGenerator", "secretGenerator")
# Passed through to kustomize; everything else of this machine's environment is left out.
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
KUSTOMIZE_ENV = "KUBECTL_GITOPS_KUSTOMIZE"


def resolve_path(root: Path, path: str) -> Path:
    """The Sync's path inside the exported tree; refuses paths that leave it."""
    if "\x00" in path:
        raise BuildFailed(f"path {path!r} contains a NUL byte")
    root = root.resolve()
    target = (root / path.lstrip("/")).resolve()
    if not _inside(target, root):
        raise BuildFailed(f"path {path!r} points outside the source tree")
    if not target.exists():
        raise BuildFailed(f"path {path!r} does not exist in this revision")
    return target


def render(root: Path, path: str, variables: Mapping[str, str] | None = None, *, strict: bool = False,
           allow_remote_bases: bool = False, timeout: float = DEFAULT_BUILD_TIMEOUT,
           limits: Limits = DEFAULT_LIMITS, secrets: Sequence[str] = ()) -> list[Manifest]:
    """Build the manifests at `root/path`; raise BuildFailed naming file, document and reason.

    `secrets` are values (from Secrets) that must not appear in any message: they are masked."""
    try:
        docs = _render(root, path, variables or {}, strict, allow_remote_bases, timeout, limits)
        validate(docs)
        check_duplicates(docs)
    except BuildFailed as err:
        if secrets:
            raise BuildFailed(mask(str(err), secrets)) from None
        raise
    return docs


def _render(root: Path, path: str, variables: Mapping[str, str], strict: bool, allow_remote: bool,
            timeout: float, limits: Limits) -> list[Manifest]:
    base = resolve_path(root, path)
    if base.is_file():
        docs = _read_file(base, base.name, variables, strict, limits)
    elif _kustomization(base):
        _check_kustomization(base, root.resolve(), allow_remote, set())
        text = _kustomize(base, timeout, limits, allow_remote)
        label = f"{path.rstrip('/') or '.'} (kustomize build)"
        docs = substitute_documents(text, variables, label, strict=strict, limits=limits)
    else:
        docs = []
        for file in _manifest_files(base):
            docs += _read_file(file, str(file.relative_to(base)), variables, strict, limits)
            _check_count(docs, path, limits)
    _check_count(docs, path, limits)
    return docs


def _check_count(docs: list[Manifest], path: str, limits: Limits) -> None:
    if len(docs) > limits.max_objects:
        raise BuildFailed(f"{path}: the build has more than {limits.max_objects} objects "
                          f"({limits.hint('max_objects')})")


def _read_file(file: Path, label: str, variables: Mapping[str, str], strict: bool,
               limits: Limits) -> list[Manifest]:
    try:
        size = file.stat().st_size
        if size > limits.max_bytes:
            raise BuildFailed(f"{label}: {size} bytes is too large to read ({limits.hint('max_bytes')})")
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise BuildFailed(f"{label}: cannot read: {err}") from err
    return substitute_documents(text, variables, label, strict=strict, limits=limits)


def _manifest_files(base: Path) -> list[Path]:
    files = []
    for file in sorted(base.rglob("*")):
        rel = file.relative_to(base)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if file.is_file() and file.suffix in MANIFEST_SUFFIXES:
            files.append(file)
    return files


def _kustomization(directory: Path) -> Path | None:
    for name in KUSTOMIZATION_FILES:
        if (directory / name).is_file():
            return directory / name
    return None


def _inside(target: Path, root: Path) -> bool:
    return target == root or root in target.parents


# --- what a kustomization may reference ------------------------------------------------------


def _check_kustomization(directory: Path, root: Path, allow_remote: bool, seen: set[Path]) -> None:
    """Walk the kustomization graph from `directory`; every referenced path stays in `root`."""
    if directory in seen:
        return
    seen.add(directory)
    kfile = _kustomization(directory)
    if kfile is None:
        return
    label = str(kfile.relative_to(root))
    docs = _read_yaml(kfile, label)
    doc: Any = docs[0] if docs else {}
    if not isinstance(doc, dict):
        raise BuildFailed(f"{label}: not a kustomization (expected a mapping)")
    if doc.get("helmCharts") or doc.get("helmChartInflationGenerator"):
        raise BuildFailed(f"{label}: helmCharts are not supported (kustomize would download charts); "
                          "render the chart into the repository instead")
    for field, entry in _references(doc):
        local = _checked(directory, root, label, field, entry, allow_remote)
        if local is not None and local.is_dir():
            _check_kustomization(local, root, allow_remote, seen)
        elif local is not None and field in _PLUGIN_FIELDS and not allow_remote:
            _check_plugin_config(_read_yaml(local, str(local.relative_to(root))), str(local.relative_to(root)))
    if not allow_remote:
        _check_inline_plugins(doc, label)


def _check_inline_plugins(doc: Mapping[str, Any], label: str) -> None:
    for field in _PLUGIN_FIELDS:
        for entry in _as_list(doc.get(field)):
            if isinstance(entry, str) and "\n" in entry:
                _check_plugin_config(_read_yaml_text(entry, f"{label} ({field}, inline)"), f"{label} ({field})")


def _read_yaml(file: Path, label: str) -> list[Any]:
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise BuildFailed(f"{label}: cannot read: {err}") from err
    return _read_yaml_text(text, label)


def _read_yaml_text(text: str, label: str) -> list[Any]:
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as err:
        raise BuildFailed(f"{label}: invalid YAML: {err}") from err


def _check_plugin_config(docs: list[Any], label: str) -> None:
    """Generator/transformer/validator configs: kustomize loads any http(s) URL they name (from
    this machine's network), whatever the load restrictor. No value in them may look remote."""
    todo = list(docs)
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            todo.extend(node.values())
        elif isinstance(node, list):
            todo.extend(node)
        elif isinstance(node, str) and _URL.match(node.strip()):
            raise BuildFailed(f"{label}: {node.strip()!r} is a remote reference, and remote references are "
                              "disabled: vendor it into the repository")


def _references(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field, path) for every path the kustomization names."""
    for field in _PATH_LISTS:
        for entry in _as_list(doc.get(field)):
            if isinstance(entry, str) and "\n" not in entry:
                yield field, entry
    for field in _PATH_ITEMS:
        for item in _as_list(doc.get(field)):
            if isinstance(item, Mapping) and isinstance(item.get("path"), str):
                yield f"{field}[].path", item["path"]
    yield from _generator_files(doc)
    for field, key in (("openapi", "path"), ("helmGlobals", "chartHome"), ("helmGlobals", "configHome")):
        value = doc.get(field)
        if isinstance(value, Mapping) and isinstance(value.get(key), str):
            yield f"{field}.{key}", value[key]


def _generator_files(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """configMapGenerator/secretGenerator `files` (`[key=]path`), `envs` and the older `env`."""
    for field in _GENERATORS:
        for item in _as_list(doc.get(field)):
            if not isinstance(item, Mapping):
                continue
            for entry in _as_list(item.get("files")):
                yield f"{field}[].files", str(entry).split("=", 1)[-1]
            for entry in [*_as_list(item.get("envs")), *([item["env"]] if item.get("env") else [])]:
                yield f"{field}[].envs", str(entry)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _checked(directory: Path, root: Path, label: str, field: str, entry: str, allow_remote: bool) -> Path | None:
    """The local path `entry` names, resolved; BuildFailed if it is remote or leaves the repository."""
    if _REMOTE.search(entry):
        if allow_remote:
            return None
        raise BuildFailed(f"{label}: {field} entry {entry!r} is a remote reference, and remote references "
                          "are disabled: vendor it into the repository")
    if "\x00" in entry:
        raise BuildFailed(f"{label}: {field} entry {entry!r} contains a NUL byte")
    local = (directory / entry).resolve()
    if not _inside(local, root):
        raise BuildFailed(f"{label}: {field} entry {entry!r} points outside the repository")
    if not local.exists():
        # kustomize would retry a missing resource as a remote URL: refuse it here, by name.
        raise BuildFailed(f"{label}: {field} entry {entry!r} does not exist in the repository")
    return local


# --- running kustomize -----------------------------------------------------------------------


def kustomize_command() -> list[str]:
    """How kustomizations are built: $KUBECTL_GITOPS_KUSTOMIZE (a standalone kustomize binary), else
    `kubectl kustomize` when kubectl is on PATH, else a standalone `kustomize build` (the image has no
    kubectl). Both default to the same load restrictor (LoadRestrictionsRootOnly)."""
    explicit = os.environ.get(KUSTOMIZE_ENV)
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise BuildFailed(f"{KUSTOMIZE_ENV}={explicit}: no such executable")
        return [found, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize"]
    kustomize = shutil.which("kustomize")
    if kustomize is not None:
        return [kustomize, "build"]
    raise BuildFailed("neither kubectl nor kustomize is on PATH; one of them is needed to build kustomizations "
                      f"(or set {KUSTOMIZE_ENV} to a kustomize binary)")


def _kustomize(directory: Path, timeout: float, limits: Limits, allow_remote: bool) -> str:
    command = kustomize_command()
    with tempfile.TemporaryDirectory(prefix="kubectl-gitops-kustomize-") as tmp:
        env = _isolated_env(Path(tmp), allow_remote)
        out_path = Path(tmp) / "out.yaml"
        with out_path.open("wb") as out:
            try:
                proc = subprocess.run([*command, "--", str(directory)], stdout=out,
                                      stderr=subprocess.PIPE, timeout=timeout, check=False, env=env, cwd=tmp)
            except subprocess.TimeoutExpired as err:
                raise BuildFailed(f"kustomize build of {directory.name} timed out after {timeout:.0f}s") from err
        if proc.returncode != 0:
            reason = proc.stderr.decode(errors="replace").strip().removeprefix("error: ")
            raise BuildFailed(f"kustomize build failed: {reason}")
        size = out_path.stat().st_size
        if size > limits.max_bytes:
            raise BuildFailed(f"kustomize build of {directory.name} printed {size} bytes "
                              f"({limits.hint('max_bytes')})")
        return out_path.read_text(errors="replace")


def _isolated_env(tmp: Path, allow_remote: bool) -> dict[str, str]:
    """No HOME, Git config, credentials or agent of this machine for kustomize (and any git it runs)."""
    home = tmp / "home"
    home.mkdir()
    env = {key: os.environ[key] for key in _KEEP_ENV if key in os.environ}
    env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0",
                "GIT_ASKPASS": "", "SSH_ASKPASS": "", "SSH_AUTH_SOCK": ""})
    if not allow_remote:
        env["GIT_ALLOW_PROTOCOL"] = "none"  # belt and braces: our checks refuse remote bases first
    return env
