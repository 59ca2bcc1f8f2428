"""The wire models and the published schema."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hearth.protocol import (
    ClientMessage,
    Error,
    ErrorCode,
    Event,
    GatewayStatusResult,
    Reply,
    client_models,
    parse_client,
    parse_server,
    protocol_schema,
    server_models,
)


def test_schema_document_shape() -> None:
    schema = protocol_schema()
    assert schema["protocol"] == 1
    for side in ("client", "server"):
        jsonschema.validators.validator_for(schema[side]).check_schema(schema[side])
    client_types = {m.model_fields["type"].default for m in client_models().values()}
    assert {"hello", "ping", "gateway.status"} <= client_types
    assert "discriminator" in json.dumps(schema["client"])


def test_every_client_message_forbids_unknown_fields_and_needs_an_id() -> None:
    for name, model in client_models().items():
        assert issubclass(model, ClientMessage)
        with pytest.raises(ValidationError):
            parse_client(json.dumps({"type": name}))
        assert model.model_config.get("extra") == "forbid"


def test_server_messages_are_replies_or_events_or_error() -> None:
    for model in server_models().values():
        assert issubclass(model, Reply | Event) or model is Error


def test_camel_case_on_the_wire() -> None:
    result = GatewayStatusResult(
        id="1", version="v", protocol=1, uptime_s=1.5, connections=0, database="sqlite"
    )
    wire = result.to_wire()
    assert wire["uptimeS"] == 1.5
    assert "uptime_s" not in wire
    assert parse_server(json.dumps(wire)) == result


def test_error_codes_are_screaming_snake() -> None:
    for code in ErrorCode:
        assert code.value == code.name
        assert code.value.upper() == code.value


@given(msg_id=st.text(min_size=1, max_size=128))
def test_ping_ids_round_trip(msg_id: str) -> None:
    message = parse_client(json.dumps({"type": "ping", "id": msg_id}))
    assert message.id == msg_id
