"""Semantic versions and the range constraints GitSource `ref.semver` is written in.

Flux resolves `ref.semver` with Masterminds/semver, so users write its dialect: `>=1.0.0 <2.0.0`,
`>=1.2`, `~1.2`, `^1.2.3`, `1.2.x`, `*`, `1.2 - 1.4`, AND by comma or space, OR by `||`. This
module reads that dialect and picks the highest tag that satisfies it. It is pure (strings in,
frozen values out) so the git adapter only has to list tags and call `best_match`.

Every comparator is lowered to plain bounds on full versions when it is parsed (`~1.2` becomes
`>=1.2.0 <1.3.0`), so matching is a handful of comparisons and the odd partial-version rules of the
dialect live in one place (`_lower`).

Prereleases: a tag such as `v2.0.0-rc.1` is a candidate only for an OR branch whose constraint
mentions a prerelease itself (`>=2.0.0-0`, `~2.0.0-rc`); `>=1.0.0` never selects one. This is the
rule users know from Masterminds and npm, applied per OR branch rather than per comparator so that
`>=1.0.0-rc.1 <2.0.0` does what it reads as.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import total_ordering

from kubectl_gitops.core.errors import SourceFailed

_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VERSION_RE = re.compile(rf"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-({_IDENT}))?(?:\+({_IDENT}))?$")
_WILD = r"(?:\d+|[xX*])"
_CONSTRAINT_VERSION_RE = re.compile(rf"^[vV]?({_WILD})(?:\.({_WILD}))?(?:\.({_WILD}))?(?:-({_IDENT}))?(?:\+{_IDENT})?$")
_OPERATOR_RE = re.compile(r"^(!=|>=|=>|<=|=<|~>|>|<|=|~|\^)?(.*)$")
_HYPHEN_RE = re.compile(r"(\S+)\s+-\s+(\S+)")
_LOWEST_PRERELEASE = ("0",)  # no prerelease of a version sorts below `X.Y.Z-0`
_OPERATORS = frozenset({"!=", ">=", "=>", "<=", "=<", "~>", ">", "<", "=", "~", "^"})


@total_ordering
@dataclass(frozen=True)
class Version:
    """A semantic version; build metadata is kept for display but never compared (semver §10)."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()
    build: str = ""

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        return text + (f"+{self.build}" if self.build else "")

    def _key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self._key() == other._key() and self.prerelease == other.prerelease

    def __hash__(self) -> int:
        return hash((self._key(), self.prerelease))

    def __lt__(self, other: Version) -> bool:
        if self._key() != other._key():
            return self._key() < other._key()
        return _prerelease_less(self.prerelease, other.prerelease)


def _prerelease_less(left: tuple[str, ...], right: tuple[str, ...]) -> bool:
    """Semver §11: a release outranks its prereleases; identifiers compare numerically if numeric."""
    if not left or not right:
        return bool(left) and not right
    for a, b in zip(left, right, strict=False):
        if a == b:
            continue
        if a.isdigit() and b.isdigit():
            return int(a) < int(b)
        if a.isdigit() != b.isdigit():
            return a.isdigit()  # numeric identifiers have lower precedence than alphanumeric ones
        return a < b
    return len(left) < len(right)


def _valid_prerelease(parts: tuple[str, ...]) -> bool:
    return all(not (p.isdigit() and len(p) > 1 and p.startswith("0")) for p in parts)


def _no_leading_zero(*numbers: str | None) -> bool:
    return all(n is None or n == "0" or not n.startswith("0") for n in numbers)


def parse_version(tag: str) -> Version | None:
    """The version a tag names (`v1.2.3`, `1.2.3-rc.1+b5`; `v1.2` reads as 1.2.0 like Flux), else None."""
    match = _VERSION_RE.match(tag.strip())
    if not match:
        return None
    major, minor, patch, pre, build = match.groups()
    prerelease = tuple(pre.split(".")) if pre else ()
    if not _no_leading_zero(major, minor, patch) or not _valid_prerelease(prerelease):
        return None
    return Version(int(major), int(minor or 0), int(patch or 0), prerelease, build or "")


@dataclass(frozen=True)
class Bound:
    """One primitive test `version <op> self.version`; `op` is one of < <= > >= = !=."""

    op: str
    version: Version

    def admits(self, version: Version) -> bool:
        return _COMPARE[self.op](version, self.version)


_COMPARE: dict[str, Callable[[Version, Version], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq, "!=": operator.ne,
}


@dataclass(frozen=True)
class Exclusion:
    """`!=1.2` excludes a whole span: every version in [low, high)."""

    low: Version
    high: Version

    def admits(self, version: Version) -> bool:
        return not (self.low <= version < self.high)


Check = Bound | Exclusion


@dataclass(frozen=True)
class Branch:
    """An AND of checks (one side of `||`); `prereleases` says whether it mentioned one."""

    checks: tuple[Check, ...]
    prereleases: bool

    def admits(self, version: Version) -> bool:
        if version.prerelease and not self.prereleases:
            return False
        return all(check.admits(version) for check in self.checks)


@dataclass(frozen=True)
class Constraint:
    """A parsed range: an OR of branches. `text` is what the user wrote."""

    text: str
    branches: tuple[Branch, ...]

    def admits(self, version: Version) -> bool:
        return any(branch.admits(version) for branch in self.branches)


@dataclass(frozen=True)
class _Partial:
    """A constraint's version with wildcards: `parts` holds only the numbers actually given."""

    parts: tuple[int, ...]
    prerelease: tuple[str, ...]

    def floor(self) -> Version:
        major, minor, patch = (*self.parts, 0, 0, 0)[:3]
        return Version(major, minor, patch, self.prerelease)

    def bump(self, index: int) -> Version:
        """The first version past this one at position `index` (0 major, 1 minor, 2 patch).

        It is the lowest prerelease of that version (`1.3.0-0`), so an upper bound made from it
        (`~1.2` -> `<1.3.0-0`) keeps out 1.3.0's prereleases as well as 1.3.0.
        """
        numbers = [*self.parts, 0, 0, 0][:3]
        numbers[index] += 1
        numbers[index + 1:] = [0] * (2 - index)
        return Version(numbers[0], numbers[1], numbers[2], _LOWEST_PRERELEASE)

    def next_unspecified(self) -> Version:
        """The first version not covered by the wildcard (`1.2.x` -> 1.3.0); full versions have none."""
        return self.bump(len(self.parts) - 1)


def _invalid(text: str, why: str) -> SourceFailed:
    return SourceFailed(f"invalid semver range {text!r}: {why}")


def _parse_partial(token: str, text: str) -> _Partial:
    match = _CONSTRAINT_VERSION_RE.match(token)
    if not match:
        raise _invalid(text, f"{token!r} is not a version")
    major, minor, patch, pre = match.groups()
    parts: list[int] = []
    for number in (major, minor, patch):
        if number is None or not number.isdigit():
            break
        parts.append(int(number))
    prerelease = tuple(pre.split(".")) if pre else ()
    if prerelease and len(parts) < 3:
        raise _invalid(text, f"{token!r} has a prerelease but not a full version")
    return _Partial(tuple(parts), prerelease)


def _caret(partial: _Partial) -> tuple[Check, ...]:
    """`^` fixes the leftmost non-zero number that was given: ^0.2.3 -> <0.3.0, ^0.0.3 -> <0.0.4."""
    index = 0
    while index < len(partial.parts) - 1 and partial.parts[index] == 0:
        index += 1
    upper = partial.bump(index) if partial.parts else None
    lower: tuple[Check, ...] = (Bound(">=", partial.floor()),)
    return lower if upper is None else (*lower, Bound("<", upper))


def _tilde(partial: _Partial) -> tuple[Check, ...]:
    """`~1.2.3` and `~1.2` allow patch changes, `~1` minor ones."""
    if not partial.parts:
        return (Bound(">=", partial.floor()),)
    upper = partial.bump(0 if len(partial.parts) == 1 else 1)
    return (Bound(">=", partial.floor()), Bound("<", upper))


def _lower(op: str, partial: _Partial) -> tuple[Check, ...]:
    """Lower one comparator to bounds on full versions, following the Masterminds meaning of partials."""
    op = {"=>": ">=", "=<": "<=", "~>": "~"}.get(op, op)
    if not partial.parts:  # `*`, `x`, `>=*`: anything (but `<*`/`>*`/`!=*` admit nothing)
        return (Bound("<", Version(0, 0, 0, _LOWEST_PRERELEASE)),) if op in ("<", ">", "!=") else ()
    if op == "^":
        return _caret(partial)
    if op in ("~", "", "="):
        return _equal_or_tilde(op, partial)
    return _compare(op, partial)


def _equal_or_tilde(op: str, partial: _Partial) -> tuple[Check, ...]:
    """`=1.2` and a bare `1.2` mean `~1.2`; only a full version is an exact match."""
    if op == "~" or len(partial.parts) < 3:
        return _tilde(partial)
    return (Bound("=", partial.floor()),)


def _compare(op: str, partial: _Partial) -> tuple[Check, ...]:
    """<, <=, >, >=, != against a possibly partial version."""
    full = len(partial.parts) == 3
    if op == "!=":
        if full:
            return (Bound("!=", partial.floor()),)
        return (Exclusion(Version(*partial.floor()._key(), _LOWEST_PRERELEASE), partial.next_unspecified()),)
    if full or op in (">=", "<"):
        return (Bound(op, partial.floor()),)
    # `>1.2` means past every 1.2.x and `<=1.2` includes every 1.2.x.
    return (Bound(">=" if op == ">" else "<", partial.next_unspecified()),)


def _tokens(branch: str) -> list[tuple[str, str]]:
    """Split an AND branch into (operator, version) pairs; `>= 1.2` (a space after the operator) is fine."""
    words = branch.replace(",", " ").split()
    pairs: list[tuple[str, str]] = []
    pending = ""
    for word in words:
        if word in _OPERATORS:
            pending += word
            continue
        match = _OPERATOR_RE.match(word)
        op, version = (match.group(1) or "", match.group(2)) if match else ("", word)
        pairs.append((pending + op, version))
        pending = ""
    if pending:
        pairs.append((pending, ""))
    return pairs


def _parse_branch(branch: str, text: str) -> Branch:
    branch = _HYPHEN_RE.sub(r">=\1 <=\2", branch)
    pairs = _tokens(branch)
    if not pairs:
        raise _invalid(text, "an empty alternative")
    checks: list[Check] = []
    prereleases = False
    for op, token in pairs:
        if op not in _OPERATORS and op:
            raise _invalid(text, f"unknown operator {op!r}")
        partial = _parse_partial(token, text)
        prereleases = prereleases or bool(partial.prerelease)
        checks.extend(_lower(op, partial))
    return Branch(tuple(checks), prereleases)


def parse_constraint(text: str) -> Constraint:
    """Parse a range; raise SourceFailed naming it when it cannot be read."""
    if not text.strip():
        raise _invalid(text, "it is empty")
    branches = tuple(_parse_branch(part, text) for part in text.split("||"))
    return Constraint(text, branches)


def best_match(tags: Iterable[str], constraint: str) -> str | None:
    """The tag with the highest version admitted by `constraint`, spelled as given; None if none is.

    Tags that are not versions are skipped. Two tags naming the same version (`v1.0.0`, `1.0.0`)
    are decided by the tag name, so the answer never depends on the order tags were listed in.
    """
    parsed = parse_constraint(constraint)
    best: tuple[Version, str] | None = None
    for tag in tags:
        version = parse_version(tag)
        if version is None or not parsed.admits(version):
            continue
        if best is None or (version, tag) > best:
            best = (version, tag)
    return best[1] if best else None
