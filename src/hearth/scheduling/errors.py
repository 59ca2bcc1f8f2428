"""Errors of the scheduling service, each with its protocol error code; each names the field
at fault."""

from __future__ import annotations

from typing import Any

from hearth.errors import DomainError, FieldError
from hearth.workflows.errors import (
    InvalidInputError,
    WorkflowInvalidError,
    WorkflowNotFoundError,
    WorkflowServiceError,
)


class ScheduleError(DomainError):
    pass


class InvalidScheduleError(FieldError, ScheduleError):
    code = "INVALID_SCHEDULE"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message, f"{field}: {message}")


class ScheduleNotFoundError(ScheduleError):
    code = "SCHEDULE_NOT_FOUND"


class ScheduleConflictError(ScheduleError):
    """An update kept being overtaken by other writes (ticks claimed) and was not applied."""

    code = "SCHEDULE_CONFLICT"


class ScheduleTargetError(ScheduleError):
    """The schedule's workflow refused it: an unknown or broken workflow, or input it does not
    take. Said in the schedule's terms (which field of the schedule is at fault)."""

    def __init__(self, cause: WorkflowServiceError) -> None:
        text = str(cause)
        self.field = "workflowId"
        self.code = "INVALID_SCHEDULE"
        if isinstance(cause, WorkflowNotFoundError):
            self.code = cause.code
        elif isinstance(cause, InvalidInputError):
            text = f"invalid input: {cause}"
            self.field = f"input.{cause.field}"
        elif not isinstance(cause, WorkflowInvalidError):
            self.code = cause.code
        super().__init__(text)

    @property
    def details(self) -> dict[str, Any] | None:
        return {"field": self.field}
