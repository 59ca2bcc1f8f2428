"""How parameters look in `--help`: plain placeholders, no Rich markup surprises.

Typer 0.29 shows every value as a Python type in angle brackets (`<str>`, `<list[str]>`,
`<bool>` even for flags that take no value) and required arguments as `{name}` in the usage
line, and it reads help text as Rich markup, so a word in square brackets such as
`[providers.NAME]` silently disappears. Commands are run through `polish` when they are loaded
(`hearth.cli.lazy`), which swaps their classes for the subclasses below (they add no state,
only presentation) and escapes brackets in their help text:

- a flag shows no placeholder; a choice shows `a|b`; other values an upper-case word (`TEXT`,
  `INTEGER`, `PATH`, …) unless the option names its own `metavar`;
- an argument appears as `NAME` (`[NAME]` when optional) in the usage line and in its panel.
"""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_TYPE_WORDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "NUMBER",
    "path": "PATH",
    "file": "PATH",
    "dir": "DIRECTORY",
    "datetime": "TIME",
    "UUID": "UUID",
}


class PlainOption(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        return _value_word(self, ctx)


def _value_word(param: Any, ctx: Any) -> str:
    """TEXT, INTEGER, PATH, a|b… from Typer's own `<type>` label."""
    label = str(TyperOption.display_type_rich(param, ctx) or "<text>").strip("<>")
    # A repeatable option takes one value each time it is given: its help says it repeats.
    label = label.removeprefix("list[").removesuffix("]").removesuffix(" range")
    return label if "|" in label else _TYPE_WORDS.get(label, label.upper())


class PlainArgument(TyperArgument):
    def _placeholder(self) -> str:
        name = self.metavar or (self.name or "value").upper()
        return f"{name}..." if self.nargs != 1 else name

    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "value").upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the upper-case name already says what goes there

    def _usage_display_name(self) -> str:
        return self._placeholder() if self.required else f"[{self._placeholder()}]"


def polish_param(param: Any) -> Any:
    """Polish one parameter (once); returns it."""
    if getattr(param, "_hearth_polished", False):
        return param
    param._hearth_polished = True
    if type(param) is TyperOption:
        param.__class__ = PlainOption
    elif type(param) is TyperArgument:
        param.__class__ = PlainArgument
    help_text = getattr(param, "help", None)
    if help_text:
        param.help = escape(help_text)
    return param


class PlainCommand(TyperCommand):
    def get_params(self, ctx: Any) -> Any:
        # Also the `--help` option Click adds on demand, and Typer's completion options.
        return [polish_param(p) for p in super().get_params(ctx)]


class PlainGroup(TyperGroup):
    def get_params(self, ctx: Any) -> Any:
        return [polish_param(p) for p in super().get_params(ctx)]


def polish(command: Any) -> Any:
    """Polish `command` and everything below it, once; returns it."""
    if getattr(command, "_hearth_polished", False):
        return command
    command._hearth_polished = True
    if type(command) is TyperCommand:
        command.__class__ = PlainCommand
    elif type(command) is TyperGroup:
        command.__class__ = PlainGroup
    for text_field in ("help", "short_help", "epilog"):
        value = getattr(command, text_field, None)
        if value:
            setattr(command, text_field, escape(value))
    for param in command.params:
        polish_param(param)
    for sub in getattr(command, "commands", {}).values():
        polish(sub)
    return command
