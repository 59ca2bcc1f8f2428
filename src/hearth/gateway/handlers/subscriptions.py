"""subscribe and unsubscribe: the events a connection receives beyond its defaults."""

from __future__ import annotations

from functools import cache

from hearth.gateway.dispatch import HandlerContext, handles
from hearth.gateway.subscriptions import event_types
from hearth.protocol import ErrorCode, ProtocolError
from hearth.protocol.messages.subscriptions import (
    MAX_SUBSCRIPTIONS,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
)


@cache
def _known() -> frozenset[str]:
    return event_types() | {"*"}


@handles(Subscribe)
def subscribe(message: Subscribe, ctx: HandlerContext) -> Subscribed:
    known = _known()
    for n, topic in enumerate(message.topics):
        if topic not in known:
            raise ProtocolError(
                ErrorCode.INVALID_REQUEST,
                f"unknown topic {topic!r} at topics.{n}; topics are event types "
                f'({", ".join(sorted(known - {"*"}))}) or "*"',
                {"path": f"topics.{n}", "topic": topic},
            )
    if len(ctx.connection.interest) >= MAX_SUBSCRIPTIONS:
        raise ProtocolError(
            ErrorCode.INVALID_REQUEST,
            f"this connection already holds {MAX_SUBSCRIPTIONS} subscriptions; "
            "unsubscribe from one first",
        )
    topics = list(dict.fromkeys(message.topics))
    sub = ctx.state.connections.subscribe(ctx.connection, topics, message.filter)
    return Subscribed(id=message.id, subscription_id=sub.id, topics=topics)


@handles(Unsubscribe)
def unsubscribe(message: Unsubscribe, ctx: HandlerContext) -> Unsubscribed:
    removed = ctx.state.connections.unsubscribe(ctx.connection, message.subscription_id)
    return Unsubscribed(id=message.id, subscription_id=message.subscription_id, removed=removed)
