"""Post-build variable substitution: `${VAR}` and `${VAR:=default}` in rendered manifests.

Flux users know this from `postBuild.substitute`: values come from the Sync and from
ConfigMaps/Secrets, and are spliced into the text of each YAML document *before* it is parsed,
so a variable can produce any YAML (a number, a list) and not only a string.

Only the two forms above are recognised, deliberately: shell-style `${VAR-x}`, `$VAR` and the
like are left alone, because manifests legitimately carry shell snippets (container commands,
scripts in ConfigMaps) and rewriting them would break those objects. `$${VAR}` is the escape for a
literal `${VAR}`.

A variable without a value and without a default is left in place (the text stays as written),
unless `strict` is set, which makes it a BuildFailed naming every such variable and the source.
A default applies when the variable is unset or set to the empty string (shell `:=` semantics).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kubectl_gitops.core.errors import BuildFailed

_PATTERN = re.compile(r"(\$?)\$\{([A-Za-z_][A-Za-z0-9_]*)(:=([^}]*))?\}")


def substitute(text: str, variables: Mapping[str, str], *, strict: bool = False, source: str = "") -> str:
    """Replace `${VAR}` / `${VAR:=default}` in `text`; `$${VAR}` becomes a literal `${VAR}`."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        escaped, name, has_default, default = match.group(1, 2, 3, 4)
        if escaped:
            return match.group(0)[1:]
        value = variables.get(name)
        if value:
            return value
        if has_default is not None:
            return str(default)
        if value is not None:  # set, but empty, and no default: empty is a value
            return value
        if name not in missing:
            missing.append(name)
        return match.group(0)

    result = _PATTERN.sub(replace, text)
    if strict and missing:
        where = f" in {source}" if source else ""
        names = ", ".join(missing)
        raise BuildFailed(f"variable(s) {names} not set and without a default{where} (strict substitution)")
    return result


def variables_in(text: str) -> list[str]:
    """The variables `text` refers to (escaped ones excluded), in order of first use."""
    seen: list[str] = []
    for match in _PATTERN.finditer(text):
        if not match.group(1) and match.group(2) not in seen:
            seen.append(match.group(2))
    return seen
