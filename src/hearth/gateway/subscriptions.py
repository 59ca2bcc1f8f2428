"""Which server events one connection receives: its defaults, its own requests, its subscriptions.

The fanout builds one `OutgoingEvent` per domain event (encoded once) and asks each
connection's `EventInterest` whether it wants it. Deciding is a few set lookups, so an event
nobody asked for costs almost nothing per connection.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from hearth.protocol import ServerMessage, server_models
from hearth.protocol.messages.subscriptions import SubscriptionFilter
from hearth.workflows.states import TERMINAL

#: Delivered to every connection without subscribing: a person may have to act on them.
DEFAULT_TOPICS = frozenset(
    {
        "workflow.approval.request",
        "tool.approval.request",
        "approval.resolved",
        "heartbeat.alert",
        "notification",
    }
)
#: Events that belong to a request, delivered to the connection whose request caused them.
#: (`error` here is the chat `error` event of a stream that failed mid-way.)
REQUEST_TOPICS = frozenset(
    {
        "session.created",
        "chat.stream.delta",
        "chat.stream.end",
        "tool.call",
        "tool.result",
        "tool.error",
        "error",
        "workflow.status",
    }
)
#: High-rate status events: a connection that falls behind gets only the latest one per key.
COALESCE_BY = {"workflow.status": "execution_id", "schedule.run": "schedule_id"}
#: Request ids and execution ids remembered per connection (the oldest are forgotten first).
MAX_OWNED = 4096


def event_types() -> frozenset[str]:
    """Every pushed event type a client may subscribe to."""
    return frozenset(
        name for name, model in server_models().items() if getattr(model, "topic", None)
    )


@dataclass(frozen=True, slots=True)
class OutgoingEvent:
    """One server event, encoded once for all its receivers (without `seq`, which is per
    connection and spliced in by the writer)."""

    type: str
    body: str
    message: ServerMessage
    origin: str | None
    request_id: str | None
    execution_id: str | None
    schedule_id: str | None
    workflow_id: str | None

    @property
    def coalesce_key(self) -> tuple[str, str] | None:
        field = COALESCE_BY.get(self.type)
        value = getattr(self, field) if field else None
        return (self.type, value) if value else None


@dataclass(frozen=True, slots=True)
class EventSubscription:
    id: str
    topics: frozenset[str]
    schedule_ids: frozenset[str] | None = None
    execution_ids: frozenset[str] | None = None
    workflow_ids: frozenset[str] | None = None

    @property
    def filtered(self) -> bool:
        return (
            self.schedule_ids is not None
            or self.execution_ids is not None
            or self.workflow_ids is not None
        )

    def matches(self, event: OutgoingEvent) -> bool:
        if "*" not in self.topics and event.type not in self.topics:
            return False
        if not self.filtered:
            return True
        return (
            (self.schedule_ids is not None and event.schedule_id in self.schedule_ids)
            or (self.execution_ids is not None and event.execution_id in self.execution_ids)
            or (self.workflow_ids is not None and event.workflow_id in self.workflow_ids)
        )


def _ids(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


class EventInterest:
    """The events one connection asked for, and the requests and executions it owns."""

    def __init__(self, connection_id: str) -> None:
        self.connection_id = connection_id
        self._subscriptions: dict[str, EventSubscription] = {}
        self._owned: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._subscriptions)

    def add(self, topics: Iterable[str], filter_: SubscriptionFilter | None) -> EventSubscription:
        sub = EventSubscription(
            id="sub_" + secrets.token_hex(6),
            topics=frozenset(topics),
            schedule_ids=_ids(filter_.schedule_ids) if filter_ else None,
            execution_ids=_ids(filter_.execution_ids) if filter_ else None,
            workflow_ids=_ids(filter_.workflow_ids) if filter_ else None,
        )
        self._subscriptions[sub.id] = sub
        return sub

    def remove(self, subscription_id: str) -> EventSubscription | None:
        return self._subscriptions.pop(subscription_id, None)

    def subscriptions(self) -> list[EventSubscription]:
        return list(self._subscriptions.values())

    def own(self, *ids: str | None) -> None:
        """Remember ids (chat request ids, execution ids) whose events are this connection's."""
        for value in ids:
            if not value:
                continue
            self._owned[value] = None
            self._owned.move_to_end(value)
            if len(self._owned) > MAX_OWNED:
                self._owned.popitem(last=False)

    def owns(self, value: str) -> bool:
        return value in self._owned

    def wants(self, event: OutgoingEvent) -> bool:
        if event.type in DEFAULT_TOPICS:
            return True
        if event.type in REQUEST_TOPICS and (
            event.origin == self.connection_id
            or (event.request_id is not None and event.request_id in self._owned)
            or (event.execution_id is not None and event.execution_id in self._owned)
        ):
            return True
        return any(sub.matches(event) for sub in self._subscriptions.values())

    def delivered(self, event: OutgoingEvent) -> None:
        """Forget a chat request once its stream has ended, and an execution once it has
        finished: each is the last event of its kind, and a connection that lives for months
        (a dashboard, a bridge) should not keep thousands of ids it will never see again."""
        if event.type == "chat.stream.end" and event.request_id is not None:
            self._owned.pop(event.request_id, None)
        elif (
            event.type == "workflow.status"
            and event.execution_id is not None
            and getattr(event.message, "status", None) in TERMINAL
        ):
            self._owned.pop(event.execution_id, None)
