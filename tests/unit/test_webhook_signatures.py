"""/signatures through the Flask app: signed writes pass, unsigned ones are refused (or warned), TrustPolicy
writes with a bad key are refused naming the key, the TrustPolicies come from a watched view, and a
view that is not listed yet fails closed."""

from __future__ import annotations

import copy
import subprocess
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from kubectl_gitops.adapters import keys
from kubectl_gitops.constants import LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core import manifest_sig as ms
from kubectl_gitops.core.drift import SyncInfo
from kubectl_gitops_webhook.app import create_app
from kubectl_gitops_webhook.tenants import Watched
from kubectl_gitops_webhook.trust import TrustFacts
from tests.unit.fakefields import applied

JSON = dict[str, Any]
APPLIER = "system:serviceaccount:kubectl-gitops-system:kubectl-gitops-applier"
CM: JSON = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "team"},
            "data": {"a": "1"}}


@pytest.fixture(scope="module")
def alice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("k") / "alice"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", str(path)], check=True)
    return path, Path(f"{path}.pub").read_text().strip()


def policy_obj(public: str, mode: str = "enforce", name: str = "p") -> JSON:
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "TrustPolicy", "metadata": {"name": name},
            "spec": {"mode": mode, "keys": [{"name": "alice", "type": "ssh", "publicKey": public}],
                     "scope": {"namespaces": ["team"]}}}


class StaticWatched(Watched):
    def __init__(self, items: Iterable[JSON], listed: bool = True) -> None:
        super().__init__("TrustPolicies", lambda: (list(items), "1"), lambda rv: iter(()))
        if listed:
            self.relist()


def client(policies: Iterable[JSON], listed: bool = True) -> FlaskClient:
    def lookup(namespace: str, name: str) -> SyncInfo | None:
        return None

    facts = TrustFacts(StaticWatched(policies, listed))
    app = create_app(lambda: lookup, trust_factory=lambda: facts)
    return app.test_client()


def review(obj: JSON | None, *, user: str = APPLIER, op: str = "CREATE", old: JSON | None = None,
           kind: tuple[str, str, str] = ("", "v1", "ConfigMap"), resource: str = "configmaps",
           sub: str = "") -> JSON:
    meta = (obj or old or {}).get("metadata") or {}
    request: JSON = {"uid": str(uuid.uuid4()), "kind": {"group": kind[0], "version": kind[1], "kind": kind[2]},
                     "resource": {"group": kind[0], "version": kind[1], "resource": resource},
                     "operation": op, "userInfo": {"username": user, "groups": []},
                     "name": meta.get("name", ""), "namespace": meta.get("namespace", ""),
                     "object": obj, "oldObject": old}
    if sub:
        request["subResource"] = sub
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def answer(c: FlaskClient, body: JSON) -> JSON:
    resp = c.post("/signatures", json=body)
    assert resp.status_code == 200
    out: JSON = resp.get_json()["response"]
    return out


def signed_cm(key: Path, obj: JSON = CM) -> JSON:
    data = ms.canonical(obj)
    out = copy.deepcopy(obj)
    out["metadata"]["labels"] = {LABEL_SYNC: "s", LABEL_SYNC_NAMESPACE: "team"}
    ms.with_annotation(out, ms.encode_annotation(data, keys.sign(data, key, ms.SSHSIG_NAMESPACE)))
    return applied(out)


def test_signed_write_passes_and_unsigned_is_refused(alice: tuple[Path, str]) -> None:
    c = client([policy_obj(alice[1])])
    assert answer(c, review(signed_cm(alice[0])))["allowed"] is True
    unsigned = applied(copy.deepcopy(CM))
    refused = answer(c, review(unsigned))
    assert refused["allowed"] is False
    assert refused["status"]["message"].startswith("ConfigMap team/cfg is in the signed scope of TrustPolicy p: "
                                                   "it is not signed")
    changed = signed_cm(alice[0])
    changed["data"]["a"] = "2"
    message = answer(c, review(changed))["status"]["message"]
    assert "data.a differs from the signed manifest (signed by alice)" in message


def test_a_person_writing_an_unlabelled_object_is_not_judged(alice: tuple[Path, str]) -> None:
    c = client([policy_obj(alice[1])])
    assert answer(c, review(applied(copy.deepcopy(CM)), user="bob"))["allowed"] is True


def test_warn_mode_admits_with_a_warning(alice: tuple[Path, str]) -> None:
    c = client([policy_obj(alice[1], mode="warn")])
    out = answer(c, review(applied(copy.deepcopy(CM))))
    assert out["allowed"] is True and "not validly signed" in out["warnings"][0]


def test_not_listed_yet_fails_closed(alice: tuple[Path, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Watched, "items", _not_synced)  # as after the first list's 5 s wait
    c = client([policy_obj(alice[1])], listed=False)
    out = answer(c, review(signed_cm(alice[0])))
    assert out["allowed"] is False and "could not decide" in out["status"]["message"]


def _not_synced(self: Watched, wait: float = 5.0) -> dict[str, JSON]:
    from kubectl_gitops_webhook.tenants import NotSynced

    raise NotSynced("not listed")


@pytest.mark.parametrize(("key", "named"), [
    ({"name": "bad", "type": "ssh", "publicKey": "ssh-ed25519 AAAA!!notbase64"}, "key 'bad'"),
    ({"name": "dsa", "type": "ssh", "publicKey": "ssh-dss AAAAB3NzaC1kc3MAAACBAP"}, "key 'dsa'"),
    ({"name": "weird", "type": "ssh",
      "publicKey": "sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t"}, "key 'weird'"),
    ({"name": "gpg", "type": "pgp",
      "publicKey": "-----BEGIN PGP PUBLIC KEY BLOCK-----\nnope\n-----END PGP PUBLIC KEY BLOCK-----"}, "key 'gpg'"),
])
def test_a_trust_policy_with_a_bad_key_is_refused_naming_it(alice: tuple[Path, str], key: JSON, named: str) -> None:
    c = client([])
    obj = policy_obj(alice[1])
    obj["spec"]["keys"].append(key)
    out = answer(c, review(obj, user="admin", kind=("kubectl-gitops.dev", "v1alpha1", "TrustPolicy"),
                           resource="trustpolicies"))
    assert out["allowed"] is False and named in out["status"]["message"], out
    good = answer(c, review(policy_obj(alice[1]), user="admin", kind=("kubectl-gitops.dev", "v1alpha1", "TrustPolicy"),
                            resource="trustpolicies"))
    assert good["allowed"] is True


def test_scale_fails_open_when_the_policies_cannot_be_read(alice: tuple[Path, str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Watched, "items", _not_synced)
    c = client([policy_obj(alice[1])], listed=False)
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "team"},
             "spec": {"replicas": 3}}
    out = answer(c, review(scale, op="UPDATE", old=scale, user="system:serviceaccount:kube-system:hpa",
                           kind=("apps", "v1", "Deployment"), resource="deployments", sub="scale"))
    assert out["allowed"] is True and "not checked" in out["warnings"][0]
