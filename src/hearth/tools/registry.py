"""The one place tools are looked up, validated and called.

Keeping validation and error translation here means every caller (workflow engine, chat,
heartbeat) gets the same guarantees: a tool never runs with arguments its model refused,
and whatever goes wrong inside a tool reaches the caller as a `ToolError` with a message a
person can read, never as an arbitrary exception type the caller has to know about.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from hearth.tools.base import Tool, ToolArgumentsError, ToolContext, ToolError, ToolNotFoundError

log = logging.getLogger("hearth.tools")


def _field_path(loc: tuple[int | str, ...]) -> str:
    """`("headers", "Accept")` -> `args.headers.Accept`; list indices as `[0]`."""
    path = "args"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


class ToolRegistry:
    """Tools by name. Built in `app.py` and handed to every service that calls tools."""

    def __init__(
        self, tools: Iterable[Tool] = (), redact: Callable[[Any], Any] | None = None
    ) -> None:
        self._tools: dict[str, Tool] = {}
        #: Removes secrets from results and errors: a shell command that echoes an env
        #: variable or an HTTP endpoint that echoes a header must not hand a key to the model,
        #: a workflow's stored output or an event.
        self._redact = redact
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        """Add a tool; a second tool with the same name is a wiring mistake, so it raises."""
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ToolNotFoundError(f"unknown tool {name!r}; known tools: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter([self._tools[name] for name in self.names()])

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def validate(self, name: str, raw_args: Any) -> BaseModel:
        """The parsed arguments, or `ToolArgumentsError` naming every bad field.

        `None` counts as "no arguments" because a workflow step or a model's tool call may
        leave them out entirely; anything else that is not a mapping is refused.
        """
        tool = self.get(name)
        if raw_args is None:
            raw_args = {}
        if not isinstance(raw_args, dict):
            kind = type(raw_args).__name__
            raise ToolArgumentsError(
                name, [{"path": "args", "message": f"Input should be an object, not {kind}"}]
            )
        try:
            return tool.args_model.model_validate(raw_args)
        except ValidationError as exc:
            errors = [
                {"path": _field_path(tuple(err["loc"])), "message": err["msg"]}
                for err in exc.errors(include_url=False)
            ]
            raise ToolArgumentsError(name, errors) from None

    def idempotent(self, name: str, raw_args: Any) -> bool:
        """The tool's own `idempotent` verdict on these arguments; False when they do not
        validate or the tool is unknown (nothing is known, so nothing may be repeated)."""
        try:
            args = self.validate(name, raw_args)
        except ToolError:
            return False
        return self._tools[name].idempotent(args)

    async def call(self, name: str, raw_args: Any, ctx: ToolContext) -> Any:
        """Validate, then run. Cancellation propagates untouched so timeouts and shutdown work."""
        args = self.validate(name, raw_args)
        tool = self._tools[name]
        try:
            result = await tool.run(args, ctx)
        except ToolError as exc:
            if self._redact is None:
                raise
            message = str(exc)
            clean = self._redact(message)
            if clean is message:
                raise
            raise ToolError(clean) from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("tool %s raised unexpectedly", name)
            reason = str(exc) or "no details"
            message = f"{name} failed: {type(exc).__name__}: {reason}"
            raise ToolError(message if self._redact is None else self._redact(message)) from exc
        return result if self._redact is None else self._redact(result)
