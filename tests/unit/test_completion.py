"""Shell completion, run for real: the generated bash script in a bash subprocess, and the
`kubectl_complete-gitops` executable in kubectl's (cobra's `__complete`) format. No cluster here:
Sync names through kubectl are in tests/e2e/test_cli_misc.py."""

from __future__ import annotations

from kubectl_gitops.cli.completion_cmd import cobra_lines
from tests.helpers import BIN, run

# A kubeconfig that points nowhere: completions that would need the cluster offer nothing, quickly.
NOWHERE = {"KUBECONFIG": "/nonexistent/kubeconfig"}


def bash_complete(*words: str) -> list[str]:
    """COMPREPLY after `kubectl-gitops WORDS...<TAB>` (the last word is the one being completed)."""
    script = run([str(BIN / "kubectl-gitops"), "completion", "bash"]).stdout
    all_words = " ".join(f"'{w}'" for w in ("kubectl-gitops", *words))
    program = (f"{script}\nCOMP_WORDS=({all_words}); COMP_CWORD={len(words)}; COMPREPLY=()\n"
               "_kubectl_gitops_completion kubectl-gitops\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    out = run(["bash", "--norc", "--noprofile", "-c", program], **NOWHERE)
    return [line for line in out.stdout.splitlines() if line]


def test_the_script_uses_a_variable_a_shell_can_set():
    for shell in ("bash", "zsh", "fish"):
        script = run([str(BIN / "kubectl-gitops"), "completion", shell]).stdout
        assert "_KUBECTL_GITOPS_COMPLETE" in script and "_KUBECTL GITOPS" not in script, shell
    bash = run([str(BIN / "kubectl-gitops"), "completion", "bash"]).stdout
    assert "complete -o nosort -F _kubectl_gitops_completion kubectl-gitops" in bash


def test_bash_completes_commands_subcommands_flags_and_choices():
    assert bash_complete("ro") == ["rollback"]
    assert {"history", "rollback", "events", "stats", "wait", "export", "completion", "get"} <= set(bash_complete(""))
    assert bash_complete("get", "sy") == ["sync", "syncs"]
    assert {"--to", "--cancel", "--no-sync"} <= set(bash_complete("rollback", "app", "--"))
    assert sorted(bash_complete("wait", "app", "--for", "")) == ["healthy", "ready"]
    assert bash_complete("completion", "") == ["bash", "fish", "zsh"]
    assert bash_complete("history", "") == []  # names need the cluster, which isn't there: nothing, no error


def kubectl_complete(*args: str) -> list[str]:
    out = run([str(BIN / "kubectl_complete-gitops"), *args], **NOWHERE)
    assert out.stderr == ""
    return out.stdout.splitlines()


def test_kubectl_complete_speaks_cobra():
    lines = kubectl_complete("hist")
    assert lines[-1] == ":4"  # ShellCompDirectiveNoFileComp
    assert lines[0].startswith("history\t") and len(lines) == 2
    assert kubectl_complete("-n", "team", "get", "sy") == ["sync", "syncs", ":4"]
    flags = kubectl_complete("events", "--")
    assert "--watch\tAfter listing, print new Events as they happen." in flags
    assert kubectl_complete("history", "") == [":4"]


def test_file_and_directory_arguments_fall_back_to_the_shell():
    from click.shell_completion import CompletionItem

    assert cobra_lines([CompletionItem("x", type="file")]) == [":0"]
    assert cobra_lines([CompletionItem("x", type="dir")]) == [":16"]
    assert cobra_lines([CompletionItem("a", help="one\n  two"), CompletionItem("b")]) == ["a\tone two", "b", ":4"]
    assert kubectl_complete("create", "secret", "git", "s", "--ca-file", "") == [":0"]


def test_the_completion_executable_is_installed_with_the_package():
    import configparser
    from pathlib import Path

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    scripts = cfg["options.entry_points"]["console_scripts"]
    assert "kubectl_complete-gitops = kubectl_gitops.cli.completion_cmd:kubectl_complete" in scripts
    assert (BIN / "kubectl_complete-gitops").exists()


def test_contexts_complete_from_the_kubeconfig_offline(tmp_path):
    config = tmp_path / "config"
    config.write_text("apiVersion: v1\nkind: Config\ncontexts:\n- name: prod\n  context: {cluster: p, user: u}\n"
                      "- name: dev\n  context: {cluster: d, user: u}\nclusters: []\nusers: []\n")
    out = run([str(BIN / "kubectl_complete-gitops"), "--context", ""], KUBECONFIG=str(config))
    assert out.stdout.splitlines() == ["dev", "prod", ":4"]
    out = run([str(BIN / "kubectl_complete-gitops"), "get", "syncs", "--context", "p"], KUBECONFIG=str(config))
    assert out.stdout.splitlines() == ["prod", ":4"]
