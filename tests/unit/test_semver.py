"""Semver tags and the Masterminds/Flux range dialect used by GitSource `ref.semver`."""

from __future__ import annotations

import pytest

from kubectl_gitops.core.errors import SourceFailed
from kubectl_gitops.core.semver import Version, best_match, parse_constraint, parse_version

TAGS = ["v0.9.0", "v1.0.0", "v1.2.0", "v1.2.3", "v1.2.10", "v1.3.0", "v1.10.0", "v2.0.0-rc.1", "v2.0.0",
        "v2.1.0-beta.2", "latest", "release-3"]


def admits(constraint: str, version: str) -> bool:
    parsed = parse_version(version)
    assert parsed is not None, version
    return parse_constraint(constraint).admits(parsed)


@pytest.mark.parametrize(("tag", "expected"), [
    ("v1.2.3", Version(1, 2, 3)),
    ("1.2.3", Version(1, 2, 3)),
    ("v1.2", Version(1, 2, 0)),
    ("1.0.0-rc.1+build.5", Version(1, 0, 0, ("rc", "1"), "build.5")),
])
def test_parse_version(tag: str, expected: Version) -> None:
    parsed = parse_version(tag)
    assert parsed == expected
    assert parsed is not None and parsed.prerelease == expected.prerelease


@pytest.mark.parametrize("tag", ["latest", "v1.2.3.4", "01.2.3", "1.2.3-01", "V1.2.3", "", "1.2.3-", "release-1.2.3"])
def test_parse_version_rejects_non_versions(tag: str) -> None:
    assert parse_version(tag) is None


def test_precedence_follows_semver_spec() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
             "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
    versions = [parse_version(v) for v in order]
    assert all(v is not None for v in versions)
    assert sorted(versions, key=str) != versions  # the test means something: string order differs
    assert sorted(reversed(versions)) == versions  # type: ignore[type-var]
    assert parse_version("1.0.0+a") == parse_version("1.0.0+b")  # build metadata is not compared


@pytest.mark.parametrize(("constraint", "inside", "outside"), [
    (">=1.0.0 <2.0.0", ["1.0.0", "1.9.9"], ["0.9.9", "2.0.0"]),
    (">=1.0.0, <2.0.0", ["1.5.0"], ["2.0.0"]),
    (">= 1.2, < 1.3", ["1.2.0", "1.2.99"], ["1.3.0", "1.1.9"]),
    (">=1.2", ["1.2.0", "5.0.0"], ["1.1.99"]),
    (">1.2", ["1.3.0"], ["1.2.5"]),
    (">1", ["2.0.0"], ["1.9.0"]),
    ("<=1.2", ["1.2.9"], ["1.3.0"]),
    ("<1.2", ["1.1.9"], ["1.2.0"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.2.2", "1.3.0"]),
    ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
    ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
    ("~>1.2", ["1.2.5"], ["1.3.0"]),
    ("^1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4"]),
    ("^1.2.x", ["1.2.0", "1.99.0"], ["2.0.0"]),
    ("1.2.x", ["1.2.0", "1.2.7"], ["1.3.0", "1.1.0"]),
    ("1.x", ["1.0.0", "1.9.9"], ["2.0.0"]),
    ("1.2.*", ["1.2.4"], ["1.3.0"]),
    ("1.2", ["1.2.4"], ["1.3.0"]),
    ("=1.2.3", ["1.2.3"], ["1.2.4"]),
    ("1.2.3", ["1.2.3"], ["1.2.4"]),
    ("!=1.2.3", ["1.2.4"], ["1.2.3"]),
    ("!=1.2", ["1.3.0", "1.1.0"], ["1.2.7"]),
    ("*", ["0.0.1", "9.9.9"], ["1.0.0-rc.1"]),
    ("1.2 - 1.4.5", ["1.2.0", "1.4.5"], ["1.4.6", "1.1.0"]),
    ("1.2 - 1.4", ["1.4.9"], ["1.5.0"]),
    ("~1.0 || ^3", ["1.0.4", "3.5.0"], ["2.0.0", "1.1.0"]),
    (">=1.0.0 <2.0.0", [], ["1.5.0-rc.1"]),
    (">=1.0.0-0", ["1.0.0-rc.1", "1.0.0", "2.0.0-beta"], ["0.9.0-rc.1"]),
    (">=2.0.0-rc.1 <3.0.0", ["2.0.0-rc.2", "2.1.0"], ["2.0.0-beta.9"]),
    ("~1.2.3-beta", ["1.2.3-beta.2", "1.2.4"], ["1.2.3-alpha", "1.3.0-rc.1"]),
    (">=2.0.0-rc.1 || ~1.0", ["1.0.5"], ["1.0.6-rc.1"]),  # only the branch that names a prerelease admits them
])
def test_ranges(constraint: str, inside: list[str], outside: list[str]) -> None:
    for version in inside:
        assert admits(constraint, version), f"{constraint!r} should admit {version}"
    for version in outside:
        assert not admits(constraint, version), f"{constraint!r} should not admit {version}"


@pytest.mark.parametrize(("constraint", "expected"), [
    (">=1.0.0 <2.0.0", "v1.10.0"),
    ("~1.2", "v1.2.10"),
    ("^1.2.3", "v1.10.0"),
    ("1.2.x", "v1.2.10"),
    ("*", "v2.0.0"),
    ("<1.0.0", "v0.9.0"),
    (">=2.0.0-0", "v2.1.0-beta.2"),
    ("~2.0.0-rc", "v2.0.0"),
    (">=3", None),
])
def test_best_match(constraint: str, expected: str | None) -> None:
    assert best_match(TAGS, constraint) == expected


def test_best_match_keeps_the_tags_spelling_and_ignores_order() -> None:
    assert best_match(["1.0.0", "v1.1.0", "1.0.5"], "^1") == "v1.1.0"
    assert best_match(["v1.0.0", "1.0.0"], "1.0.0") == best_match(["1.0.0", "v1.0.0"], "1.0.0")


def test_best_match_of_nothing() -> None:
    assert best_match([], "*") is None
    assert best_match(["latest", "main"], "*") is None


@pytest.mark.parametrize("constraint", ["", "  ", ">=", "foo", ">=1.0.0 ||", "=>>1.0", "1.2.3.4", ">=1.x-rc.1",
                                        "~1.2 bar"])
def test_invalid_ranges_raise_source_failed_naming_the_range(constraint: str) -> None:
    with pytest.raises(SourceFailed) as info:
        best_match(TAGS, constraint)
    assert repr(constraint) in str(info.value)
    assert info.value.reason == "SourceFailed"
