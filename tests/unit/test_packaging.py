"""setup.cfg lists packages by hand (webhook/ installs as kubectl_gitops_webhook); keep it complete."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _listed() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}


def test_every_package_folder_is_listed_in_setup_cfg() -> None:
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "kubectl_gitops").rglob("__init__.py")}
    on_disk.add("kubectl_gitops_webhook")
    assert (ROOT / "webhook" / "__init__.py").is_file()
    assert on_disk == _listed()


def test_console_script_and_webhook_mapping() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "kubectl-gitops = kubectl_gitops.cli.main:main" in cfg["options.entry_points"]["console_scripts"]
    assert "kubectl_gitops_webhook = webhook" in cfg["options"]["package_dir"]
