"""Errors the workflow service raises, each with its protocol error code."""

from __future__ import annotations

from typing import Any

from hearth.errors import DomainError


class WorkflowServiceError(DomainError):
    """Base class; `str()` is a message for a person."""


class WorkflowNotFoundError(WorkflowServiceError):
    code = "WORKFLOW_NOT_FOUND"


class WorkflowInvalidError(WorkflowServiceError):
    """The workflow file exists but does not load; the message carries the loader's error."""

    code = "WORKFLOW_INVALID"


class InvalidInputError(WorkflowServiceError):
    code = "INVALID_INPUT"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    @property
    def details(self) -> dict[str, Any] | None:
        return {"field": self.field}


class ExecutionNotFoundError(WorkflowServiceError):
    code = "EXECUTION_NOT_FOUND"


class NoPendingApprovalError(WorkflowServiceError):
    code = "NO_PENDING_APPROVAL"


class StepFailedError(Exception):
    """A step's action failed; `code` is set when the failure has a protocol error code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
