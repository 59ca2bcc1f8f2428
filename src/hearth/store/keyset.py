"""Keyset positions: "the rows after this one" in a listing ordered by (time, id).

A page of a growing table starts after the last row the previous page showed, not at an offset,
so rows added or deleted meanwhile neither repeat nor skip what is left (see `hearth.pages`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa


def after(
    at: sa.ColumnElement[Any],
    key: sa.ColumnElement[Any],
    position: tuple[datetime, str],
    *,
    newest_first: bool = False,
) -> sa.ColumnElement[bool]:
    """Rows past `position` in the order (at, key), or (at DESC, key DESC) when newest first."""
    when, ident = position
    if newest_first:
        return sa.or_(at < when, sa.and_(at == when, key < ident))
    return sa.or_(at > when, sa.and_(at == when, key > ident))
