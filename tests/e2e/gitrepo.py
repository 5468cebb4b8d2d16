"""A real Git repository in a test's tmp_path, driven by the git CLI, served to the plugin as file://.

The e2e tests need what users have: commits, lightweight and annotated tags, branches, files
added and removed. Everything goes through the `git` binary (not GitPython) so the repository is
exactly what a person would push, and nothing in the test shares code with the plugin's Git adapter.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

# Fixed identity and no signing, whatever the machine's global git config says.
_CONFIG = ("-c", "user.name=e2e", "-c", "user.email=e2e@example.com", "-c", "commit.gpgsign=false",
           "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main")


class GitRepo:
    """A working repository on branch `main`; `url` is what a GitSource points at."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    def git(self, *args: str) -> str:
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"}
        proc = subprocess.run(["git", *_CONFIG, *args], cwd=self.path, capture_output=True, text=True,
                              env=env, check=False, timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout.strip()

    def write(self, rel: str, text: str) -> GitRepo:
        """Write a file (dedented, so tests can indent YAML inline); returns self for chaining."""
        file = self.path / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(textwrap.dedent(text).lstrip("\n"))
        return self

    def remove(self, rel: str) -> GitRepo:
        self.git("rm", "-q", "-r", "--", rel)
        return self

    def commit(self, message: str = "change") -> str:
        """Commit everything in the work tree; returns the new commit's SHA."""
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def tag(self, name: str, *, annotated: bool = False) -> str:
        """Tag HEAD; returns the SHA of the commit tagged (not of an annotated tag object)."""
        if annotated:
            self.git("tag", "-a", name, "-m", f"release {name}")
        else:
            self.git("tag", name)
        return self.git("rev-parse", f"{name}^{{commit}}")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def checkout(self, branch: str, *, create: bool = False) -> GitRepo:
        self.git("checkout", "-q", *(["-b"] if create else []), branch)
        return self
