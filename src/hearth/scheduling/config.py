"""The scheduler's settings (the composition root builds them from `[schedules]`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class SchedulerConfig:
    max_consecutive_failures: int = 10
    history: timedelta = timedelta(days=30)
    history_max: int = 1000
    max_sleep_s: float = 30.0
    misfire_threshold: timedelta = timedelta(seconds=5)
    #: Ticks whose outcome is already decided are claimed (run recorded, execution committed)
    #: this long before they are due, and started at their time: the tick then costs no
    #: database work, so it fires on time even when a thousand share one second.
    lookahead: timedelta = timedelta(milliseconds=500)
