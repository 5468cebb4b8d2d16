"""Named bounds on what one repository may cost the machine that syncs it.

A repository is untrusted input: a few hundred bytes can ask for gigabytes (a YAML "billion
laughs", a Git tree that references itself ten levels deep) or nest deep enough to overflow the
C stack of a parser. Every bound lives here with its default and the environment variable that
changes it, so the adapters, the core and docs/repository-trust.md agree on one table. Hitting a
bound is a SourceFailed or BuildFailed that names the file and the limit (`LimitExceeded.hint`).

Pure: the caller passes the environment (`Limits.from_env(os.environ)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

ENV_PREFIX = "KUBECTL_GITOPS_"


@dataclass(frozen=True)
class Limits:
    """Defaults fit a large real repository (tens of thousands of manifests) with room to spare."""

    max_files: int = 100_000
    """Tree entries (files and directories) one export may visit: bounds a "git bomb"."""
    max_bytes: int = 512 * 1024 * 1024
    """Bytes one export may write to disk (and one kustomize build may print)."""
    max_objects: int = 25_000
    """Kubernetes objects one build may produce."""
    max_yaml_nodes: int = 5_000_000
    """YAML/JSON values one file (or one kustomize output) may expand to, aliases counted each time used."""
    max_depth: int = 100
    """Nesting depth of mappings and sequences in one YAML/JSON document."""

    @staticmethod
    def env_name(field_name: str) -> str:
        return ENV_PREFIX + field_name.upper()

    def hint(self, field_name: str) -> str:
        """`limit max_files=100000, set KUBECTL_GITOPS_MAX_FILES to change it`."""
        return f"limit {field_name}={getattr(self, field_name)}, set {self.env_name(field_name)} to change it"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        """Defaults overridden by KUBECTL_GITOPS_MAX_*; a value that is not a positive integer is an error."""
        values: dict[str, int] = {}
        for item in fields(cls):
            raw = env.get(cls.env_name(item.name))
            if raw is None or raw.strip() == "":
                continue
            try:
                value = int(raw.strip().replace("_", ""))
            except ValueError:
                value = 0
            if value <= 0:
                raise ValueError(f"{cls.env_name(item.name)}={raw!r} is not a positive integer")
            values[item.name] = value
        return cls(**values)


DEFAULT_LIMITS = Limits()
