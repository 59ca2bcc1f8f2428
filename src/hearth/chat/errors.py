"""Errors of the chat service; the gateway maps each to a protocol error code."""

from __future__ import annotations


class ChatError(Exception):
    pass


class SessionNotFoundError(ChatError):
    pass


class SessionBusyError(ChatError):
    pass


class NoPendingToolApprovalError(ChatError):
    pass
