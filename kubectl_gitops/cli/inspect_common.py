"""What the inspecting commands (build, diff, drift, tree, trace) share at the CLI's edge.

`diff` and `drift` answer with their exit code like `diff(1)` and `kubectl diff`: 0 nothing
differs, 1 something does, 2 or more an error. Their errors therefore exit 2, never 1, so a
script can tell "differences" from "could not tell".
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

ERROR_EXIT = 2
F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def errors_exit(code: int = ERROR_EXIT) -> Iterator[None]:
    """Turn an expected failure into one `error: ...` line and exit `code`."""
    from kubectl_gitops.core.errors import GitOpsError

    try:
        yield
    except GitOpsError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(code)


def colour_choice() -> Callable[[F], F]:
    return click.option("--color", "color", type=click.Choice(["auto", "always", "never"]), default="auto",
                        show_default=True, help="Colour the diff: auto = on a terminal unless NO_COLOR is set.")


def dump_yaml_stream(objects: list[dict[str, object]]) -> str:
    """Objects as one multi-document YAML stream, keys in the order they are applied."""
    import yaml

    return "".join(("---\n" if i else "") + yaml.safe_dump(o, sort_keys=False, allow_unicode=True)
                   for i, o in enumerate(objects))
