"""The OCI image `make image` writes: its config, size, reproducibility, that its root filesystem runs
the CLI as the image's user with the image's entrypoint and environment, and that a registry gives
back what was pushed (a `distribution` registry built from Go modules, on 127.0.0.1).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubectl_gitops import __version__
from kubectl_gitops.cli.main import COMMANDS
from kubectl_gitops.devcluster.gotools import ensure_tool
from tests.image.conftest import ROOT, Built, build_image

MAX_UNCOMPRESSED = 250 * 1024 * 1024
VENV_BIN = "/opt/kubectl-gitops/bin"


def skopeo(*args: str) -> str:
    proc = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False, timeout=300)
    assert proc.returncode == 0, f"skopeo {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def test_skopeo_shows_the_expected_config(image: Built) -> None:
    config = json.loads(skopeo("inspect", "--config", image.ref))
    assert config["config"]["Entrypoint"] == ["kubectl-gitops"]
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["WorkingDir"] == "/home/nonroot"
    env = dict(item.split("=", 1) for item in config["config"]["Env"])
    assert env["PATH"].split(":")[0] == VENV_BIN
    assert env["HOME"] == "/home/nonroot"
    labels = config["config"]["Labels"]
    revision = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.revision"].removesuffix("-dirty") == revision
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert config["os"] == "linux" and config["architecture"] == "amd64"
    summary = json.loads(skopeo("inspect", image.ref))
    assert summary["Digest"] == image.digest
    assert len(summary["Layers"]) == 3


def _layers(archive: Path) -> Iterator[tuple[str, int]]:
    """(media type, uncompressed bytes) of each layer, read from the archive itself."""
    with tarfile.open(archive) as tar:
        def blob(digest: str) -> Any:
            return tar.extractfile(f"./blobs/sha256/{digest.split(':', 1)[1]}")

        index = json.load(tar.extractfile("./index.json"))  # type: ignore[arg-type]
        manifest = json.load(blob(index["manifests"][0]["digest"]))
        for layer in manifest["layers"]:
            size = 0
            with gzip.open(blob(layer["digest"])) as data:
                while chunk := data.read(1 << 20):
                    size += len(chunk)
            yield layer["mediaType"], size


def test_the_image_is_at_most_250_mb_uncompressed(image: Built) -> None:
    layers = list(_layers(image.archive))
    total = sum(size for _, size in layers)
    print(f"\nimage layers (uncompressed): {[f'{s / 2**20:.1f} MiB' for _, s in layers]}, "
          f"total {total / 2**20:.1f} MiB; archive {image.archive.stat().st_size / 2**20:.1f} MiB; "
          f"build {image.seconds:.0f}s")
    assert all(media == "application/vnd.oci.image.layer.v1.tar+gzip" for media, _ in layers)
    assert total <= MAX_UNCOMPRESSED, f"{total / 2**20:.1f} MiB"


def test_a_second_build_has_the_same_digest(image: Built, tmp_path: Path) -> None:
    again = build_image(tmp_path / "again")
    print(f"\nsecond build: {again.seconds:.0f}s, {again.digest}")
    assert again.digest == image.digest
    assert again.archive.read_bytes() == image.archive.read_bytes()


@pytest.fixture(scope="module")
def bundle(image: Built, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The image unpacked by umoci: bundle/rootfs and the runtime config umoci derives from the image."""
    work = tmp_path_factory.mktemp("unpacked")
    skopeo("copy", image.ref, f"oci:{work / 'layout'}:{__version__}")
    (work / "image-config.json").write_text(skopeo("inspect", "--config", f"oci:{work / 'layout'}:{__version__}"))
    proc = subprocess.run(["umoci", "unpack", "--image", f"{work / 'layout'}:{__version__}", str(work / "bundle")],
                          capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return work / "bundle"


def run_in_image(bundle: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the image's entrypoint with `args` the way a runtime does: chroot into the root filesystem,
    the image's working directory, user and group, its environment only; the entrypoint is found on
    the image's PATH inside the root filesystem."""
    spec = json.loads((bundle / "config.json").read_text())
    process = spec["process"]
    uid, gid = process["user"]["uid"], process["user"]["gid"]
    rootfs = str(bundle / spec["root"]["path"])
    image_config = json.loads((bundle.parent / "image-config.json").read_text())["config"]
    entrypoint = image_config["Entrypoint"]
    assert process["args"] == [*entrypoint, *(image_config.get("Cmd") or [])]
    env = dict(item.split("=", 1) for item in process["env"])

    def enter() -> None:
        os.chroot(rootfs)
        os.chdir(process["cwd"])
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    return subprocess.run([*entrypoint, *args], env=env, preexec_fn=enter, capture_output=True, text=True,
                          check=False, timeout=timeout)


def test_the_runtime_config_is_the_images(bundle: Path) -> None:
    process = json.loads((bundle / "config.json").read_text())["process"]
    assert process["args"] == ["kubectl-gitops", "--help"]
    assert process["user"]["uid"] == 65532 and process["user"]["gid"] == 65532
    assert process["cwd"] == "/home/nonroot"


@pytest.mark.parametrize("args", [["--help"], ["webhook", "serve", "--help"], ["version", "--client"]],
                         ids=["help", "webhook-serve", "version"])
def test_the_entrypoint_runs_as_the_image_user(bundle: Path, args: list[str]) -> None:
    done = run_in_image(bundle, *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert ("Usage:" in done.stdout) or (__version__ in done.stdout)


def test_the_controller_command_runs_in_the_image(bundle: Path) -> None:
    assert "controller" in COMMANDS
    done = run_in_image(bundle, "controller", "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout


def test_the_image_renders_kustomizations_without_kubectl(bundle: Path) -> None:
    rootfs = bundle / "rootfs"
    assert not any((rootfs / d.lstrip("/") / "kubectl").exists() for d in ("/usr/bin", "/usr/local/bin", VENV_BIN))
    repo = rootfs / "tmp" / "repo"
    (repo / "base").mkdir(parents=True)
    (repo / "base" / "kustomization.yaml").write_text("resources: [cm.yaml]\nnamePrefix: in-image-\n")
    (repo / "base" / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n")
    spec = json.loads((bundle / "config.json").read_text())
    env = dict(item.split("=", 1) for item in spec["process"]["env"])

    def enter() -> None:
        os.chroot(str(rootfs))
        os.chdir("/tmp")
        os.setgroups([])
        os.setgid(65532)
        os.setuid(65532)

    script = ("from pathlib import Path; from kubectl_gitops.adapters.render import render, kustomize_command; "
              "print(kustomize_command()[0]); print([m.obj['metadata']['name'] for m in render(Path('/tmp/repo'), "
              "'base')])")
    done = subprocess.run(["python", "-c", script], env=env, preexec_fn=enter, capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["/usr/local/bin/kustomize", "['in-image-app']"]


def test_the_root_filesystem_has_no_docs_apt_or_perl(bundle: Path) -> None:
    rootfs = bundle / "rootfs"
    assert not [p for p in (rootfs / "usr/share/man").rglob("*") if p.is_file()]
    assert not [p for p in (rootfs / "usr/share/locale").rglob("*") if p.is_file()]
    assert not (rootfs / "usr/bin/apt-get").exists()
    assert not (rootfs / "usr/bin/perl").exists()
    assert (rootfs / "usr/bin/git").exists() and (rootfs / "usr/bin/python3").exists()
    docs = [p for p in (rootfs / "usr/share/doc").rglob("*") if p.is_file()]
    assert docs and all(p.name == "copyright" for p in docs)


# --- a registry ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `distribution` registry (built from Go modules, cached) on 127.0.0.1, storage in a temp dir."""
    binary = ensure_tool("registry", print)
    work = tmp_path_factory.mktemp("registry")
    port = _free_port()
    (work / "config.yml").write_text(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
        f"{work / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    log = (work / "registry.log").open("w")
    proc = subprocess.Popen([str(binary), "serve", str(work / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, (work / "registry.log").read_text()
                assert time.monotonic() < deadline, "the registry did not listen within 30s"
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_pushed_and_pulled_back_with_the_same_digest(image: Built, registry: str, tmp_path: Path) -> None:
    remote = f"docker://{registry}/kubectl-gitops:{__version__}"
    skopeo("copy", "--dest-tls-verify=false", image.ref, remote)
    assert json.loads(skopeo("inspect", "--tls-verify=false", remote))["Digest"] == image.digest
    skopeo("copy", "--src-tls-verify=false", remote, f"oci:{tmp_path / 'pulled'}:{__version__}")
    index = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    by_digest = f"docker://{registry}/kubectl-gitops@{image.digest}"
    assert json.loads(skopeo("inspect", "--tls-verify=false", by_digest))["Digest"] == image.digest
    shutil.rmtree(tmp_path / "pulled")


def test_no_shell_is_needed_at_run_time(bundle: Path) -> None:
    """The entrypoint is exec'd directly: with every shell of the image hidden, the CLI still runs."""
    shells = [p for p in ((bundle / "rootfs/usr/bin") / n for n in ("sh", "dash", "bash")) if p.exists() or
              p.is_symlink()]
    assert shells, "the base has its shells (Essential): hide them for this test"
    for shell in shells:
        shell.rename(shell.with_name(shell.name + ".hidden"))
    try:
        for args in (["--help"], ["webhook", "serve", "--help"]):
            done = run_in_image(bundle, *args)
            assert done.returncode == 0, done.stderr
    finally:
        for shell in shells:
            shell.with_name(shell.name + ".hidden").rename(shell)
