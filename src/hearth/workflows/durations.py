"""Durations ("30s", "1h30m") and points in time (ISO 8601) as workflow files write them.

Workflow authors write waits, timeouts and retry back-offs by hand, so the accepted forms are
the short human ones; every rejection says which text was wrong and what would have worked,
because the message ends up verbatim in `workflow.list` and `hearth workflow validate`.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta, tzinfo

DURATION_FORMS = "a number with a unit: '500ms', '30s', '5m', '2h', '1d', or combined like '1h30m'"

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_WHOLE = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d))+\s*", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """Parse "30s", "5m", "1h30m", "500ms"; a bare number is refused to keep units explicit."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}: expected {DURATION_FORMS}")
    total = 0.0
    for amount, unit in _PART.findall(text):
        total += float(amount) * _UNIT_SECONDS[unit.lower()]
    return _seconds(total, text)


def parse_duration_value(value: str | int | float) -> timedelta:
    """Like `parse_duration`, but YAML numbers (`timeout: 30`) count as seconds."""
    if isinstance(value, bool):
        # bool is an int subclass; `timeout: yes` is a mistake, not one second.
        raise ValueError(f"invalid duration {value!r}: expected {DURATION_FORMS}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(
                f"invalid duration {value!r}: expected a non-negative number of seconds"
            )
        return _seconds(float(value), value)
    return parse_duration(value)


def _seconds(total: float, original: object) -> timedelta:
    try:
        return timedelta(seconds=total)
    except OverflowError:
        raise ValueError(f"invalid duration {original!r}: too long") from None


def parse_until(text: str | datetime | date, tz: tzinfo = UTC) -> datetime:
    """An ISO 8601 date-time as an aware UTC datetime; a naive one is read in `tz`.

    A bare date means its midnight. A bare time of day ("09:00") is refused: whether it means
    today or tomorrow depends on when the step runs, and guessing would make a wait silently skip
    a day. `datetime`/`date` objects are accepted too because YAML turns unquoted timestamps
    into them.
    """
    if isinstance(text, datetime):
        moment = text
    elif isinstance(text, date):
        moment = datetime(text.year, text.month, text.day)
    elif isinstance(text, str):
        stripped = text.strip()
        if not re.match(r"\d{4}-\d{2}-\d{2}", stripped):
            raise ValueError(
                f"invalid time {text!r}: expected an ISO 8601 date-time such as "
                "'2030-01-31T09:00:00+01:00' or '2030-01-31T08:00:00Z'"
            )
        try:
            moment = datetime.fromisoformat(stripped)
        except ValueError:
            raise ValueError(
                f"invalid time {text!r}: expected an ISO 8601 date-time such as "
                "'2030-01-31T09:00:00+01:00' or '2030-01-31T08:00:00Z'"
            ) from None
    else:
        raise ValueError(f"invalid time {text!r}: expected an ISO 8601 date-time string")
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)
