"""Handler registration and dispatch: exactly one reply for every request.

Handlers live in `hearth.gateway.handlers.<family>` and are marked with `@handles(MessageType)`.
The composition root includes those modules into a `Router`; there is no central if/elif over
message types. Whatever a handler does (returns, raises a ProtocolError, crashes) the dispatcher
turns it into one reply that carries the request's id.
"""

from __future__ import annotations

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

M = TypeVar("M", bound=ClientMessage)
_MARK = "__hearth_handles__"


@dataclass(frozen=True)
class HandlerContext:
    """The request's surroundings: who sent it and the gateway's services."""

    connection: Connection
    state: GatewayState


Handler = Callable[[Any, HandlerContext], Awaitable[Reply]]


def handles(
    message_type: type[M],
) -> Callable[[Callable[[M, HandlerContext], Awaitable[Reply]]], Handler]:
    """Mark a coroutine as the handler for `message_type`."""

    def mark(func: Callable[[M, HandlerContext], Awaitable[Reply]]) -> Handler:
        setattr(func, _MARK, message_type)
        return func

    return mark


class Router:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def include(self, module: ModuleType) -> None:
        """Register every `@handles` function of a handler module."""
        for value in vars(module).values():
            message_type = getattr(value, _MARK, None)
            if message_type is None:
                continue
            key = message_type.model_fields["type"].default
            if key in self._handlers:
                raise ValueError(f"two handlers for {key!r}")
            self._handlers[key] = value

    @property
    def message_types(self) -> list[str]:
        return sorted(self._handlers)

    async def dispatch(self, message: ClientMessage, ctx: HandlerContext) -> ServerMessage:
        handler = self._handlers.get(message.type)
        if handler is None:
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
            return Error(
                id=message.id,
                code=ErrorCode.INTERNAL_ERROR,
                message=f"the gateway failed while handling {message.type}; see its log",
            )
        if reply.id != message.id:
            reply = reply.model_copy(update={"id": message.id})
        return reply
