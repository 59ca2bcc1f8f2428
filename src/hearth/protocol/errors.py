"""Error codes shared by the gateway, the client and every handler."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """SCREAMING_SNAKE codes; clients branch on these, never on message text."""

    INVALID_MESSAGE = "INVALID_MESSAGE"
    INVALID_REQUEST = "INVALID_REQUEST"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    UNAUTHORIZED = "UNAUTHORIZED"
    RATE_LIMITED = "RATE_LIMITED"
    UNSUPPORTED_PROTOCOL = "UNSUPPORTED_PROTOCOL"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    WORKFLOW_NOT_FOUND = "WORKFLOW_NOT_FOUND"
    WORKFLOW_INVALID = "WORKFLOW_INVALID"
    INVALID_INPUT = "INVALID_INPUT"
    EXECUTION_NOT_FOUND = "EXECUTION_NOT_FOUND"
    NO_PENDING_APPROVAL = "NO_PENDING_APPROVAL"
    MODEL_NOT_CONFIGURED = "MODEL_NOT_CONFIGURED"
    MODEL_ERROR = "MODEL_ERROR"
    SCHEDULE_NOT_FOUND = "SCHEDULE_NOT_FOUND"
    INVALID_SCHEDULE = "INVALID_SCHEDULE"
    SCHEDULE_CONFLICT = "SCHEDULE_CONFLICT"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_BUSY = "SESSION_BUSY"
    INVALID_HEARTBEAT = "INVALID_HEARTBEAT"
    CONFIG_INVALID = "CONFIG_INVALID"
    PAIRING_CODE_INVALID = "PAIRING_CODE_INVALID"
    TELEGRAM_USER_NOT_FOUND = "TELEGRAM_USER_NOT_FOUND"
    MCP_SERVER_NOT_FOUND = "MCP_SERVER_NOT_FOUND"
    TOOL_NOT_FOUND = "TOOL_NOT_FOUND"
    TOOL_DENIED = "TOOL_DENIED"
    TOOL_FAILED = "TOOL_FAILED"


class ProtocolError(Exception):
    """Raised by a handler to answer its request with an `error` reply instead of a result."""

    def __init__(
        self, code: ErrorCode, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class CloseCode:
    """WebSocket close codes the gateway uses (4000-4999 are application defined)."""

    UNAUTHORIZED = 4401
    HELLO_TIMEOUT = 4408
    RATE_LIMITED = 4429
    UNSUPPORTED_PROTOCOL = 4426
    SLOW_CONSUMER = 4008
    MESSAGE_TOO_BIG = 1009
    POLICY_VIOLATION = 1008
