"""Exceptions a handler lets out, turned into the `error` reply a client sees.

Kept apart from the dispatcher so that the mapping (which exceptions are the client's to read,
with which code) and the redaction of their text live in one place.
"""

from __future__ import annotations

from hearth.errors import DomainError
from hearth.protocol import Error, ErrorCode, ProtocolError
from hearth.redact import Redactor


def error_reply(request_id: str | None, exc: Exception, redactor: Redactor) -> Error | None:
    """The reply for an error meant for the client (a `ProtocolError`, or any `DomainError`
    with its own code), or None for a crash (which is logged and answered INTERNAL_ERROR by the
    dispatcher). Text and details never carry a secret: a
    provider's error body may quote the key that was refused."""
    if isinstance(exc, ProtocolError):
        code, message, details = exc.code, exc.message, exc.details
    elif isinstance(exc, DomainError):
        code, message, details = ErrorCode(exc.code), exc.message, exc.details
    else:
        return None
    return Error(
        id=request_id,
        code=code,
        message=redactor.text(message),
        details=redactor.value(details),
    )
