"""`kubectl gitops verify SYNC|PATH --trust POLICY|FILE`: check the manifest signatures offline.

Renders SYNC or PATH exactly as `sign` does (cli/sign_cmd.py), reads its `.gitops-signatures.yaml`
and checks, for every object, that it has an entry, that the entry's digest is the object's
canonical form (it did not change since it was signed) and that the signature verifies by a trusted
key valid now. The keys are a TrustPolicy (a file with one, or its name in the cluster) or a git
allowed_signers file. Exit 0 when every object passes, 1 with one line per object and reason.

`--print-canonical ID` / `--print-signature ID` print one object's canonical bytes or its armored
signature (ID: the inventory id in the file, or Kind/namespace/name), for `ssh-keygen -Y verify`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from kubectl_gitops.cli.common import kube_options, merged
from kubectl_gitops.cli.sign_cmd import render_target, target_options

if TYPE_CHECKING:
    from kubectl_gitops.core.trust import TrustPolicy

JSON = dict[str, Any]


def load_trust(ctx: click.Context, trust: str, kubeconfig_: str | None, context_: str | None) -> TrustPolicy:
    """A TrustPolicy from a YAML file, from an allowed_signers file, or by name from the cluster."""
    import yaml

    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.core.trust import parse_trust_policy

    path = Path(trust)
    if path.is_file():
        text = path.read_text()
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError:
            doc = None
        if isinstance(doc, dict) and doc.get("kind") == "TrustPolicy":
            return parse_trust_policy(doc)
        return _allowed_signers(text, str(path))
    if "/" in trust or trust.endswith((".yaml", ".yml")):
        raise UsageError(f"--trust {trust}: no such file")
    from kubectl_gitops.cli.context import connect
    from kubectl_gitops.engine.source import TRUST_POLICIES

    kube = connect(merged(ctx, kubeconfig_, context_, None))
    found = kube.get(TRUST_POLICIES, trust, None)
    if found is None:
        raise UsageError(f"TrustPolicy {trust} not found (and no file named so)")
    return parse_trust_policy(found)


def _allowed_signers(text: str, where: str) -> TrustPolicy:
    """git's allowed_signers: `PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT]`, one per line."""
    from kubectl_gitops.adapters.keys import parse_ssh_public_key
    from kubectl_gitops.core.spec import InvalidSpec
    from kubectl_gitops.core.trust import parse_trust_policy

    keys: list[dict[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name = line.split()[0].split(",")[0]
        try:
            parse_ssh_public_key(line, name)
        except InvalidSpec as err:
            raise InvalidSpec(f"{where}:{number}: {err}") from None
        keys.append({"name": f"{name}-{number}" if any(k["name"] == name for k in keys) else name,
                     "type": "ssh", "publicKey": line})
    if not keys:
        raise InvalidSpec(f"{where}: neither a TrustPolicy nor an allowed_signers file with a key")
    return parse_trust_policy({"metadata": {"name": Path(where).name}, "spec": {"keys": keys}})


def check_all(objects: list[JSON], entries: dict[str, Any] | None, policy: TrustPolicy,
              now: datetime) -> list[str]:
    """One line per object that fails: `Kind/ns/name: reason`."""
    from kubectl_gitops.adapters import keys
    from kubectl_gitops.core import manifest_sig as ms
    from kubectl_gitops.core.errors import VerificationFailed
    from kubectl_gitops.core.objects import ref_of

    failures = []
    for obj in objects:
        display = ref_of(obj).display
        entry = (entries or {}).get(ms.object_id(obj))
        if entry is None:
            failures.append(f"{display}: not signed (no entry {ms.object_id(obj)} in {ms.SIGNATURES_FILE})")
            continue
        data = ms.canonical(obj)
        if ms.digest(data) != entry.digest:
            failures.append(f"{display}: changed since it was signed (its digest is {ms.digest(data)}, the "
                            f"signature's {entry.digest})")
            continue
        try:
            ms.verify_signed(data, entry.signature, [policy], keys.verify_manifest, now)
        except VerificationFailed as err:
            failures.append(f"{display}: {err}")
    return failures


@click.command()
@click.argument("target", metavar="SYNC|PATH")
@click.option("--trust", default=None, metavar="POLICY|FILE",
              help="A TrustPolicy (YAML file, or its name in the cluster) or a git allowed_signers file.")
@click.option("--print-canonical", "print_canonical", default=None, metavar="ID",
              help="Print the canonical bytes of one object (what its signature covers) and exit.")
@click.option("--print-signature", "print_signature", default=None, metavar="ID",
              help="Print the armored signature of one object and exit.")
@target_options
@kube_options
@click.pass_context
def verify(ctx: click.Context, target: str, trust: str | None, print_canonical: str | None,
           print_signature: str | None, repo: Path | None, substitute: tuple[str, ...],
           cluster_scoped: tuple[str, ...], kubeconfig_: str | None, context_: str | None,
           namespace_: str | None) -> None:
    """Check the manifest signatures of SYNC or PATH offline; exit 1 naming each object that fails."""
    from kubectl_gitops.core import manifest_sig as ms
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.engine.signatures import read_entries

    rendered = render_target(ctx, target, repo=repo, namespace=namespace_, kubeconfig_=kubeconfig_,
                             context_=context_, substitute=substitute, cluster_scoped=cluster_scoped)
    entries = read_entries(rendered.directory.parent, rendered.directory.name)
    if print_canonical or print_signature:
        wanted = print_canonical or print_signature or ""
        obj = _find(rendered.objects, wanted)
        if print_canonical:
            sys.stdout.buffer.write(ms.canonical(obj))
            return
        entry = (entries or {}).get(ms.object_id(obj))
        if entry is None:
            raise UsageError(f"{wanted} has no signature in {ms.SIGNATURES_FILE}")
        click.echo(entry.signature.strip())
        return
    if trust is None:
        raise UsageError("give --trust POLICY|FILE (a TrustPolicy or an allowed_signers file)")
    policy = load_trust(ctx, trust, kubeconfig_, context_)
    failures = check_all(rendered.objects, entries, policy, datetime.now(UTC))
    for line in failures:
        click.echo(f"✗ {line}")
    if failures:
        click.echo(f"{len(failures)} of {len(rendered.objects)} object(s) failed verification", err=True)
        ctx.exit(1)
    click.echo(f"✔ {len(rendered.objects)} object(s) signed by keys of {policy.name}")


def _find(objects: list[JSON], wanted: str) -> JSON:
    from kubectl_gitops.core import manifest_sig as ms
    from kubectl_gitops.core.errors import UsageError
    from kubectl_gitops.core.objects import ref_of

    for obj in objects:
        if wanted in (ms.object_id(obj), ref_of(obj).display):
            return obj
    raise UsageError(f"no rendered object is {wanted!r} (an id from {ms.SIGNATURES_FILE}, or Kind/namespace/name)")
