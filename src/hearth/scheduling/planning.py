"""What to do with a schedule whose `next_run` has come: fire, record missed ticks, or both.

Pure functions over the trigger and the clock, so the misfire rules are easy to test: after
downtime at most ONE catch-up run (for the latest missed tick, and only within the grace
period); every other missed tick is counted, never replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from hearth.scheduling.triggers import CronTrigger, EveryTrigger, Trigger

#: Default for how late a tick may fire and still count as on time, whatever the misfire
#: policy (`schedules.misfire_threshold_s`): a busy loop is not downtime.
ON_TIME = timedelta(seconds=5)
#: Cron ticks counted one by one are capped; beyond it the count is a lower bound.
MAX_COUNTED = 10_000


@dataclass(frozen=True)
class TickPlan:
    fire_at: datetime | None  # the tick to fire now, if any
    missed_first: datetime | None  # the earliest missed tick, if any
    missed_count: int
    next_run: datetime | None  # the first tick after now


def plan(
    trigger: Trigger,
    due: datetime,
    now: datetime,
    *,
    misfire: str,
    grace: timedelta,
    on_time: timedelta = ON_TIME,
) -> TickPlan:
    """`due` is the schedule's stored next_run (≤ now)."""
    latest = due
    count = 1
    if isinstance(trigger, EveryTrigger):
        count = trigger.ticks_between(due, now)
        latest = due + trigger.interval * (count - 1)
    elif isinstance(trigger, CronTrigger):
        for following in trigger.ticks(due):
            if following > now:
                break
            latest = following
            count += 1
            if count >= MAX_COUNTED:
                # Very long downtime: count no further, but find the real latest tick so an
                # on-time (or in-grace) tick still fires.
                probe = trigger.ticks(now - max(grace, on_time) - timedelta(seconds=1))
                for candidate in probe:
                    if candidate > now:
                        break
                    latest = max(latest, candidate)
                break
    next_run = trigger.next_after(now if latest <= now else latest)
    late = now - latest
    fire = late <= on_time or (misfire == "run_once" and late <= grace)
    missed = count - 1 if fire else count
    return TickPlan(
        fire_at=latest if fire else None,
        missed_first=due if missed else None,
        missed_count=missed,
        next_run=next_run,
    )
