"""The base of errors a client can act on: each carries its protocol error code.

A service raises, say, `SessionNotFoundError`; the gateway's dispatcher turns any `DomainError`
into an `error` reply with the error's `code`, `message` and `details`, so handlers hold no
exception-to-code tables. Codes are plain strings (the values of `hearth.protocol.ErrorCode`)
so that domain packages do not import the protocol layer; a test checks every code is one.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """An error whose text is written for the person who sent the request.

    Subclasses set `code` (an instance may set its own, when one class covers several
    codes); one that needs another wording or details on the wire than its `str()` overrides
    `message` or `details`.
    """

    code: str = "INTERNAL_ERROR"

    @property
    def message(self) -> str:
        return str(self)

    @property
    def details(self) -> dict[str, Any] | None:
        return None


class FieldError(DomainError):
    """A request field at fault: on the wire "invalid FIELD: REASON", details {"field": FIELD}.

    `text` is the exception's own `str()` where it differs from `reason` (for logs and the
    CLI, which name the field their own way)."""

    def __init__(self, field: str, reason: str, text: str | None = None) -> None:
        super().__init__(reason if text is None else text)
        self.field = field
        self.reason = reason

    @property
    def message(self) -> str:
        return f"invalid {self.field}: {self.reason}"

    @property
    def details(self) -> dict[str, Any] | None:
        return {"field": self.field}
