"""Where the plugin keeps files on this machine (XDG cache), in one place."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$KUBECTL_GITOPS_CACHE, else $XDG_CACHE_HOME/kubectl-gitops, else ~/.cache/kubectl-gitops."""
    explicit = os.environ.get("KUBECTL_GITOPS_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubectl-gitops"
