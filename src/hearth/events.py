"""The in-process event bus: domain packages publish, the gateway and channels subscribe.

Publishers never wait for subscribers: each subscription owns a bounded queue, and a subscriber
that falls behind loses its oldest events (and is told how many) rather than slowing the
publisher. The `EventBus` protocol is what the rest of the code depends on, so a PostgreSQL
LISTEN/NOTIFY bus that also carries events between gateway nodes can replace `LocalEventBus`
without touching publishers or subscribers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

#: Who caused what runs in this context: the gateway sets it to the connection id while it
#: handles a request, and tasks started from there inherit it. Events published meanwhile carry
#: it as `origin`, so the gateway can deliver a request's own events (a chat stream, the status
#: of an execution it started) to the connection that asked, even before the reply has told it
#: the new ids. Domain code never reads or sets it.
current_origin: ContextVar[str | None] = ContextVar("hearth_event_origin", default=None)


@dataclass(frozen=True)
class DomainEvent:
    """Something that happened. `topic` is dotted (`workflow.status`); `data` is JSON-ready."""

    topic: str
    data: dict[str, Any]
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The connection whose request caused it (see `current_origin`); local to this node.
    origin: str | None = field(default_factory=current_origin.get)


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[DomainEvent]: ...

    @property
    def dropped(self) -> int: ...

    def close(self) -> None: ...


class EventBus(Protocol):
    def publish(self, event: DomainEvent) -> None:
        """Deliver to every current subscriber whose prefixes match; never blocks."""

    def subscribe(
        self,
        *prefixes: str,
        maxsize: int = 1000,
        accept: Callable[[DomainEvent], bool] | None = None,
    ) -> Subscription:
        """Receive events whose topic starts with one of `prefixes` (all when none given).

        `accept`, when given, is asked at publish time: an event it refuses is never queued,
        so a subscriber interested in few events is not woken for every one.
        """

    async def start(self) -> None:
        """Connect whatever carries events between nodes (nothing for the local bus)."""

    @property
    def connected(self) -> bool:
        """Whether events reach the other nodes now (always true for the local bus)."""

    @property
    def reconnects(self) -> int:
        """Times the connection between nodes was re-established (none for the local bus)."""

    async def aclose(self) -> None:
        """Stop delivering; open subscriptions end."""


class _LocalSubscription:
    def __init__(
        self,
        bus: LocalEventBus,
        prefixes: tuple[str, ...],
        maxsize: int,
        accept: Callable[[DomainEvent], bool] | None = None,
    ) -> None:
        self._bus = bus
        self.prefixes = prefixes
        self._accept = accept
        self._queue: asyncio.Queue[DomainEvent | None] = asyncio.Queue(maxsize)
        self._dropped = 0
        self._closed = False

    @property
    def dropped(self) -> int:
        return self._dropped

    def matches(self, topic: str) -> bool:
        return not self.prefixes or topic.startswith(self.prefixes)

    def offer(self, event: DomainEvent) -> None:
        if self._closed or (self._accept is not None and not self._accept(event)):
            return
        if self._queue.full():
            self._queue.get_nowait()
            self._dropped += 1
        self._queue.put_nowait(event)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bus.unsubscribe(self)
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[DomainEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event


class LocalEventBus:
    """Delivers events to subscribers of this process only."""

    def __init__(self) -> None:
        self._subscriptions: list[_LocalSubscription] = []

    @property
    def connected(self) -> bool:
        return True

    @property
    def reconnects(self) -> int:
        return 0

    def publish(self, event: DomainEvent) -> None:
        for sub in tuple(self._subscriptions):
            if sub.matches(event.topic):
                sub.offer(event)

    def subscribe(
        self,
        *prefixes: str,
        maxsize: int = 1000,
        accept: Callable[[DomainEvent], bool] | None = None,
    ) -> _LocalSubscription:
        sub = _LocalSubscription(self, prefixes, maxsize, accept)
        self._subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: _LocalSubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)

    def close(self) -> None:
        for sub in tuple(self._subscriptions):
            sub.close()

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        self.close()
