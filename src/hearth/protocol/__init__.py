"""The wire format: message models, error codes, the unions and their JSON Schema.

This package imports nothing else from Hearth, so any program (including the tests and third
party clients) can depend on it alone.
"""

from hearth.protocol.base import (
    PROTOCOL_VERSION,
    ClientMessage,
    Event,
    Reply,
    ServerMessage,
    WireModel,
)
from hearth.protocol.errors import CloseCode, ErrorCode, ProtocolError
from hearth.protocol.messages.core import (
    ClientInfo,
    Error,
    GatewayStatus,
    GatewayStatusResult,
    Hello,
    HelloOk,
    Ping,
    Pong,
    ServerInfo,
)
from hearth.protocol.registry import (
    client_models,
    parse_client,
    parse_server,
    protocol_schema,
    server_models,
)

__all__ = [
    "PROTOCOL_VERSION",
    "ClientInfo",
    "ClientMessage",
    "CloseCode",
    "Error",
    "ErrorCode",
    "Event",
    "GatewayStatus",
    "GatewayStatusResult",
    "Hello",
    "HelloOk",
    "Ping",
    "Pong",
    "ProtocolError",
    "Reply",
    "ServerInfo",
    "ServerMessage",
    "WireModel",
    "client_models",
    "parse_client",
    "parse_server",
    "protocol_schema",
    "server_models",
]
