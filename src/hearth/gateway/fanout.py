"""Delivers domain events from the bus to every authenticated connection as server events.

Which protocol event a domain topic becomes is declared on the event model itself
(`Event.topic`), so a new family only adds its model. Domain packages never learn that
WebSockets exist.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from hearth.events import EventBus, Subscription
from hearth.gateway.connection import ConnectionRegistry
from hearth.protocol import ServerMessage, server_models

log = logging.getLogger("hearth.gateway.fanout")


def event_models_by_topic() -> dict[str, type[ServerMessage]]:
    found: dict[str, type[ServerMessage]] = {}
    for model in server_models().values():
        topic = getattr(model, "topic", None)
        if isinstance(topic, str):
            found[topic] = model
    return found


class EventFanout:
    def __init__(self, bus: EventBus, connections: ConnectionRegistry) -> None:
        self._bus = bus
        self._connections = connections
        self._models = event_models_by_topic()
        self._task: asyncio.Task[None] | None = None
        self.subscription: Subscription | None = None

    def start(self) -> None:
        # With nobody connected there is nobody to tell: such events are not even queued.
        self.subscription = self._bus.subscribe(
            *self._models, maxsize=10_000, accept=lambda _event: len(self._connections) > 0
        )
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
            self._connections.broadcast(message)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
