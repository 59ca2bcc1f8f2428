"""The tools Hearth ships with. `app.py` registers what `builtin_tools` returns."""

from __future__ import annotations

from hearth.netrules import NetPolicy
from hearth.tools.base import Tool
from hearth.tools.builtin.files import FileReadArgs, FileReadTool, FileWriteArgs, FileWriteTool
from hearth.tools.builtin.http import HttpRequestArgs, HttpRequestTool
from hearth.tools.builtin.notify import NotificationStore, NotifyArgs, NotifyTool
from hearth.tools.builtin.shell import ShellRunArgs, ShellRunTool


def builtin_tools(
    *,
    shell_enabled: bool = False,
    http_policy: NetPolicy | None = None,
    http_trust_env: bool = False,
    shell_env: dict[str, str] | None = None,
    shell_pass_env: list[str] | None = None,
    notifications: NotificationStore | None = None,
) -> list[Tool]:
    """Fresh instances of the built-in tools; the shell only when the person turned it on.

    Every default is the safe one: public addresses only, no proxy from the environment,
    and a shell that sees none of the gateway's environment beyond PATH, HOME, LANG and TZ.
    `notifications` is where `notify` keeps what it sends (not kept without one).
    """
    tools: list[Tool] = [
        FileReadTool(),
        FileWriteTool(),
        HttpRequestTool(http_policy, trust_env=http_trust_env),
        NotifyTool(notifications),
    ]
    if shell_enabled:
        tools.append(ShellRunTool(env=shell_env, pass_env=shell_pass_env))
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
