"""Base classes every wire message derives from.

The wire speaks camelCase while Python code stays snake_case; one alias generator does the
translation so no model spells an alias by hand. Client messages forbid unknown fields so a typo
in a client is reported instead of silently ignored; server messages allow nothing extra either,
because the published schema is a promise to clients.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

PROTOCOL_VERSION = 1


def _require(*names: str) -> Any:
    """Mark fields as required in the published schema even though Python fills them in.

    `type` has a default so code can write `Ping(id=...)`, but on the wire it is always
    present, and a JSON Schema validator can only pick the right union member when it is
    required.
    """

    def extra(schema: dict[str, Any]) -> None:
        props = schema.get("properties", {})
        required = schema.setdefault("required", [])
        for name in names:
            if name in props and name not in required:
                required.insert(0, name)

    return extra


#: `cursor` of a listing request that answers a page at a time (`schedule.list`, ...).
PageCursor = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=512,
        description="The previous page's nextCursor: the page after it.",
    ),
]
#: `nextCursor` of such a listing's reply.
NextCursor = Annotated[
    str | None,
    Field(description="Pass as cursor for the next page; absent on the last page."),
]


class WireModel(BaseModel):
    """Any object that travels on the wire (messages and their nested parts)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=False,
        json_schema_extra=_require("type"),
        # Validators are built on first use, not at import: a CLI command touches a handful
        # of the ~120 message classes, and building all of them cost ~0.15 s per run.
        defer_build=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready dict with camelCase keys and unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ClientMessage(WireModel):
    """A request from a client. Every one carries an `id` that its single reply echoes."""

    type: str
    id: str = Field(min_length=1, max_length=128, description="Correlates the one reply.")

    def to_frame(self) -> str:
        """The JSON frame: fields the caller set, including explicit nulls (which clear
        values in update messages), never defaults it left alone."""
        data = self.model_dump(mode="json", by_alias=True, exclude_unset=True)
        data["type"] = self.type
        return json.dumps(data, separators=(",", ":"))


class ServerMessage(WireModel):
    """Anything the gateway sends."""

    type: str


class Reply(ServerMessage):
    """A direct answer to one client message; `id` is the request's id."""

    id: str


class Event(ServerMessage):
    """A pushed notification. `seq` increases by one per connection, starting at 1."""

    model_config = ConfigDict(json_schema_extra=_require("type", "seq"))

    seq: int = Field(default=0, ge=0, description="Per-connection counter, 1 for the first event.")

    #: Domain-event topics (on the bus) that this event is built from, if any.
    topic: ClassVar[str | None] = None
