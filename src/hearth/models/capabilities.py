"""What one provider:model has been found to handle, learned by trying and kept per process.

Weak local servers (llama-cpp-python's above all) fail on parts of a request OpenAI accepts:
an empty 200 stream or HTTP 500 when tools come with `tool_choice`, HTTP 500 on a forced tool
choice. Rather than fail, a request is tried again with less: without `tool_choice`, then without
tools. What worked is remembered here so the next request goes straight to it.

This memory lives in the gateway process only: after a restart the first request learns it
again (one failed attempt, then the working form). Nothing about it is stored in the database.

Per-provider settings override the learning: `tools = false` never offers tools, `tools = true`
never drops them (a failure then surfaces), and `structured_output` other than "auto" fixes the
structured-output form.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ToolLevel(IntEnum):
    """How much of tool calling a request carries, from everything to nothing."""

    FULL = 0  #: tools and the `tool_choice` pydantic-ai chooses
    NO_CHOICE = 1  #: tools, no `tool_choice` (OpenAI-compatible servers only)
    NONE = 2  #: no tools at all: the model answers in text


@dataclass
class Capabilities:
    """Mutable, shared by every request to one provider:model in this process.

    `tools_override` is the provider's `tools` setting (None: learn). `can_omit_choice` is False
    for providers whose SDK gives no way to leave `tool_choice` out (Anthropic).
    """

    tools_override: bool | None = None
    can_omit_choice: bool = True
    tool_level: ToolLevel = ToolLevel.FULL
    #: The structured-output form that last worked ("prompted" once a tool form failed).
    structured: str | None = None

    def start_level(self) -> ToolLevel:
        if self.tools_override is False:
            return ToolLevel.NONE
        return self.tool_level

    def ladder(self, has_function_tools: bool) -> list[ToolLevel]:
        """The forms to try, in order, for a request with tools: from the learned one down."""
        start = self.start_level()
        levels = [start]
        for level in (ToolLevel.NO_CHOICE, ToolLevel.NONE):
            if level <= start:
                continue
            if level is ToolLevel.NO_CHOICE and not self.can_omit_choice:
                continue
            if level is ToolLevel.NONE and (self.tools_override is True or not has_function_tools):
                continue
            levels.append(level)
        return levels

    def learn(self, level: ToolLevel) -> bool:
        """Remember that `level` worked; True when that is news (a step down)."""
        if level > self.tool_level:
            self.tool_level = level
            return True
        return False

    @property
    def tools_unavailable(self) -> bool:
        """True once requests go out without tools (learned or configured)."""
        return self.start_level() is ToolLevel.NONE
