"""Subscriptions: which server events a connection receives beyond its defaults.

Without subscribing, a connection receives approval requests, heartbeat alerts, notifications
and the events of its own requests (see docs/protocol.md, "Server events"). Everything else,
for example every `schedule.run` or the `workflow.status` of executions someone else started,
is sent only to connections that asked for it, so a busy scheduler costs nothing for clients
that do not watch it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hearth.protocol.base import ClientMessage, Reply, WireModel

#: How many subscriptions one connection may hold, and ids in one filter list.
MAX_SUBSCRIPTIONS = 64
MAX_FILTER_IDS = 1000


class SubscriptionFilter(WireModel):
    """Narrows a subscription to events about these ids.

    An event passes when any id field it carries (`scheduleId`, `executionId`, `workflowId`)
    is in the list given for that field; an event that carries none of the listed fields does
    not pass. Fields left out do not filter.
    """

    schedule_ids: list[str] | None = Field(default=None, max_length=MAX_FILTER_IDS)
    execution_ids: list[str] | None = Field(default=None, max_length=MAX_FILTER_IDS)
    workflow_ids: list[str] | None = Field(default=None, max_length=MAX_FILTER_IDS)


class Subscribe(ClientMessage):
    type: Literal["subscribe"] = "subscribe"
    topics: list[str] = Field(
        min_length=1,
        max_length=64,
        description='Event types (`schedule.run`, `workflow.status`, …) or "*" for every event.',
    )
    filter: SubscriptionFilter | None = None


class Subscribed(Reply):
    type: Literal["subscribed"] = "subscribed"
    subscription_id: str
    topics: list[str]


class Unsubscribe(ClientMessage):
    type: Literal["unsubscribe"] = "unsubscribe"
    subscription_id: str = Field(min_length=1, max_length=128)


class Unsubscribed(Reply):
    type: Literal["unsubscribed"] = "unsubscribed"
    subscription_id: str
    removed: bool = Field(description="False when this connection held no such subscription.")


CLIENT_MESSAGES = (Subscribe, Unsubscribe)
SERVER_MESSAGES = (Subscribed, Unsubscribed)
