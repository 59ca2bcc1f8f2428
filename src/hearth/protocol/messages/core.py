"""Connection-level messages: handshake, liveness, errors and gateway status."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from hearth.protocol.base import ClientMessage, Reply, ServerMessage, WireModel
from hearth.protocol.errors import ErrorCode
from hearth.protocol.messages.mcp import McpServerInfo
from hearth.protocol.messages.telegram import TelegramStatusInfo


class ClientInfo(WireModel):
    """Who is connecting; shown in logs and `gateway.status`, never trusted for auth."""

    name: str = Field(max_length=100)
    version: str = Field(default="", max_length=50)


class ServerInfo(WireModel):
    name: str
    version: str


class Hello(ClientMessage):
    """The mandatory first frame: proves the client holds the gateway token."""

    type: Literal["hello"] = "hello"
    protocol: int = Field(ge=1)
    token: str = Field(min_length=1, max_length=512)
    client: ClientInfo | None = None


class HelloOk(Reply):
    type: Literal["hello.ok"] = "hello.ok"
    protocol: int
    server: ServerInfo
    connection_id: str
    features: list[str] = Field(description="Every client message type this gateway answers.")


class Ping(ClientMessage):
    type: Literal["ping"] = "ping"


class Pong(Reply):
    type: Literal["pong"] = "pong"


class GatewayStatus(ClientMessage):
    type: Literal["gateway.status"] = "gateway.status"


class GatewayStatusResult(Reply):
    type: Literal["gateway.status.result"] = "gateway.status.result"
    version: str
    protocol: int
    uptime_s: float
    connections: int
    database: Literal["sqlite", "postgresql"]
    node_id: str | None = None
    nodes: int | None = Field(default=None, description="Live gateway processes on this database.")
    telegram: TelegramStatusInfo | None = Field(
        default=None, description="The Telegram channel, when it is enabled."
    )
    mcp: list[McpServerInfo] | None = Field(
        default=None, description="The MCP servers, when any is configured."
    )


class Error(ServerMessage):
    """The reply to a request that failed, or a connection-level error (then without `id`).

    Also pushed as an event (with `seq` and `requestId`, without `id`) when a chat stream
    fails after its `chat.stream.start` reply; its `chat.stream.end` follows.
    """

    topic: ClassVar[str | None] = "chat.error"
    type: Literal["error"] = "error"
    id: str | None = None
    code: ErrorCode
    message: str
    details: dict[str, Any] | None = None
    request_id: str | None = None
    seq: int | None = None


CLIENT_MESSAGES = (Hello, Ping, GatewayStatus)
SERVER_MESSAGES = (HelloOk, Pong, GatewayStatusResult, Error)
