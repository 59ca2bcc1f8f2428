"""Errors the workflow service raises; the gateway maps each to a protocol error code."""

from __future__ import annotations


class WorkflowServiceError(Exception):
    """Base class; `str()` is a message for a person."""


class WorkflowNotFoundError(WorkflowServiceError):
    pass


class WorkflowInvalidError(WorkflowServiceError):
    """The workflow file exists but does not load; the message carries the loader's error."""


class InvalidInputError(WorkflowServiceError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ExecutionNotFoundError(WorkflowServiceError):
    pass


class NoPendingApprovalError(WorkflowServiceError):
    pass


class StepFailedError(Exception):
    """A step's action failed; `code` is set when the failure has a protocol error code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code
