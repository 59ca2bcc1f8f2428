"""The tool registry and the built-in tools, shared by workflows, chat and the heartbeat."""

from __future__ import annotations

from hearth.tools.base import (
    Risk,
    Tool,
    ToolArgumentsError,
    ToolContext,
    ToolError,
    ToolNotFoundError,
)
from hearth.tools.builtin import builtin_tools
from hearth.tools.registry import ToolRegistry
from hearth.tools.workspace import WorkspacePath, resolve_in_workspace

__all__ = [
    "Risk",
    "Tool",
    "ToolArgumentsError",
    "ToolContext",
    "ToolError",
    "ToolNotFoundError",
    "ToolRegistry",
    "WorkspacePath",
    "builtin_tools",
    "resolve_in_workspace",
]
