"""Delivers domain events from the bus to the connections that want them, as server events.

Each event is validated and encoded once; every receiving connection queues the same text
(its `seq` is spliced in when written). Who wants what is `gateway.subscriptions`: defaults,
the connection's own requests, and its `subscribe` requests.

Which protocol event a domain topic becomes is declared on the event model itself
(`Event.topic`), so a new family only adds its model. Domain packages never learn that
WebSockets exist.
"""

from __future__ import annotations

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
    """Delivers each event synchronously, inside `bus.publish`.

    The bus asks a subscription's `accept` at publish time; the fan-out does its whole work
    there (validate, encode once, queue or write on each wanting connection) and never queues
    the event. Nothing in that awaits: a connection's writes go to its transport's buffer or
    its own queue. So an event costs no task wake-up and no loop turn on its way to the socket
    (a chat delta reaches the client in the turn it was published), and events keep exactly
    the order they were published in.
    """

    def __init__(self, bus: EventBus, connections: ConnectionRegistry) -> None:
        self._bus = bus
        self._connections = connections
        self._models = event_models_by_topic()
        self._types = {topic: m.model_fields["type"].default for topic, m in self._models.items()}
        self.subscription: Subscription | None = None

    def start(self) -> None:
        self.subscription = self._bus.subscribe(*self._models, maxsize=1, accept=self._deliver)

    def _deliver(self, event: DomainEvent) -> bool:
        """Deliver `event` now; always False (nothing is queued on the bus)."""
        kind = self._types.get(event.topic)
        # With nobody who could want this type (nobody connected, or a `schedule.run` nobody
        # subscribed to), it is not even validated.
        if kind is None or not self._connections.may_want(kind):
            return False
        try:
            message = self._models[event.topic].model_validate(event.data)
        except ValidationError as exc:
            log.error("dropping %s event that does not fit the protocol: %s", event.topic, exc)
            return False
        try:
            self._connections.deliver(outgoing(message, event.origin))
        except Exception:  # a publisher must never fail because of a connection
            log.exception("could not deliver a %s event", event.topic)
        return False

    async def stop(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
