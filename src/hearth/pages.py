"""Page cursors for listings that grow with their table (`schedule.list`, `session.list`).

A cursor is a *position*, the (time, id) key of the last row a page showed, not a row that
must still exist: deleting rows between pages skips nothing that is left. It travels as an
opaque token so clients do not build their own, and a token this gateway did not give out is
refused with a message that says what to send instead.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from hearth.errors import FieldError

T = TypeVar("T")


class InvalidCursorError(FieldError):
    """A page cursor this gateway did not give out (or a client altered)."""

    code = "INVALID_REQUEST"


def encode_cursor(at: datetime, key: str) -> str:
    raw = f"{at.astimezone(UTC).isoformat()}|{key}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """The (time, id) position of `cursor`; None for the first page."""
    if cursor is None:
        return None
    when: datetime | None = None
    key = ""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, key = raw.split("|", 1)
        when = datetime.fromisoformat(at)
    except ValueError:  # bad base64, UTF-8, separator or time (binascii.Error is a ValueError)
        when = None
    if when is None or when.tzinfo is None or not key:
        raise InvalidCursorError(
            "cursor", "not one this gateway gave out; pass the previous page's nextCursor"
        )
    return when, key


def split_page(
    rows: Sequence[T], limit: int, position: Callable[[T], tuple[datetime, str]]
) -> tuple[list[T], str | None]:
    """The page and the cursor after it, from rows read with `limit + 1`.

    The extra row says whether there is a next page: a page that ends exactly at the last row
    gets no cursor (counting would promise one more page, and an empty one).
    """
    page = list(rows[:limit])
    if len(rows) <= limit:
        return page, None
    return page, encode_cursor(*position(page[-1]))
