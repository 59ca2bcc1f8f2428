"""The async Python client for the Hearth protocol (used by the CLI, tests and benchmarks)."""

from hearth.client.errors import (
    ClientError,
    ConnectionLostError,
    GatewayError,
    GatewayUnavailableError,
    RequestTimeoutError,
    UnexpectedReplyError,
)
from hearth.client.gateway_client import GatewayClient, ws_url

__all__ = [
    "ClientError",
    "ConnectionLostError",
    "GatewayClient",
    "GatewayError",
    "GatewayUnavailableError",
    "RequestTimeoutError",
    "UnexpectedReplyError",
    "ws_url",
]
