"""The ticks a schedule would fire, computed by the scheduler's own planning code.

A preview walks the trigger exactly as the scheduler does: the first `next_run` is
`next_after(from)`, and each tick's `plan` (as of its own time, so on time) gives the next one.
A tick outside the active hours is the one the scheduler would record as skipped. So what a
preview shows across a daylight-saving change is what the gateway will do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hearth.scheduling.active_hours import ActiveHours
from hearth.scheduling.planning import plan
from hearth.scheduling.triggers import Trigger

MAX_COUNT = 100


@dataclass(frozen=True)
class PreviewTick:
    at: datetime  # UTC
    local: datetime  # the same moment in the schedule's zone
    skipped: str | None  # "active_hours" when the window would skip it


def preview_ticks(
    trigger: Trigger,
    tz: ZoneInfo,
    active_hours: ActiveHours | None,
    start: datetime,
    count: int,
) -> list[PreviewTick]:
    """The first `count` ticks strictly after `start` (fewer when the trigger ends)."""
    found: list[PreviewTick] = []
    due = trigger.next_after(start)
    while due is not None and len(found) < count:
        tick = plan(trigger, due, due, misfire="run_once", grace=timedelta(0))
        assert tick.fire_at == due  # a tick planned at its own time is on time
        outside = active_hours is not None and not active_hours.contains(due, tz)
        found.append(PreviewTick(due, due.astimezone(tz), "active_hours" if outside else None))
        due = tick.next_run
    return found
