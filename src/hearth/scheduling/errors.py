"""Errors of the scheduling service; each names the field at fault."""

from __future__ import annotations


class ScheduleError(Exception):
    pass


class InvalidScheduleError(ScheduleError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class ScheduleNotFoundError(ScheduleError):
    pass


class ScheduleConflictError(ScheduleError):
    """An update kept being overtaken by other writes (ticks claimed) and was not applied."""
