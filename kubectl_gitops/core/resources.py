"""Build GitSource and Sync objects from command-line intent (pure; `create` sends them).

Kept apart from click so `kubectl gitops create ... --export` and the tests produce exactly the
object that would be applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kubectl_gitops.constants import API_VERSION, KIND_SOURCE, KIND_SYNC
from kubectl_gitops.core.errors import UsageError
from kubectl_gitops.core.spec import parse_duration

JSON = dict[str, Any]


def git_source(name: str, namespace: str, url: str, *, branch: str = "", tag: str = "", semver: str = "",
               commit: str = "", secret: str = "", interval: str = "1m", timeout: str = "",
               ignore: str = "", insecure: bool = False, verify_mode: str = "", trust_policy: str = "") -> JSON:
    picked = [k for k, v in (("--branch", branch), ("--tag", tag), ("--semver", semver)) if v]
    if len(picked) > 1:
        raise UsageError(f"choose one of --branch, --tag, --semver (got {' and '.join(picked)})")
    if commit and (tag or semver):
        raise UsageError("--commit may only be combined with --branch (as in Flux), not --tag or --semver")
    ref: JSON = {}
    if branch or not (tag or semver or commit):
        ref["branch"] = branch or "main"
    if tag:
        ref["tag"] = tag
    if semver:
        ref["semver"] = semver
    if commit:
        ref["commit"] = commit
    _durations(interval=interval, timeout=timeout)
    spec: JSON = {"url": url, "ref": ref, "interval": interval,
                  **_set(timeout=timeout, secretRef={"name": secret} if secret else None, ignore=ignore,
                         insecure=insecure, verify=_verify(verify_mode, trust_policy, tag or semver))}
    return {"apiVersion": API_VERSION, "kind": KIND_SOURCE,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _verify(mode: str, policy: str, tagged: str) -> JSON | None:
    """spec.verify from --verify-mode/--trust-policy: both or neither (mode defaults to HEAD)."""
    if not mode and not policy:
        return None
    if not policy:
        raise UsageError("--verify-mode needs --trust-policy NAME (the TrustPolicy whose keys must have signed)")
    if mode == "Tag" and not tagged:
        raise UsageError("--verify-mode Tag needs --tag or --semver (a tag object to verify)")
    return {"mode": mode or "HEAD", "trustPolicy": policy}


def sync(name: str, namespace: str, source: str, path: str, *, prune: bool = False,
         target_namespace: str = "", wait: bool = False, depends_on: Sequence[str] = (),
         interval: str = "10m", timeout: str = "", service_account: str = "", drift_guard: str = "",
         substitute: Mapping[str, str] | None = None, force: bool = False) -> JSON:
    _durations(interval=interval, timeout=timeout)
    spec: JSON = {"sourceRef": {"kind": KIND_SOURCE, "name": source}, "path": path, "prune": prune,
                  "interval": interval,
                  **_set(timeout=timeout, targetNamespace=target_namespace, wait=wait, force=force,
                         serviceAccountName=service_account, driftGuard=drift_guard,
                         substitute=dict(substitute) if substitute else None)}
    if depends_on:
        spec["dependsOn"] = [_dependency(d) for d in depends_on]
    return {"apiVersion": API_VERSION, "kind": KIND_SYNC,
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def _set(**fields: Any) -> JSON:
    """Only the fields given a value: what a user leaves out stays out (the CRD defaults it)."""
    return {key: value for key, value in fields.items() if value}


def _durations(**flags: str) -> None:
    for flag, value in flags.items():
        if value:
            parse_duration(value, 0, f"--{flag}")


def _dependency(text: str) -> JSON:
    """`name` or `namespace/name`, as `flux create kustomization --depends-on` takes them."""
    ns, _, name = text.rpartition("/")
    if not name or "/" in ns:
        raise UsageError(f"--depends-on {text!r}: expected NAME or NAMESPACE/NAME")
    return {"name": name, "namespace": ns} if ns else {"name": name}


def parse_pairs(pairs: Sequence[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} {pair!r}: expected KEY=VALUE")
        out[key] = value
    return out
