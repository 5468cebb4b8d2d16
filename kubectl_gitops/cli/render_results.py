"""Per-object result lines, the same for sync, delete, install and uninstall.

One line per object, `  <action> <Kind/namespace/name>  <why>`, like kubectl apply's output; a run
over thousands of unchanged objects says how many instead of listing them. With -o json|yaml the
same results are data (`result_data`), the action as its plain string.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import click

from kubectl_gitops.core.status import ObjectAction

UNCHANGED_LISTED = 50
"""Like kubectl apply, unchanged objects are listed too, unless there are more than this."""


class _Ref(Protocol):
    @property
    def display(self) -> str: ...


class Result(Protocol):
    """What the engine's ObjectResult offers a renderer (structural: install's results are the same)."""

    @property
    def ref(self) -> _Ref: ...

    @property
    def action(self) -> str: ...

    @property
    def message(self) -> str: ...


def result_line(result: Result) -> str:
    action = str(result.action)
    return f"  {action:<10} {result.ref.display}{'  ' + result.message if result.message else ''}"


def result_lines(results: Sequence[Result], *, unchanged_listed: int | None = UNCHANGED_LISTED) -> list[str]:
    """The lines for `results`; unchanged objects summarised when more than `unchanged_listed`."""
    unchanged = sum(1 for r in results if r.action == ObjectAction.UNCHANGED)
    many = unchanged_listed is not None and unchanged > unchanged_listed
    lines = [result_line(r) for r in results if not (many and r.action == ObjectAction.UNCHANGED)]
    if many:
        lines.append(f"  unchanged  {unchanged} objects (-o yaml lists every object)")
    return lines


def echo_results(results: Sequence[Result], *, unchanged_listed: int | None = UNCHANGED_LISTED) -> None:
    for line in result_lines(results, unchanged_listed=unchanged_listed):
        click.echo(line)


def result_data(results: Iterable[Result]) -> list[dict[str, Any]]:
    """The results as plain data for -o json|yaml (`{"object", "result", "message"?}`)."""
    return [{"object": r.ref.display, "result": str(r.action), **({"message": r.message} if r.message else {})}
            for r in results]
