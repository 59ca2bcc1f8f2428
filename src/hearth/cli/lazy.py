"""Command groups whose commands are imported only when they run.

`hearth --help` must answer in a third of a second, but the command modules import the client,
the protocol models, workflow loading and more. So the root group knows each command by name,
module and one-line help, shows that line in the listing, and imports a module only when its
command is run, completed or asked for its own help. `tests/test_cli_help.py` checks that each
line here still matches the command's own help.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
import typer.main
from rich.markup import escape
from typer.core import TyperGroup

from hearth.cli.polish import PlainCommand, PlainGroup, polish


@dataclass(frozen=True)
class LazyCommand:
    """A command known by name until it is needed.

    `target` is `module:attribute`: a `typer.Typer` (a command group) or a command function.
    """

    name: str
    target: str
    help: str

    def load(self) -> Any:
        """The Click command Typer builds for the target (Typer vendors its own Click)."""
        module_name, _, attribute = self.target.partition(":")
        obj: Any = getattr(importlib.import_module(module_name), attribute)
        # Registered on a throwaway parent exactly as `add_typer` / `command` would on the root,
        # so the result is the command Typer itself would have built (and without a second
        # pair of completion options, which only the root has).
        parent = typer.Typer(add_completion=False)
        if isinstance(obj, typer.Typer):
            parent.add_typer(obj, name=self.name)
        else:
            parent.command(self.name)(obj)

        @parent.callback()
        def _parent() -> None:
            """Forces a group, so the command is found by name below."""

        group = typer.main.get_command(parent)
        assert isinstance(group, TyperGroup)
        return polish(group.commands[self.name])


class LazyGroup(PlainGroup):
    """A Typer group that adds the `lazy_commands` of its subclass after its own commands."""

    lazy_commands: ClassVar[tuple[LazyCommand, ...]] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = {spec.name: spec for spec in self.lazy_commands}
        self._loaded: dict[str, Any] = {}
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        return [*own, *(name for name in self._lazy if name not in own)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        spec = self._lazy.get(cmd_name)
        if spec is None:
            return None
        if self._listing and cmd_name not in self._loaded:
            # Only its line in the listing is needed: do not import the module for that.
            return PlainCommand(cmd_name, help=escape(spec.help))
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = spec.load()
        return self._loaded[cmd_name]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
