"""Shell completion is Typer's own: the script, and completions through the lazy commands."""

from __future__ import annotations

import os
import subprocess
import sys


def hearth(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "hearth", *args],
        capture_output=True,
        text=True,
        env=child_env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def test_show_completion_prints_a_bash_script_for_hearth() -> None:
    result = hearth("--show-completion", "bash")
    assert result.returncode == 0, result.stderr
    assert "_HEARTH_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _hearth_completion hearth" in result.stdout


def test_completion_reaches_commands_that_are_imported_lazily() -> None:
    top = hearth(
        env={"_HEARTH_COMPLETE": "complete_bash", "COMP_WORDS": "hearth wor", "COMP_CWORD": "1"}
    )
    assert top.stdout.split() == ["workflow"], top.stderr
    sub = hearth(
        env={
            "_HEARTH_COMPLETE": "complete_bash",
            "COMP_WORDS": "hearth schedule pa",
            "COMP_CWORD": "2",
        }
    )
    assert sub.stdout.split() == ["pause"], sub.stderr


def test_install_completion_is_offered_in_help() -> None:
    result = hearth("--help", env={"COLUMNS": "200"})
    assert "--install-completion" in result.stdout
    assert "--show-completion" in result.stdout
