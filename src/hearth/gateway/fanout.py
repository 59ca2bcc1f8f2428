"""Delivers domain events from the bus to the connections that want them, as server events.

Each event is validated and encoded once; every receiving connection queues the same text
(its `seq` is spliced in when written). Who wants what is `gateway.subscriptions`: defaults,
the connection's own requests, and its `subscribe` requests.

Which protocol event a domain topic becomes is declared on the event model itself
(`Event.topic`), so a new family only adds its model. Domain packages never learn that
WebSockets exist.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from hearth.events import DomainEvent, EventBus, Subscription
from hearth.gateway.connection import ConnectionRegistry, encode_event
from hearth.gateway.subscriptions import OutgoingEvent
from hearth.protocol import ServerMessage, server_models

log = logging.getLogger("hearth.gateway.fanout")


def event_models_by_topic() -> dict[str, type[ServerMessage]]:
    found: dict[str, type[ServerMessage]] = {}
    for model in server_models().values():
        topic = getattr(model, "topic", None)
        if isinstance(topic, str):
            found[topic] = model
    return found


def _text(message: ServerMessage, name: str) -> str | None:
    value = getattr(message, name, None)
    return value if isinstance(value, str) else None


def outgoing(message: ServerMessage, origin: str | None) -> OutgoingEvent:
    """The event encoded once, with the ids receivers are chosen by."""
    return OutgoingEvent(
        type=message.type,
        body=encode_event(message),
        message=message,
        origin=origin,
        request_id=_text(message, "request_id"),
        execution_id=_text(message, "execution_id"),
        schedule_id=_text(message, "schedule_id"),
        workflow_id=_text(message, "workflow_id"),
    )


class EventFanout:
    def __init__(self, bus: EventBus, connections: ConnectionRegistry) -> None:
        self._bus = bus
        self._connections = connections
        self._models = event_models_by_topic()
        self._task: asyncio.Task[None] | None = None
        self.subscription: Subscription | None = None

    def start(self) -> None:
        # With nobody who could want an event type it is not even queued (nobody connected, or
        # a `schedule.run` nobody subscribed to).
        types = {topic: model.model_fields["type"].default for topic, model in self._models.items()}
        wanted = self._connections.may_want

        def accept(event: DomainEvent) -> bool:
            kind = types.get(event.topic)
            return kind is not None and wanted(kind)

        self.subscription = self._bus.subscribe(*self._models, maxsize=10_000, accept=accept)
        self._task = asyncio.create_task(self._run(self.subscription), name="event-fanout")

    async def _run(self, subscription: object) -> None:
        async for event in subscription:  # type: ignore[attr-defined]
            model = self._models.get(event.topic)
            if model is None:
                continue
            try:
                message = model.model_validate(event.data)
            except ValidationError as exc:
                log.error("dropping %s event that does not fit the protocol: %s", event.topic, exc)
                continue
            self._connections.deliver(outgoing(message, event.origin))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
