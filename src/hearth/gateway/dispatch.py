"""Handler registration and dispatch: exactly one reply for every request.

Handlers live in `hearth.gateway.handlers.<family>` and are marked with `@handles(MessageType)`.
The composition root includes those modules into a `Router`; there is no central if/elif over
message types. Whatever a handler does (returns, raises a ProtocolError, crashes) the dispatcher
turns it into one reply that carries the request's id.

A handler that cannot block (answered from memory: `ping`, `subscribe`, `workflow.list`) is a
plain function rather than a coroutine. Those are answered by `dispatch_now`, inline where the
frame is read: no task, no wake-up, and the reply is usually on the wire before the next frame
is parsed. Everything that awaits (a database read, a model) runs in its own task.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from hearth.gateway.connection import Connection
from hearth.gateway.errors import error_reply
from hearth.gateway.state import GatewayState
from hearth.protocol import ClientMessage, Error, ErrorCode, Reply, ServerMessage

log = logging.getLogger("hearth.gateway.dispatch")

_MARK = "__hearth_handles__"


@dataclass(frozen=True)
class HandlerContext:
    """The request's surroundings: who sent it and the gateway's services."""

    connection: Connection
    state: GatewayState


Handler = Callable[[Any, HandlerContext], Awaitable[Reply]]
InlineHandler = Callable[[Any, HandlerContext], Reply]
F = TypeVar("F", bound=Callable[..., Any])


def handles(message_type: type[ClientMessage]) -> Callable[[F], F]:
    """Mark a coroutine (or, for requests that cannot block, a plain function) as the handler
    for `message_type`."""

    def mark(func: F) -> F:
        setattr(func, _MARK, message_type)
        return func

    return mark


class Router:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._inline: dict[str, InlineHandler] = {}

    def include(self, module: ModuleType) -> None:
        """Register every `@handles` function of a handler module."""
        for value in vars(module).values():
            message_type = getattr(value, _MARK, None)
            if message_type is None:
                continue
            key = message_type.model_fields["type"].default
            if key in self._handlers or key in self._inline:
                raise ValueError(f"two handlers for {key!r}")
            if inspect.iscoroutinefunction(value):
                self._handlers[key] = value
            else:
                self._inline[key] = value

    @property
    def message_types(self) -> list[str]:
        return sorted({*self._handlers, *self._inline})

    def is_inline(self, message_type: str) -> bool:
        """True when the request is answered without waiting (by `dispatch_now`)."""
        return message_type in self._inline

    def dispatch_now(self, message: ClientMessage, ctx: HandlerContext) -> ServerMessage:
        """The reply of an inline handler; the same one-reply rules as `dispatch`."""
        try:
            reply = self._inline[message.type](message, ctx)
        except Exception as exc:
            known = error_reply(message.id, exc, ctx.state.redactor)
            if known is not None:
                return known
            log.exception("handler for %s failed (request id %s)", message.type, message.id)
            return _internal(message)
        if reply.id != message.id:
            reply = reply.model_copy(update={"id": message.id})
        return reply

    async def dispatch(self, message: ClientMessage, ctx: HandlerContext) -> ServerMessage:
        handler = self._handlers.get(message.type)
        if handler is None:
            if message.type in self._inline:
                return self.dispatch_now(message, ctx)
            return Error(
                id=message.id,
                code=ErrorCode.INVALID_MESSAGE,
                message=f"{message.type!r} is not served by this gateway",
                details={"features": self.message_types},
            )
        try:
            reply = await handler(message, ctx)
        except Exception as exc:
            known = error_reply(message.id, exc, ctx.state.redactor)
            if known is not None:
                return known
            log.exception("handler for %s failed (request id %s)", message.type, message.id)
            return _internal(message)
        if reply.id != message.id:
            reply = reply.model_copy(update={"id": message.id})
        return reply


def _internal(message: ClientMessage) -> Error:
    return Error(
        id=message.id,
        code=ErrorCode.INTERNAL_ERROR,
        message=f"the gateway failed while handling {message.type}; see its log",
    )
