"""Render a Sync's path into manifests: `kubectl kustomize` when there is a kustomization,
otherwise every YAML/JSON file under the path. The only module that runs a subprocess.

Everything after the bytes leave kustomize or the files (substitution, parsing, validation)
is the pure core's; this module only finds inputs, refuses remote bases and escapes from the
source tree, and turns kustomize's failures into BuildFailed naming the path.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kubectl_gitops.core.errors import BuildFailed
from kubectl_gitops.core.manifests import Manifest, check_duplicates, parse_documents, validate
from kubectl_gitops.core.substitute import substitute

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_REMOTE_MARKERS = ("://", "git@", "github.com/", "gitlab.com/", "bitbucket.org/", "?ref=")


def resolve_path(root: Path, path: str) -> Path:
    """The Sync's path inside the exported tree; refuses paths that leave it."""
    root = root.resolve()
    target = (root / path.lstrip("/")).resolve()
    if target != root and root not in target.parents:
        raise BuildFailed(f"path {path!r} points outside the source tree")
    if not target.exists():
        raise BuildFailed(f"path {path!r} does not exist in this revision")
    return target


def render(root: Path, path: str, variables: Mapping[str, str] | None = None, *, strict: bool = False,
           allow_remote_bases: bool = False, timeout: float = 120) -> list[Manifest]:
    """Build the manifests at `root/path`; raise BuildFailed naming file, document and reason."""
    base = resolve_path(root, path)
    variables = variables or {}
    if base.is_file():
        docs = _read_file(base, base.name, variables, strict)
    elif _kustomization(base):
        if not allow_remote_bases:
            _refuse_remote(base, root.resolve(), set())
        text = _kustomize(base, timeout)
        label = f"{path.rstrip('/') or '.'} (kustomize build)"
        docs = parse_documents(substitute(text, variables, strict=strict, source=label), label)
    else:
        docs = []
        for file in _manifest_files(base):
            docs += _read_file(file, str(file.relative_to(base)), variables, strict)
    validate(docs)
    check_duplicates(docs)
    return docs


def _read_file(file: Path, label: str, variables: Mapping[str, str], strict: bool) -> list[Manifest]:
    try:
        text = file.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise BuildFailed(f"{label}: cannot read: {err}") from err
    return parse_documents(substitute(text, variables, strict=strict, source=label), label)


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


def _refuse_remote(directory: Path, root: Path, seen: set[Path]) -> None:
    """Walk local resources/bases/components; any remote reference is a BuildFailed."""
    if directory in seen:
        return
    seen.add(directory)
    kfile = _kustomization(directory)
    if kfile is None:
        return
    try:
        doc: Any = yaml.safe_load(kfile.read_text()) or {}
    except yaml.YAMLError as err:
        raise BuildFailed(f"{kfile.relative_to(root)}: invalid YAML: {err}") from err
    if not isinstance(doc, dict):
        raise BuildFailed(f"{kfile.relative_to(root)}: not a kustomization (expected a mapping)")
    for key in ("resources", "bases", "components"):
        for raw in doc.get(key) or []:
            entry = str(raw)
            if any(marker in entry for marker in _REMOTE_MARKERS):
                raise BuildFailed(f"{kfile.relative_to(root)}: {key} entry {entry!r} is a remote base, "
                                  "and remote bases are disabled: vendor it into the repository")
            local = (directory / entry).resolve()
            if local.is_dir():
                _refuse_remote(local, root, seen)


def _kustomize(directory: Path, timeout: float) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise BuildFailed("kubectl is not on PATH; it is needed to build kustomizations")
    try:
        proc = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise BuildFailed(f"kustomize build of {directory.name} timed out after {timeout:.0f}s") from err
    if proc.returncode != 0:
        reason = proc.stderr.strip().removeprefix("error: ")
        raise BuildFailed(f"kustomize build failed: {reason}")
    return proc.stdout
