"""The tools Hearth ships with. `app.py` registers what `builtin_tools` returns."""

from __future__ import annotations

from hearth.tools.base import Tool
from hearth.tools.builtin.files import FileReadArgs, FileReadTool, FileWriteArgs, FileWriteTool
from hearth.tools.builtin.http import HttpRequestArgs, HttpRequestTool
from hearth.tools.builtin.notify import NotificationStore, NotifyArgs, NotifyTool
from hearth.tools.builtin.shell import ShellRunArgs, ShellRunTool


def builtin_tools(
    *, shell_enabled: bool = False, notifications: NotificationStore | None = None
) -> list[Tool]:
    """Fresh instances of the built-in tools; the shell only when the person turned it on.
    `notifications` is where `notify` keeps what it sends (not kept without one)."""
    tools: list[Tool] = [
        FileReadTool(),
        FileWriteTool(),
        HttpRequestTool(),
        NotifyTool(notifications),
    ]
    if shell_enabled:
        tools.append(ShellRunTool())
    return tools


__all__ = [
    "FileReadArgs",
    "FileReadTool",
    "FileWriteArgs",
    "FileWriteTool",
    "HttpRequestArgs",
    "HttpRequestTool",
    "NotifyArgs",
    "NotifyTool",
    "ShellRunArgs",
    "ShellRunTool",
    "builtin_tools",
]
