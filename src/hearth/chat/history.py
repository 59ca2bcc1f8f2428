"""Bounding and rendering conversation history.

What is sent to the model is bounded by message count and a rough token estimate, cutting only
in front of a user turn: a tool call is never separated from its result.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic_ai.messages import ModelMessage

# pydantic-ai is imported inside the functions: the gateway imports this module at start and
# should not pay seconds for it before anyone chats (see hearth.models).


def _estimate_tokens(message: ModelMessage) -> int:
    size = 0
    for part in message.parts:
        content = getattr(part, "content", None)
        if content is None:
            content = getattr(part, "args", "")
        size += len(content if isinstance(content, str) else json.dumps(content, default=str))
    return size // 4 + 1


def _starts_turn(message: ModelMessage) -> bool:
    from pydantic_ai.messages import ModelRequest, UserPromptPart

    return isinstance(message, ModelRequest) and any(
        isinstance(part, UserPromptPart) for part in message.parts
    )


def bound_history(
    messages: Sequence[ModelMessage], *, max_messages: int, max_tokens: int
) -> list[ModelMessage]:
    """The newest whole turns that fit both limits (possibly none)."""
    kept: list[ModelMessage] = []
    tokens = 0
    start = len(messages)
    for index in range(len(messages) - 1, -1, -1):
        tokens += _estimate_tokens(messages[index])
        if len(messages) - index > max_messages or tokens > max_tokens:
            break
        if _starts_turn(messages[index]):
            start = index
    kept = list(messages[start:])
    return kept


def parse(stored: Sequence[Any]) -> list[ModelMessage]:
    """Stored history (JSON from `ModelMessagesTypeAdapter.dump_json`) as pydantic-ai messages."""
    from pydantic_ai.messages import ModelMessagesTypeAdapter

    return ModelMessagesTypeAdapter.validate_python(stored)


def render_stored(stored: Sequence[Any]) -> list[dict[str, Any]]:
    """`render` of stored history."""
    return render(parse(stored))


def render(messages: Sequence[ModelMessage]) -> list[dict[str, Any]]:
    """A plain view of the history for clients: who said what, which tools ran."""
    from pydantic_ai.messages import (
        ModelRequest,
        ModelResponse,
        SystemPromptPart,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )

    entries: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                stamp: datetime | None = getattr(part, "timestamp", None)
                if isinstance(part, UserPromptPart):
                    content = part.content if isinstance(part.content, str) else str(part.content)
                    entries.append({"role": "user", "content": content, "timestamp": stamp})
                elif isinstance(part, SystemPromptPart):
                    entries.append({"role": "system", "content": part.content, "timestamp": stamp})
                elif isinstance(part, ToolReturnPart):
                    entries.append(
                        {
                            "role": "tool",
                            "content": part.model_response_str(),
                            "tool_name": part.tool_name,
                            "tool_call_id": part.tool_call_id,
                            "timestamp": stamp,
                        }
                    )
        elif isinstance(message, ModelResponse):
            for response_part in message.parts:
                if isinstance(response_part, TextPart):
                    entries.append(
                        {
                            "role": "assistant",
                            "content": response_part.content,
                            "timestamp": message.timestamp,
                        }
                    )
                elif isinstance(response_part, ToolCallPart):
                    entries.append(
                        {
                            "role": "assistant",
                            "tool_name": response_part.tool_name,
                            "tool_call_id": response_part.tool_call_id,
                            "args": response_part.args_as_dict(),
                            "timestamp": message.timestamp,
                        }
                    )
    return entries
