"""Exceptions the client raises; each message says what to do next."""

from __future__ import annotations

from typing import Any

from hearth.protocol import ErrorCode


class ClientError(Exception):
    """Base class for everything `GatewayClient` raises."""


class GatewayUnavailableError(ClientError):
    """Nothing answers at the gateway's address (not running, or wrong URL)."""


class ConnectionLostError(ClientError):
    """The connection dropped before the reply arrived; the request may or may not have run."""


class RequestTimeoutError(ClientError):
    """No reply arrived in time (the request may still be carried out)."""


class GatewayError(ClientError):
    """The gateway answered with an `error` reply."""

    def __init__(self, code: ErrorCode | str, message: str, details: dict[str, Any] | None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details


class UnexpectedReplyError(ClientError):
    """The reply had a different type than the request promises (a protocol bug)."""
