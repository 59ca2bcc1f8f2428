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
from typing import Any, Protocol

from pydantic import ValidationError

from hearth.tools.base import Tool, ToolArgumentsError, ToolContext, ToolError, ToolNotFoundError

log = logging.getLogger("hearth.tools")


def _field_path(loc: tuple[int | str, ...]) -> str:
    """`("headers", "Accept")` -> `args.headers.Accept`; list indices as `[0]`."""
    path = "args"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


class ToolSource(Protocol):
    """Tools that come and go while the gateway runs (the tools of MCP servers).

    The registry asks a source for its current tools on every lookup, so a tool list that
    changed is seen by the next call, and `prepare` lets a caller start what a source starts
    lazily before it assembles the tools it offers.
    """

    def tools(self) -> Iterable[Tool]:
        """The tools available right now (never blocks)."""

    async def prepare(self, name: str | None = None) -> None:
        """Make the tools behind `name` (all, when None) available if they can be; never raises."""

    def unavailable(self, name: str) -> str | None:
        """Why `name`, which this source would provide, is not available now; None otherwise."""


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
        self._sources: list[ToolSource] = []
        for tool in tools:
            self.register(tool)

    def add_source(self, source: ToolSource) -> None:
        """Tools of `source` join the registry; a name a built-in tool has stays the built-in's."""
        self._sources.append(source)

    def _current(self) -> dict[str, Tool]:
        if not self._sources:
            return self._tools
        found = {tool.name: tool for source in self._sources for tool in source.tools()}
        found.update(self._tools)
        return found

    async def prepare(self, name: str | None = None) -> None:
        """Start what dynamic sources start lazily (bounded by their own timeouts)."""
        for source in self._sources:
            await source.prepare(name)

    def unavailable(self, name: str) -> str | None:
        """Why `name` is not available now although a source would provide it, else None."""
        for source in self._sources:
            reason = source.unavailable(name)
            if reason is not None:
                return reason
        return None

    def register(self, tool: Tool) -> None:
        """Add a tool; a second tool with the same name is a wiring mistake, so it raises."""
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool:
        tools = self._current()
        try:
            return tools[name]
        except KeyError:
            reason = self.unavailable(name)
            if reason is not None:
                raise ToolNotFoundError(f"tool {name!r} is not available: {reason}") from None
            known = ", ".join(sorted(tools)) or "none"
            raise ToolNotFoundError(f"unknown tool {name!r}; known tools: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._current())

    def __iter__(self) -> Iterator[Tool]:
        tools = self._current()
        return iter([tools[name] for name in sorted(tools)])

    def __contains__(self, name: object) -> bool:
        return name in self._current()

    def __len__(self) -> int:
        return len(self._current())

    def validate(self, name: str, raw_args: Any) -> Any:
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
            return tool.parse_args(raw_args)
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
        return self.get(name).idempotent(args)

    async def call(self, name: str, raw_args: Any, ctx: ToolContext) -> Any:
        """Validate, then run. Cancellation propagates untouched so timeouts and shutdown work.

        A name a source would provide but does not yet (its server starts lazily, or is being
        restarted) is prepared first, so a workflow step does not fail for a server that is
        simply not up yet.
        """
        if name not in self:
            await self.prepare(name)
        tool = self.get(name)
        args = self.validate(name, raw_args)
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
