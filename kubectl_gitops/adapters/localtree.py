"""A local working tree as a source: `build --path DIR` and `diff --path DIR` preview a branch.

The build of a local directory must be the build of the same files in Git, containment checks
included, so the tree is rooted where Git would root it: at the work tree that holds the
directory (the nearest parent with `.git`), the directory becoming the Sync's path inside it.
Outside any repository the directory itself is the root. The revision stamped on the objects
is the work tree's `<branch>@sha1:<HEAD>` as a GitSource tracking that branch would report it
(uncommitted changes are rendered under HEAD's revision), or `--revision` when given.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from kubectl_gitops.adapters.git import base_env
from kubectl_gitops.core.errors import UsageError

LOCAL_REVISION = "local"
"""The revision of a directory that is in no Git work tree (and no --revision was given)."""


@dataclass(frozen=True)
class LocalTree:
    root: Path
    path: str
    """The directory relative to `root`, as a Sync's spec.path (`./` for the root itself)."""
    revision: str
    sha: str


def open_tree(directory: str, revision: str | None = None) -> LocalTree:
    """The work tree holding `directory`; UsageError when it is not a readable directory."""
    target = Path(directory).expanduser()
    if not target.exists():
        raise UsageError(f"--path {directory}: no such directory")
    if not target.is_dir():
        raise UsageError(f"--path {directory}: not a directory")
    target = target.resolve()
    root = next((p for p in (target, *target.parents) if (p / ".git").exists()), target)
    rel = target.relative_to(root).as_posix()
    path = "./" if rel == "." else f"./{rel}"
    if revision:
        return LocalTree(root, path, revision, revision.rpartition(":")[2])
    if root == target and not (root / ".git").exists():
        return LocalTree(root, path, LOCAL_REVISION, "")
    sha = _git(root, "rev-parse", "HEAD")
    branch = _git(root, "rev-parse", "--abbrev-ref", "HEAD")
    if not sha:
        return LocalTree(root, path, LOCAL_REVISION, "")
    ref = branch if branch and branch != "HEAD" else "HEAD"
    return LocalTree(root, path, f"{ref}@sha1:{sha}", sha)


def _git(root: Path, *args: str) -> str:
    """One git query in `root` ("" when it fails: a repository without commits has no HEAD)."""
    env = base_env()
    env["GIT_CEILING_DIRECTORIES"] = str(root.parent)
    try:
        proc = subprocess.run(["git", "-c", f"safe.directory={root}", *args], cwd=root, env=env,
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout.strip() if proc.returncode == 0 else ""
