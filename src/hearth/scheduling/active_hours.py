"""Active hours: the window of local time (and days) in which a schedule may fire."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hearth.scheduling.errors import InvalidScheduleError

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def parse_hhmm(value: Any, field: str) -> time:
    if not isinstance(value, str) or not (match := _HHMM.match(value)):
        raise InvalidScheduleError(field, f"{value!r} is not a time of day like '09:00'")
    return time(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class ActiveHours:
    start: time
    end: time
    days_of_week: frozenset[int] | None = None  # ISO: Monday = 1 … Sunday = 7

    @classmethod
    def parse(cls, raw: Any, field: str = "activeHours") -> ActiveHours:
        if not isinstance(raw, dict):
            raise InvalidScheduleError(field, 'expected {"start": "HH:MM", "end": "HH:MM"}')
        unknown = set(raw) - {"start", "end", "daysOfWeek"}
        if unknown:
            raise InvalidScheduleError(f"{field}.{sorted(unknown)[0]}", "unknown key")
        start = parse_hhmm(raw.get("start"), f"{field}.start")
        end = parse_hhmm(raw.get("end"), f"{field}.end")
        if start == end and not (start == time(0, 0) and raw.get("daysOfWeek")):
            raise InvalidScheduleError(
                field,
                "start and end are equal; the window would be empty (00:00-00:00 with "
                "daysOfWeek means whole days)",
            )
        days = raw.get("daysOfWeek")
        parsed_days: frozenset[int] | None = None
        if days is not None:
            if (
                not isinstance(days, list)
                or not days
                or not all(isinstance(d, int) and not isinstance(d, bool) for d in days)
                or not all(1 <= d <= 7 for d in days)
            ):
                raise InvalidScheduleError(
                    f"{field}.daysOfWeek", "expected a non-empty list of 1..7 (Monday = 1)"
                )
            parsed_days = frozenset(days)
        return cls(start, end, parsed_days)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
        }
        if self.days_of_week is not None:
            data["daysOfWeek"] = sorted(self.days_of_week)
        return data

    def contains(self, moment: datetime, tz: ZoneInfo) -> bool:
        """Is `moment` inside the window, judged in `tz`?

        An overnight window (22:00-06:00) belongs to the day it starts on: 02:00 on Saturday
        is inside a Friday-only 22:00-06:00 window.
        """
        local = moment.astimezone(tz)
        now = local.time()
        day = local.isoweekday()
        if self.start == self.end:  # whole days (00:00-00:00 with daysOfWeek)
            return self.days_of_week is None or day in self.days_of_week
        if self.start < self.end:
            inside = self.start <= now < self.end
            window_day = day
        elif now >= self.start:
            inside, window_day = True, day
        elif now < self.end:
            inside, window_day = True, (day - 2) % 7 + 1
        else:
            inside, window_day = False, day
        if not inside:
            return False
        return self.days_of_week is None or window_day in self.days_of_week

    def openings_after(self, moment: datetime, tz: ZoneInfo, days: int = 8) -> list[datetime]:
        """The moments (aware, in `tz`) the window opens in the `days` days after `moment`."""
        local = moment.astimezone(tz)
        found: list[datetime] = []
        for offset in range(days + 1):
            day = local.date() + timedelta(days=offset)
            if self.days_of_week is not None and day.isoweekday() not in self.days_of_week:
                continue
            opening = datetime.combine(day, self.start, tzinfo=tz)
            if opening > local:
                found.append(opening)
        return found

    def next_inside(
        self,
        first_tick: datetime,
        next_after: Callable[[datetime], datetime | None],
        tz: ZoneInfo,
        limit: int = 64,
    ) -> datetime | None:
        """The first tick from `first_tick` on that falls inside the window.

        Rather than stepping tick by tick (an every-1s schedule can be hours away from its
        window), a tick outside jumps to the first tick after the window next opens. None when
        no tick falls inside within about a week (or the trigger ends).
        """
        tick: datetime | None = first_tick
        for _ in range(limit):
            if tick is None:
                return None
            if self.contains(tick, tz):
                return tick
            openings = self.openings_after(tick, tz)
            if not openings:
                return None
            # Just before the opening, so a tick exactly at the opening counts.
            tick = next_after(openings[0] - timedelta(microseconds=1))
        return None
