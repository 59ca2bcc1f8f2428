"""Errors of the chat service, each with its protocol error code."""

from __future__ import annotations

from hearth.errors import DomainError


class ChatError(DomainError):
    pass


class SessionNotFoundError(ChatError):
    code = "SESSION_NOT_FOUND"


class SessionBusyError(ChatError):
    code = "SESSION_BUSY"


class NoPendingToolApprovalError(ChatError):
    code = "NO_PENDING_APPROVAL"
