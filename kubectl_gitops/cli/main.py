"""Entry point of `kubectl-gitops` (run by kubectl as `kubectl gitops ...`).

Subcommands are loaded lazily by name, so `--help` and `version` never import the
kubernetes client, GitPython or Flask. Every expected failure is a GitOpsError, caught here
once and printed as one clear message with its exit code; tracebacks only with --debug.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from kubectl_gitops import __version__
from kubectl_gitops.cli.common import GlobalOptions

COMPLETE_VAR = "_KUBECTL_GITOPS_COMPLETE"  # click would derive "_KUBECTL GITOPS_COMPLETE" from the prog name

# name -> (module, attribute, one-line help). Help text lives here so listing commands imports nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "version": ("kubectl_gitops.cli.version_cmd", "version", "Print the plugin version (and the server's)."),
    "check": ("kubectl_gitops.cli.check_cmd", "check", "Pre-flight checks: kubectl, kubeconfig, API, RBAC."),
    "audit": ("kubectl_gitops.cli.audit_cmd", "audit", "Run the admission rules over the live cluster."),
    "dev": ("kubectl_gitops.cli.dev_cmd", "dev", "A local throwaway control plane for demos and tests."),
    "install": ("kubectl_gitops.cli.install_cmd", "install", "Install CRDs, RBAC and the webhook."),
    "uninstall": ("kubectl_gitops.cli.install_cmd", "uninstall", "Remove kubectl-gitops from the cluster."),
    "create": ("kubectl_gitops.cli.create_cmd", "create", "Create or update a GitSource, Sync or Tenant."),
    "sync": ("kubectl_gitops.cli.sync_cmd", "sync", "Reconcile a Sync now: fetch, build, apply, prune."),
    "sign": ("kubectl_gitops.cli.sign_cmd", "sign", "Sign the objects a Sync or path renders to (SSH key)."),
    "verify": ("kubectl_gitops.cli.verify_cmd", "verify", "Check the manifest signatures of a Sync or path offline."),
    "get": ("kubectl_gitops.cli.get_cmd", "get", "List GitSources, Syncs or Tenants."),
    "delete": ("kubectl_gitops.cli.delete_cmd", "delete", "Delete a Sync (pruning its objects), GitSource or Tenant."),
    "build": ("kubectl_gitops.cli.build_cmd", "build", "Print the YAML a sync would apply (--offline for CI)."),
    "diff": ("kubectl_gitops.cli.diff_cmd", "diff", "Show what a sync would change (exit 1 on differences)."),
    "drift": ("kubectl_gitops.cli.drift_cmd", "drift", "List fields Git owns that someone else changed."),
    "tree": ("kubectl_gitops.cli.tree_cmd", "tree", "Show a Sync's objects by namespace and kind."),
    "trace": ("kubectl_gitops.cli.trace_cmd", "trace", "Show which Sync applied an object, from where."),
    "suspend": ("kubectl_gitops.cli.suspend_cmd", "suspend", "Suspend a Sync or GitSource."),
    "resume": ("kubectl_gitops.cli.suspend_cmd", "resume", "Resume a Sync or GitSource."),
    "history": ("kubectl_gitops.cli.history_cmd", "history", "Show a Sync's recent runs."),
    "rollback": ("kubectl_gitops.cli.rollback_cmd", "rollback", "Pin a Sync to an earlier applied revision."),
    "events": ("kubectl_gitops.cli.events_cmd", "events", "Show Events about Syncs and GitSources."),
    "stats": ("kubectl_gitops.cli.stats_cmd", "stats", "Count Syncs and GitSources by state."),
    "wait": ("kubectl_gitops.cli.wait_cmd", "wait", "Wait until a Sync is ready or healthy."),
    "export": ("kubectl_gitops.cli.export_cmd", "export", "Print Syncs or GitSources as clean YAML."),
    "completion": ("kubectl_gitops.cli.completion_cmd", "completion", "Print a shell completion script."),
    "controller": ("kubectl_gitops.cli.controller_cmd", "controller", "Reconcile Syncs continuously (in-cluster)."),
    # Loaded by name so the CLI layer never imports Flask; the command lives with the webhook.
    "webhook": ("kubectl_gitops_webhook.cli", "webhook", "Run the admission webhook (TLS, gunicorn)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command = getattr(module, entry[1])
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--kubeconfig", envvar="KUBECONFIG", help="Path to the kubeconfig file.")
@click.option("--context", "kube_context", help="The kubeconfig context to use.")
@click.option("-n", "--namespace", help="The namespace scope for this request.")
@click.option("--request-timeout", default=None, help="Give up on a single API request after this long (e.g. 5s).")
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.version_option(__version__, prog_name="kubectl-gitops", message="%(prog)s v%(version)s")
@click.pass_context
def cli(ctx: click.Context, kubeconfig: str | None, kube_context: str | None, namespace: str | None,
        request_timeout: str | None, debug: bool) -> None:
    """GitOps for Kubernetes: sync from Git with server-side apply, guard what Git owns."""
    ctx.obj = GlobalOptions(kubeconfig=kubeconfig, context=kube_context, namespace=namespace, debug=debug,
                            request_timeout=request_timeout)


def main(argv: list[str] | None = None) -> Any:
    from kubectl_gitops.core.errors import GitOpsError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or bool(os.environ.get("KUBECTL_GITOPS_DEBUG"))
    if os.environ.get(COMPLETE_VAR):  # a shell asking for completions (cli/completion_cmd.py)
        from kubectl_gitops.cli.completion_cmd import register

        register()
    try:
        return cli.main(args=args, prog_name="kubectl gitops", standalone_mode=False, complete_var=COMPLETE_VAR)
    except GitOpsError as err:
        if debug:
            raise
        click.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as err:  # the last line of defence: one clear line, the traceback only with --debug
        if debug:
            raise
        text = str(err).splitlines()[0][:300] if str(err) else ""
        what = "an object nested too deeply to process" if isinstance(err, RecursionError) else \
            f"unexpected {type(err).__name__}"
        click.echo(f"error: {what}{': ' + text if text else ''} (a bug: please report it; "
                   f"--debug shows the traceback)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
