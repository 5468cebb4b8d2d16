"""Shell completion: `kubectl gitops completion bash|zsh|fish` and the `kubectl_complete-gitops` executable.

Two ways in, one answer:

- `kubectl-gitops` typed directly: the script from `completion SHELL` (click's, generated for the
  program name `kubectl-gitops` and the variable `_KUBECTL_GITOPS_COMPLETE`; click's default would
  derive `_KUBECTL GITOPS_COMPLETE` from the display name "kubectl gitops", which no shell can set)
  calls the plugin back with that variable set;
- `kubectl gitops <TAB>`: kubectl (1.26 and later) runs `kubectl_complete-gitops ARGS... WORD`, a
  console script installed with the package, and reads cobra's `__complete` format: one candidate
  per line (`value<TAB>description`), then `:<directive>` as the last line.

Both resolve the words with click (commands, subcommands, flags and their choices) and, for a
NAME argument, list the Syncs or GitSources in the namespace the words name (or the kubeconfig's);
`-n` completes the cluster's namespaces and `--context` the kubeconfig's contexts. The cluster is
asked with a short timeout: a completion that can't reach it offers nothing rather than hang.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Final

import click
from click.shell_completion import BashComplete, CompletionItem, FishComplete, ShellComplete, ZshComplete

if TYPE_CHECKING:
    from kubectl_gitops.adapters.kube import Kube

PROG: Final = "kubectl-gitops"
COMPLETE_VAR: Final = "_KUBECTL_GITOPS_COMPLETE"  # the same as cli/main.py
CLUSTER_TIMEOUT: Final = 3.0
# cobra's ShellCompDirective values (spf13/cobra completions.go)
DIRECTIVE_DEFAULT, DIRECTIVE_NO_SPACE, DIRECTIVE_NO_FILE, DIRECTIVE_DIRS = 0, 2, 4, 16
SYNC_COMMANDS: Final = frozenset({"history", "rollback", "wait", "sync", "build", "diff", "tree", "drift"})
NOT_EXISTING: Final = frozenset({"create"})  # their NAME is a new object's


def complete(cli: click.Command, args: list[str], incomplete: str) -> list[CompletionItem]:
    """The candidates for `incomplete` after the complete words `args` (program name excluded)."""
    from click.shell_completion import _resolve_context, _resolve_incomplete

    try:
        ctx = _resolve_context(cli, {}, PROG, list(args))
        obj, incomplete = _resolve_incomplete(ctx, list(args), incomplete)
        items: list[CompletionItem] = list(obj.shell_complete(ctx, incomplete))
    except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        return []
    if items:
        return items
    if isinstance(obj, click.Argument) and obj.name == "name":
        return [CompletionItem(n) for n in _names(ctx, incomplete)]
    if isinstance(obj, click.Option) and obj.name in ("namespace", "namespace_"):
        return [CompletionItem(n) for n in _namespaces(ctx, incomplete)]
    if isinstance(obj, click.Option) and obj.name in ("context_", "kube_context"):
        return [CompletionItem(n) for n in _contexts(ctx, incomplete)]
    return items


def _kinds(ctx: click.Context) -> tuple[str, ...]:
    """Which objects a NAME argument names: from the command's `what` argument, or the command."""
    if ctx.parent is not None and ctx.parent.command.name in NOT_EXISTING:
        return ()
    what = str(ctx.params.get("what") or "")
    if what:
        if "tenant" in what:
            return ()
        return ("sources",) if "source" in what else ("syncs",)
    if ctx.command.name == "events":
        return ("syncs", "sources")
    return ("syncs",) if ctx.command.name in SYNC_COMMANDS else ()


def _option(ctx: click.Context, *names: str) -> str | None:
    """The first value given for any of `names`, the command's own before its parents'."""
    here: click.Context | None = ctx
    while here is not None:
        for name in names:
            value = here.params.get(name)
            if value:
                return str(value)
        here = here.parent
    return None


def _names(ctx: click.Context, incomplete: str) -> list[str]:
    kinds = _kinds(ctx)
    if not kinds:
        return []
    try:
        from kubectl_gitops.engine.record import SOURCES, SYNCS

        kube = _connect(ctx)
        namespace = _option(ctx, "namespace_", "namespace") or kube.default_namespace or "default"
        found: set[str] = set()
        for kind in kinds:
            info = SYNCS if kind == "syncs" else SOURCES
            found |= {str(o["metadata"]["name"]) for o in kube.list(info, namespace=namespace)}
    except Exception:  # whatever went wrong (GitOpsError or other), a completion never prints a traceback
        return []
    return sorted(n for n in found if n.startswith(incomplete))


def _connect(ctx: click.Context) -> Kube:
    from kubectl_gitops.adapters.kube import Kube, Target

    kube = Kube.connect(Target(_option(ctx, "kubeconfig_", "kubeconfig") or os.environ.get("KUBECONFIG"),
                               _option(ctx, "context_", "kube_context")))
    kube.timeout = CLUSTER_TIMEOUT
    return kube


def _namespaces(ctx: click.Context, incomplete: str) -> list[str]:
    try:
        from kubectl_gitops.engine.tenants import NAMESPACES

        names = {str(o["metadata"]["name"]) for o in _connect(ctx).list(NAMESPACES)}
    except Exception:  # no cluster, no candidates: never a traceback in the shell
        return []
    return sorted(n for n in names if n.startswith(incomplete))


def _contexts(ctx: click.Context, incomplete: str) -> list[str]:
    """The context names of the kubeconfig file(s) (KUBECONFIG may list several), read offline."""
    import yaml

    given = _option(ctx, "kubeconfig_", "kubeconfig") or os.environ.get("KUBECONFIG") or \
        os.path.join(os.path.expanduser("~"), ".kube", "config")
    names: set[str] = set()
    for path in given.split(os.pathsep):
        try:
            with open(path, encoding="utf-8") as handle:
                config = yaml.safe_load(handle) or {}
            names |= {str(c.get("name")) for c in config.get("contexts") or [] if c.get("name")}
        except Exception:  # an unreadable file offers nothing
            continue
    return sorted(n for n in names if n.startswith(incomplete))


class _NamesToo(ShellComplete):
    """Click's completion, plus the cluster's names for NAME, -n and --context."""

    def get_completions(self, args: list[str], incomplete: str) -> list[CompletionItem]:
        return complete(self.cli, args, incomplete)


class Bash(_NamesToo, BashComplete):
    pass


class Zsh(_NamesToo, ZshComplete):
    pass


class Fish(_NamesToo, FishComplete):
    pass


SHELLS: Final[dict[str, type[ShellComplete]]] = {"bash": Bash, "zsh": Zsh, "fish": Fish}


def register() -> None:
    """Make click's completion entry (the `_KUBECTL_GITOPS_COMPLETE` variable) use these classes."""
    from click.shell_completion import add_completion_class

    for name, cls in SHELLS.items():
        add_completion_class(cls, name)


def script(shell: str) -> str:
    """The completion script for `kubectl-gitops` in `shell`."""
    from kubectl_gitops.cli.main import cli

    return SHELLS[shell](cli, {}, PROG, COMPLETE_VAR).source()


def cobra_lines(items: list[CompletionItem]) -> list[str]:
    """cobra's `__complete` answer: candidates (`value<TAB>help`), then `:<directive>`."""
    if any(i.type == "dir" for i in items):
        return [f":{DIRECTIVE_DIRS}"]
    if any(i.type == "file" for i in items):
        return [f":{DIRECTIVE_DEFAULT}"]
    lines = []
    for item in items:
        help_text = " ".join(str(item.help or "").split())
        lines.append(f"{item.value}\t{help_text}" if help_text else str(item.value))
    return [*lines, f":{DIRECTIVE_NO_FILE}"]


def kubectl_complete(argv: list[str] | None = None) -> None:
    """Entry point of `kubectl_complete-gitops`: kubectl passes the plugin's words, the last one
    being the word to complete (empty for a new word)."""
    from kubectl_gitops.cli.main import cli

    args = list(sys.argv[1:] if argv is None else argv)
    incomplete = args.pop() if args else ""
    sys.stdout.write("\n".join(cobra_lines(complete(cli, args, incomplete))) + "\n")


@click.command()
@click.argument("shell", type=click.Choice(sorted(SHELLS)))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash:  source <(kubectl gitops completion bash)          # for `kubectl-gitops <TAB>`
    zsh:   source <(kubectl gitops completion zsh)
    fish:  kubectl gitops completion fish | source
    `kubectl gitops <TAB>` completes through kubectl's own completion (kubectl 1.26+), which runs
    the `kubectl_complete-gitops` executable installed with this package.
    """
    click.echo(script(shell), nl=False)

