"""Every command's `--help` reads well: found by walking the command tree, so new commands count.

Rendered in-process with Typer's test runner at a width where nothing wraps, then checked for
what went wrong before: words eaten as Rich markup, options without help, `[]` and `()` left
empty, doubled spaces, and raw placeholders (`<str>`, `<bool>`, `<list[str]>`, `{name}`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from hearth.cli import COMMANDS, app

WIDE = "400"
EMPTY_BRACKETS = re.compile(r"\[\s*\]|\(\s*\)")
RAW_PLACEHOLDER = re.compile(r"<[a-z][\w\[\]| ,]*>|\{[a-z_]+\}")


def walk(command: Any, ctx: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    list_commands = getattr(command, "list_commands", None)
    if list_commands is None:
        return
    for name in list_commands(ctx):
        sub = command.get_command(ctx, name)
        sub_ctx = type(ctx)(sub, parent=ctx, info_name=name)
        yield from walk(sub, sub_ctx, (*path, name))


def all_commands() -> list[tuple[tuple[str, ...], Any]]:
    root = typer.main.get_command(app)
    ctx = root.make_context("hearth", ["--help"], resilient_parsing=True)
    return list(walk(root, ctx, ()))


COMMAND_TREE = all_commands()


def render(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(
        app, [*path, "--help"], prog_name="hearth", env={"COLUMNS": WIDE, "NO_COLOR": "1"}
    )
    assert result.exit_code == 0, result.output
    return result.output


def words(text: str) -> list[str]:
    return text.split()


def test_the_tree_has_every_registered_command() -> None:
    names = {path[0] for path, _ in COMMAND_TREE if path}
    assert names == {spec.name for spec in COMMANDS}
    assert len(COMMAND_TREE) > len(COMMANDS)  # sub-commands were walked too


@pytest.mark.parametrize(
    ("path", "command"), COMMAND_TREE, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_help_reads_well(path: tuple[str, ...], command: Any) -> None:
    shown = " ".join(path) or "hearth"
    output = render(path)
    flat = " ".join(output.split())
    problems: list[str] = []
    if not (command.help or command.short_help):
        problems.append(f"`{shown}` has no help text")
    texts = [command.help or ""]
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        label = "/".join(param.opts)
        if param.param_type_name == "option":
            if not param.help:
                problems.append(f"`{shown}` option {label} has no help")
            texts.append(param.help or "")
        elif param.help:
            texts.append(param.help)
    for text in texts:
        for paragraph in re.split(r"\n\s*\n", text):
            joined = " ".join(line.strip() for line in paragraph.splitlines()).strip()
            if "  " in joined:
                problems.append(f"`{shown}`: doubled space in {joined!r}")
        # Rich markup would swallow a bracketed word: each word must reach the screen.
        for word in words(text.replace("\\[", "[")):
            if word not in flat:
                problems.append(f"`{shown}`: {word!r} of its help is not shown")
    problems += [f"`{shown}`: empty brackets in {m!r}" for m in EMPTY_BRACKETS.findall(output)]
    problems += [f"`{shown}`: raw placeholder {m!r}" for m in RAW_PLACEHOLDER.findall(output)]
    assert not problems, "\n".join(problems) + "\n\n" + output


def test_lazy_listing_matches_each_commands_own_help() -> None:
    """The one-line help `hearth --help` shows without importing a command is its real one."""
    by_name = {path[0]: command for path, command in COMMAND_TREE if len(path) == 1}
    for spec in COMMANDS:
        own = by_name[spec.name].help or ""
        first = " ".join(re.split(r"\n\s*\n", own.strip())[0].split())
        assert " ".join(spec.help.split()) == first.replace("\\[", "["), spec.name


def test_validate_counts_one_step_in_the_singular(tmp_path: Path) -> None:
    workflow = tmp_path / "one.yaml"
    workflow.write_text("name: One\nsteps:\n  - id: only\n    action: noop\n")
    result = CliRunner().invoke(app, ["workflow", "validate", str(workflow)], prog_name="hearth")
    assert result.exit_code == 0, result.output
    assert " ".join(result.output.split()) == f"{workflow}: valid (1 step)"
