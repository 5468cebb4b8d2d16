"""A stolen applier token is not enough: on the real dev control plane with the webhook, in a namespace a
TrustPolicy covers, managed objects are admitted only with a valid signature (`kubectl gitops sign`)
for exactly their identity and content.

Every attack writes as the default applier itself (impersonated by the admin: the drift guard lets
the applier through, so only the signature check stands in the way) and must be refused with a
clear message; the legitimate path (commits signed with the real `git commit -S`, manifests signed
by `kubectl gitops sign`, a Deployment defaulted by the API server) must keep syncing, scaling by a
controller the policy names, and status updates.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubectl_gitops.adapters import keys
from kubectl_gitops.constants import ANNOTATION_SIGNATURE, FIELD_MANAGER, LABEL_SYNC, LABEL_SYNC_NAMESPACE
from kubectl_gitops.core import manifest_sig as ms
from tests.e2e.gitrepo import GitRepo
from tests.e2e.webhookworld import Cluster, denial, webhook_cluster
from tests.helpers import Run, gitops, kubectl, run

JSON = dict[str, Any]
CLUSTER = "sigs"
APPLIER = "system:serviceaccount:kubectl-gitops-system:kubectl-gitops-applier"
SCALER = "scaler"
WAIT = 20.0

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: nginx:1
          env: [{name: MODE, value: safe}]
          securityContext: {runAsNonRoot: true}
        - name: side
          image: busybox:1
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data: {a: "1"}
"""


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    yield from webhook_cluster(CLUSTER, tmp_path_factory, people=(("bob", "devs"), (SCALER, "scalers")))


@dataclass
class Signed:
    cluster: Cluster
    ns: str
    repo: GitRepo
    key: Path
    public: str
    tmp: Path

    def admin(self, *args: str, check: bool = True, input: str | None = None) -> Run:
        return kubectl("-n", self.ns, *args, kubeconfig=self.cluster.kubeconfig, check=check, input=input)

    def as_applier(self, *args: str, input: str | None = None) -> Run:
        """kubectl in the namespace with the stolen applier token (never raises)."""
        return run(["kubectl", "-n", self.ns, f"--as={APPLIER}", *args], kubeconfig=self.cluster.kubeconfig,
                   input=input, check=False, timeout=120)

    def as_user(self, user: str, *args: str) -> Run:
        return run(["kubectl", "-n", self.ns, *args], kubeconfig=self.cluster.users[user], check=False, timeout=120)

    def gitops(self, *args: str, check: bool = True) -> Run:
        return gitops("-n", self.ns, *args, kubeconfig=self.cluster.kubeconfig, check=check)

    def get(self, kind: str, name: str) -> JSON:
        out: JSON = json.loads(self.admin("get", kind, name, "-o", "json").stdout)
        return out

    def sign_and_commit(self, message: str) -> str:
        self.gitops("sign", str(self.repo.path / "apps"), "--key", str(self.key))
        self.repo.git("add", "-A")
        self.repo.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={self.key}", "commit", "-q", "-S",
                      "-m", message)
        return self.repo.head()

    def sync(self) -> Run:
        return self.gitops("sync", "s", check=False)

    def apply_as_applier(self, obj: JSON) -> Run:
        """A server-side apply as the applier's own field manager: what a stolen token makes possible."""
        return self.as_applier("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--force-conflicts",
                               "-f", "-", input=json.dumps(obj))


def keygen(tmp: Path, name: str) -> tuple[Path, str]:
    path = tmp / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path, Path(f"{path}.pub").read_text().strip()


def trust_policy(name: str, ns: str, public: str, **key: str) -> JSON:
    return {"apiVersion": "kubectl-gitops.dev/v1alpha1", "kind": "TrustPolicy", "metadata": {"name": name},
            "spec": {"keys": [{"name": "alice", "type": "ssh", "publicKey": public, **key}],
                     "scope": {"namespaces": [ns]}, "controllers": [SCALER]}}


@pytest.fixture
def signed(wh: Cluster, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Signed]:
    """A namespace in a TrustPolicy's scope, synced from a repository with signed commits and manifests."""
    ns = f"sig-{request.node.name[5:20].replace('_', '-').strip('-')}-{uuid.uuid4().hex[:5]}"
    key, public = keygen(tmp_path, "alice")
    kubectl("create", "namespace", ns, kubeconfig=wh.kubeconfig)
    for user in ("bob", SCALER):
        kubectl("-n", ns, "create", "rolebinding", f"{user}-edit", "--clusterrole=edit", f"--user={user}",
                kubeconfig=wh.kubeconfig)
    kubectl("apply", "-f", "-", kubeconfig=wh.kubeconfig, input=json.dumps(trust_policy(ns, ns, public)))
    repo = GitRepo(tmp_path / "repo")
    world = Signed(wh, ns, repo, key, public, tmp_path)
    repo.write("apps/app.yaml", APP)
    world.sign_and_commit("signed app")
    world.gitops("create", "source", "s", "--url", repo.url, "--branch", "main", "--verify-mode", "HEAD",
                 "--trust-policy", ns)
    world.gitops("create", "sync", "s", "--source", "s", "--path", "apps", "--prune")
    out = _retry(world.sync, lambda r: r.returncode == 0)  # the webhook lists the new policy within moments
    assert out.returncode == 0 and "ReconciliationSucceeded" in out.output, out.output
    yield world
    kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", kubeconfig=wh.kubeconfig, check=False)
    kubectl("delete", "trustpolicy", ns, "--ignore-not-found", kubeconfig=wh.kubeconfig, check=False)


def _retry(action: Callable[[], Run], ok: Callable[[Run], bool], timeout: float = WAIT) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        result = action()
        if ok(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def refused(result: Run, *fragments: str) -> str:
    message = denial(result)
    assert "is in the signed scope of TrustPolicy" in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def desired(world: Signed, name: str = "web", kind: str = "deployment") -> JSON:
    """The live object as the applier would re-apply it (what it owns, plus what a thief changes)."""
    obj = world.get(kind, name)
    meta = obj["metadata"]
    for key in ("managedFields", "uid", "resourceVersion", "generation", "creationTimestamp"):
        meta.pop(key, None)
    meta["annotations"] = {k: v for k, v in meta.get("annotations", {}).items() if k.startswith("kubectl-gitops")}
    obj.pop("status", None)
    return obj


def containers(obj: JSON) -> list[JSON]:
    found: list[JSON] = obj["spec"]["template"]["spec"]["containers"]
    return found


# ------------------------------------------------------------------ the legitimate path


def test_signed_repository_syncs_and_stays_admitted(signed: Signed) -> None:
    web = signed.get("deployment", "web")
    annotation = web["metadata"]["annotations"][ANNOTATION_SIGNATURE]
    data, armored = ms.decode_annotation(annotation)
    assert json.loads(data)["metadata"] == {"labels": {"app": "web"}, "name": "web", "namespace": signed.ns}
    # what the live object carries is checkable with the standard tool
    (signed.tmp / "allowed").write_text(f"alice {signed.public}\n")
    (signed.tmp / "web.sig").write_text(armored)
    checked = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(signed.tmp / "allowed"), "-I", "alice", "-n",
                              ms.SSHSIG_NAMESPACE, "-s", str(signed.tmp / "web.sig")], input=data,
                             capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr
    assert web["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"]  # defaulted by the API server
    # the deployment controller's own writes (its revision annotation) were admitted
    deadline = time.monotonic() + WAIT
    while "deployment.kubernetes.io/revision" not in web["metadata"].get("annotations", {}):
        assert time.monotonic() < deadline, web["metadata"]
        time.sleep(0.5)
        web = signed.get("deployment", "web")

    # a re-sync of the same revision, and of a new signed revision
    assert signed.sync().returncode == 0
    signed.repo.write("apps/app.yaml", APP.replace('a: "1"', 'a: "2"'))
    signed.sign_and_commit("signed change")
    out = signed.sync()
    assert out.returncode == 0, out.output
    assert signed.get("configmap", "cfg")["data"] == {"a": "2"}

    # status updates pass (and are not even sent)
    status = signed.admin("patch", "deployment", "web", "--subresource=status", "--type=merge",
                          "-p", '{"status":{"observedGeneration":1}}', check=False)
    assert status.returncode == 0, status.stderr

    # scaling: the replicas are not in Git; the controller the policy names may, bob may not
    scale = signed.as_user(SCALER, "scale", "deployment", "web", "--replicas=3")
    assert scale.returncode == 0, scale.stderr
    refused(signed.as_user("bob", "scale", "deployment", "web", "--replicas=4"),
            "spec.replicas is not in the signed manifest")
    assert signed.get("deployment", "web")["spec"]["replicas"] == 3
    out = signed.sync()
    assert out.returncode == 0, out.output  # and the next sync is admitted, keeping the scale
    assert signed.get("deployment", "web")["spec"]["replicas"] == 3


def test_verify_checks_the_repository_offline(signed: Signed) -> None:
    allowed = signed.tmp / "allowed_signers"
    allowed.write_text(f"alice {signed.public}\n")
    out = signed.gitops("verify", str(signed.repo.path / "apps"), "--trust", str(allowed))
    assert "2 object(s) signed" in out.stdout
    by_name = signed.gitops("verify", "s", "--repo", str(signed.repo.path), "--trust", signed.ns)
    assert "2 object(s) signed" in by_name.stdout


# ------------------------------------------------------------------ attacks with the applier's token


def test_unsigned_object_in_a_signed_scope_is_refused(signed: Signed) -> None:
    labelled = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "sneaky", "labels": {LABEL_SYNC: "s", LABEL_SYNC_NAMESPACE: signed.ns}},
                "data": {"x": "1"}}
    refused(signed.apply_as_applier(labelled), "ConfigMap", "sneaky", "it is not signed")
    bare = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bare"}, "data": {"x": "1"}}
    refused(signed.apply_as_applier(bare), "it is not signed")
    assert signed.admin("get", "configmap", "sneaky", "bare", check=False).returncode != 0


def test_valid_signature_copied_onto_another_object_is_refused(signed: Signed) -> None:
    evil = desired(signed)
    evil["metadata"]["name"] = "evil"
    refused(signed.apply_as_applier(evil), f"the signature is for Deployment/{signed.ns}/web, not for "
                                           f"Deployment/{signed.ns}/evil")
    cm = desired(signed, "cfg", "configmap")
    cm["data"] = {"a": "owned"}
    cm["metadata"]["annotations"][ANNOTATION_SIGNATURE] = desired(signed)["metadata"]["annotations"][
        ANNOTATION_SIGNATURE]
    refused(signed.apply_as_applier(cm), "the signature is for Deployment")


@pytest.mark.parametrize(("change", "field"), [
    (lambda o: containers(o)[0].update(image="evil/miner:1"), "spec.template.spec.containers[0].image"),
    (lambda o: containers(o).append({"name": "miner", "image": "evil/miner:1"}), "spec.template.spec.containers"),
    (lambda o: containers(o)[0]["env"].append({"name": "STEAL", "value": "1"}),
     "spec.template.spec.containers[0].env"),
    (lambda o: containers(o)[0]["securityContext"].update(runAsNonRoot=False),
     "spec.template.spec.containers[0].securityContext.runAsNonRoot"),
    (lambda o: containers(o)[1].update(securityContext={"privileged": True}),
     "securityContext.privileged is not in the signed manifest"),
])
def test_one_field_changed_after_signing_is_refused(signed: Signed, change: Callable[[JSON], None],
                                                    field: str) -> None:
    before = signed.get("deployment", "web")["spec"]
    obj = desired(signed)
    change(obj)
    refused(signed.apply_as_applier(obj), field)
    assert signed.get("deployment", "web")["spec"] == before


def test_cleared_managed_fields_do_not_hide_an_added_field(signed: Signed) -> None:
    side = {"name": "side", "securityContext": {"privileged": True}}
    patch = {"metadata": {"managedFields": [{}]}, "spec": {"template": {"spec": {"containers": [side]}}}}
    out = signed.as_applier("patch", "deployment", "web", "--type=strategic", "-p", json.dumps(patch))
    refused(out, "managedFields")


def test_signature_by_an_untrusted_key_is_refused(signed: Signed) -> None:
    eve, _ = keygen(signed.tmp, "eve")
    obj = desired(signed)
    containers(obj)[0]["image"] = "evil/miner:1"
    data = ms.canonical(obj)
    ms.with_annotation(obj, ms.encode_annotation(data, keys.sign(data, eve, ms.SSHSIG_NAMESPACE)))
    refused(signed.apply_as_applier(obj), "its signature is refused", "which is not trusted")


@pytest.mark.parametrize("mangle", [lambda v: v[:-30], lambda v: "v1.Z2FyYmFnZQ==.Z2FyYmFnZQ==", lambda v: "junk"])
def test_truncated_or_garbage_signature_is_refused(signed: Signed, mangle: Callable[[str], str]) -> None:
    obj = desired(signed)
    obj["metadata"]["annotations"][ANNOTATION_SIGNATURE] = mangle(obj["metadata"]["annotations"][ANNOTATION_SIGNATURE])
    refused(signed.apply_as_applier(obj), "its signature is refused")


def test_key_outside_its_validity_window_is_refused(signed: Signed) -> None:
    expired = trust_policy(signed.ns, signed.ns, signed.public, notAfter="2020-01-01T00:00:00Z")
    signed.admin("apply", "-f", "-", input=json.dumps(expired))
    obj = desired(signed)
    out = _retry(lambda: signed.apply_as_applier(obj), lambda r: r.returncode != 0)
    refused(out, "outside its validity window")
    sync = signed.sync()  # the sync refuses it too, before applying anything
    assert sync.returncode != 0 and "VerificationFailed" in sync.output and "outside its validity window" in sync.output


def test_warn_mode_admits_with_a_warning(signed: Signed) -> None:
    policy = trust_policy(signed.ns, signed.ns, signed.public)
    policy["spec"]["mode"] = "warn"
    signed.admin("apply", "-f", "-", input=json.dumps(policy))
    unsigned = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"x": "1"},
                "metadata": {"name": "tolerated", "labels": {LABEL_SYNC: "s", LABEL_SYNC_NAMESPACE: signed.ns}}}
    out = _retry(lambda: signed.apply_as_applier(unsigned), lambda r: r.returncode == 0)
    assert out.returncode == 0, out.stderr
    assert "Warning: kubectl-gitops: ConfigMap" in out.stderr and "not validly signed" in out.stderr, out.stderr


# ------------------------------------------------------------------ the sync's own checks, and bad input


def test_sync_refuses_an_object_added_without_signing_before_applying_anything(signed: Signed) -> None:
    signed.repo.write("apps/app.yaml", APP.replace('a: "1"', 'a: "changed"'))
    signed.repo.write("apps/extra.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {b: '1'}\n")
    signed.repo.git("add", "-A")
    signed.repo.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={signed.key}", "commit", "-q", "-S", "-m", "x")
    out = signed.sync()
    assert out.returncode != 0 and "VerificationFailed" in out.output, out.output
    assert f"ConfigMap/{signed.ns}/extra: it has no entry in the signatures file" in out.output
    assert f"ConfigMap/{signed.ns}/cfg: it changed since it was signed" in out.output
    assert signed.admin("get", "configmap", "extra", check=False).returncode != 0
    assert signed.get("configmap", "cfg")["data"] == {"a": "1"}


def test_a_signatures_file_that_does_not_parse_fails_the_build_naming_it(signed: Signed) -> None:
    signed.repo.write("apps/.gitops-signatures.yaml", "signatures: [broken\n")
    signed.repo.git("add", "-A")
    signed.repo.git("-c", "gpg.format=ssh", "-c", f"user.signingkey={signed.key}", "commit", "-q", "-S", "-m", "x")
    out = signed.sync()
    assert out.returncode != 0 and "BuildFailed" in out.output, out.output
    assert "apps/.gitops-signatures.yaml: not valid YAML" in out.output


@pytest.mark.parametrize(("key", "named"), [
    ({"name": "broken", "type": "ssh", "publicKey": "ssh-ed25519 AAAAnotakey"}, "key 'broken'"),
    ({"name": "small", "type": "ssh", "publicKey": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC7"}, "key 'small'"),
    # passes the CRD's pattern, but the key inside is a DSA key: an algorithm we don't accept
    ({"name": "dsa", "type": "ssh", "publicKey": "ssh-ed25519 " + base64.b64encode(
        len(b"ssh-dss").to_bytes(4, "big") + b"ssh-dss" + b"\0" * 8).decode()},
     "key 'dsa': the key data is a 'ssh-dss' key"),
])
def test_trust_policy_with_a_bad_key_is_refused_naming_it(wh: Cluster, key: JSON, named: str) -> None:
    name = f"bad-{uuid.uuid4().hex[:6]}"
    policy = copy.deepcopy(trust_policy(name, "nowhere", "ssh-ed25519 AAAA"))
    policy["spec"]["keys"] = [key]
    out = _retry(lambda: run(["kubectl", "apply", "-f", "-"], kubeconfig=wh.kubeconfig, input=yaml.safe_dump(policy),
                             check=False), lambda r: "denied the request" in r.stderr)
    message = denial(out)
    assert named in message and f"TrustPolicy {name}" in message, message
