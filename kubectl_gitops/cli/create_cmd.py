"""`kubectl gitops create source|sync NAME ...`: create or update (server-side apply), or --export."""

from __future__ import annotations

import click

from kubectl_gitops.cli.common import GlobalOptions, emit, kube_options, merged
from kubectl_gitops.constants import FIELD_MANAGER


@click.group()
def create() -> None:
    """Create or update a GitSource, a Sync, a Tenant or a Git Secret."""


def _send(opts: GlobalOptions, obj: dict[str, object], export: bool) -> None:
    if export:
        emit(obj, "yaml")
        return
    from kubectl_gitops.cli.context import connect
    from kubectl_gitops.engine.record import SOURCES, SYNCS, require_installed

    kube = connect(opts)
    require_installed(kube)
    info = SOURCES if obj["kind"] == "GitSource" else SYNCS
    if obj["kind"] == "HelmRepository":
        from kubectl_gitops.engine.helm import HELM_REPOSITORIES

        info = HELM_REPOSITORIES
    kube.apply(info, obj, field_manager=FIELD_MANAGER + "-cli", force=True)
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    click.echo(f"{str(obj['kind']).lower()} {meta['namespace']}/{meta['name']} applied")


@create.command("source")
@click.argument("name")
@click.option("--url", required=True, help="Git URL: https://, ssh://, git@host:path or file://.")
@click.option("--branch", default="", help="Branch to follow (default main).")
@click.option("--tag", default="", help="Tag to pin.")
@click.option("--semver", default="", help="Semver range over tags, e.g. '>=1.0.0 <2.0.0'.")
@click.option("--commit", default="", help="Exact commit SHA (wins over branch).")
@click.option("--secret", default="", help="Secret with username/password, bearerToken or identity/known_hosts.")
@click.option("--interval", default="1m", show_default=True, help="How often to fetch.")
@click.option("--timeout", default="", help="Timeout for Git operations (default 60s).")
@click.option("--insecure", is_flag=True,
              help="Allow sending the secret's credentials over plain http:// (warned about; avoid).")
@click.option("--verify-mode", type=click.Choice(["HEAD", "Tag", "All"]), default=None,
              help="Verify signatures before syncing: the HEAD commit, the annotated Tag, or All new commits "
                   "(needs --trust-policy; docs/signatures.md).")
@click.option("--trust-policy", default="", help="TrustPolicy whose keys must have signed (default mode HEAD).")
@click.option("--export", is_flag=True, help="Print the object as YAML instead of applying it.")
@kube_options
@click.pass_context
def create_source(ctx: click.Context, name: str, url: str, branch: str, tag: str, semver: str, commit: str,
                  secret: str, interval: str, timeout: str, insecure: bool, verify_mode: str | None,
                  trust_policy: str, export: bool, kubeconfig_: str | None,
                  context_: str | None, namespace_: str | None) -> None:
    """Create or update a GitSource (`create source helm NAME --url ...`: a HelmRepository)."""
    from kubectl_gitops.core.resources import git_source

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    obj = git_source(name, _namespace(opts, export), url, branch=branch, tag=tag, semver=semver,
                     commit=commit, secret=secret, interval=interval, timeout=timeout, insecure=insecure,
                     verify_mode=verify_mode or "", trust_policy=trust_policy)
    _send(opts, obj, export)


@create.command("sync")
@click.argument("name")
@click.option("--source", required=True, help="Name of the GitSource (same namespace).")
@click.option("--path", default="./", show_default=True, help="Path in the repository.")
@click.option("--prune", type=click.BOOL, is_flag=False, flag_value=True, default=False,
              help="Delete objects that leave Git (--prune, --prune=true|false as with flux).")
@click.option("--target-namespace", default="", help="Put every namespaced object in this namespace.")
@click.option("--wait", is_flag=True, help="Wait for every applied object to be healthy.")
@click.option("--depends-on", multiple=True, help="NAME or NAMESPACE/NAME of a Sync to wait for; repeatable.")
@click.option("--interval", default="10m", show_default=True, help="How often to reconcile.")
@click.option("--timeout", default="", help="Timeout for apply and health checks (default 5m).")
@click.option("--service-account", default="", help="Apply as this ServiceAccount (impersonation).")
@click.option("--drift-guard", type=click.Choice(["enforce", "warn", "off"]), default=None,
              help="What the webhook does with out-of-band edits (default enforce).")
@click.option("--substitute", multiple=True, help="KEY=VALUE for ${KEY} substitution; repeatable.")
@click.option("--force", is_flag=True, help="Recreate objects whose immutable fields changed.")
@click.option("--export", is_flag=True, help="Print the object as YAML instead of applying it.")
@kube_options
@click.pass_context
def create_sync(ctx: click.Context, name: str, source: str, path: str, prune: bool, target_namespace: str,
                wait: bool, depends_on: tuple[str, ...], interval: str, timeout: str, service_account: str,
                drift_guard: str | None, substitute: tuple[str, ...], force: bool, export: bool,
                kubeconfig_: str | None, context_: str | None, namespace_: str | None) -> None:
    """Create or update a Sync."""
    from kubectl_gitops.core.resources import parse_pairs, sync

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    obj = sync(name, _namespace(opts, export), source, path, prune=prune, target_namespace=target_namespace,
               wait=wait, depends_on=depends_on, interval=interval, timeout=timeout,
               service_account=service_account, drift_guard=drift_guard or "",
               substitute=parse_pairs(substitute, "--substitute"), force=force)
    _send(opts, obj, export)


@create.group("secret")
def create_secret() -> None:
    """Create or update a Secret for a GitSource's secretRef."""


@create_secret.command("git")
@click.argument("name")
@click.option("--url", required=True, help="The Git URL the Secret is for (https://, ssh:// or git@host:path).")
@click.option("--username", default="", help="HTTPS basic auth user name (with --password).")
@click.option("--password", default="", help="HTTPS basic auth password or access token (with --username).")
@click.option("--bearer-token-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File holding an HTTPS bearer token.")
@click.option("--private-key-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File holding an SSH private key without a passphrase.")
@click.option("--known-hosts-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The SSH server's host keys (default: scanned with ssh-keyscan, trust on first use).")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM CA bundle that signed the HTTPS server's certificate.")
@click.option("--export", is_flag=True, help="Print the Secret as YAML (stringData) instead of applying it.")
@kube_options
@click.pass_context
def create_secret_git(ctx: click.Context, name: str, url: str, username: str, password: str,
                      bearer_token_file: str | None, private_key_file: str | None, known_hosts_file: str | None,
                      ca_file: str | None, export: bool, kubeconfig_: str | None, context_: str | None,
                      namespace_: str | None) -> None:
    """Create or update the Secret a GitSource's --secret names, with exactly the keys the fetch reads."""
    from kubectl_gitops.cli.git_secret import auth_from_files, send_secret

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    auth = auth_from_files(url, username, password, bearer_token_file, private_key_file, known_hosts_file, ca_file)
    send_secret(opts, name, _namespace(opts, export), url, auth, export)


def _namespace(opts: GlobalOptions, export: bool) -> str:
    if opts.namespace or export:
        return opts.namespace or "default"
    from kubectl_gitops.cli.context import connect, namespace_of

    return namespace_of(opts, connect(opts))


def _add_tenant() -> None:
    from kubectl_gitops.cli.tenant_cmd import create_tenant

    create.add_command(create_tenant)


_add_tenant()


@click.command("source helm")
@click.argument("name")
@click.option("--url", required=True, help="https://charts.example.com (index.yaml) or oci://registry/path.")
@click.option("--secret", default="", help="Secret with username/password or bearerToken, and/or ca.crt.")
@click.option("--interval", default="10m", show_default=True, help="How long a fetched index stays fresh.")
@click.option("--timeout", default="", help="Timeout of each request (default 60s).")
@click.option("--insecure", is_flag=True,
              help="HTTP: allow credentials over plain http://. OCI: plain-HTTP registry. Avoid.")
@click.option("--export", is_flag=True, help="Print the object as YAML instead of applying it.")
@kube_options
@click.pass_context
def create_source_helm(ctx: click.Context, name: str, url: str, secret: str, interval: str, timeout: str,
                       insecure: bool, export: bool, kubeconfig_: str | None, context_: str | None,
                       namespace_: str | None) -> None:
    """Create or update a HelmRepository (charts for a Sync's spec.chart; docs/helm.md)."""
    from kubectl_gitops.core.helm import helm_repository
    from kubectl_gitops.core.spec import InvalidSpec

    opts = merged(ctx, kubeconfig_, context_, namespace_)
    try:
        obj = helm_repository(name, _namespace(opts, export), url, secret=secret, interval=interval,
                              timeout=timeout, insecure=insecure)
    except InvalidSpec as err:
        raise click.UsageError(str(err)) from None
    _send(opts, obj, export)


def _add_source_helm() -> None:
    """`create source helm NAME` makes a HelmRepository (as Flux spells it) while `create source NAME`
    stays a GitSource: the group resolves the two words to this command before click sees `helm` as
    a GitSource's name."""
    resolve = create.resolve_command

    def resolve_helm(ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        if len(args) >= 2 and args[0] == "source" and args[1] == "helm":
            return "source helm", create_source_helm, args[2:]
        return resolve(ctx, args)

    setattr(create, "resolve_command", resolve_helm)  # noqa: B010 - an instance override, not a typo


_add_source_helm()
