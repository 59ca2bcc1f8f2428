"""Base classes every wire message derives from.

The wire speaks camelCase while Python code stays snake_case; one alias generator does the
translation so no model spells an alias by hand. Client messages forbid unknown fields so a typo
in a client is reported instead of silently ignored; server messages allow nothing extra either,
because the published schema is a promise to clients.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

PROTOCOL_VERSION = 1


class WireModel(BaseModel):
    """Any object that travels on the wire (messages and their nested parts)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict with camelCase keys and unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ClientMessage(WireModel):
    """A request from a client. Every one carries an `id` that its single reply echoes."""

    type: str
    id: str = Field(min_length=1, max_length=128, description="Correlates the one reply.")


class ServerMessage(WireModel):
    """Anything the gateway sends."""

    type: str


class Reply(ServerMessage):
    """A direct answer to one client message; `id` is the request's id."""

    id: str


class Event(ServerMessage):
    """A pushed notification. `seq` increases by one per connection, starting at 1."""

    seq: int = Field(default=0, ge=0)

    #: Domain-event topics (on the bus) that this event is built from, if any.
    topic: ClassVar[str | None] = None
