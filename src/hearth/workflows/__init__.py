"""Workflows: definitions loaded from YAML, sandboxed expressions, input checking."""

from hearth.workflows.definition import (
    END,
    Branch,
    DefinitionError,
    InputSpec,
    InputType,
    RetryPolicy,
    StepAction,
    StepDef,
    WorkflowDef,
)
from hearth.workflows.durations import parse_duration, parse_duration_value, parse_until
from hearth.workflows.expressions import ExpressionError, Expressions, expression_context
from hearth.workflows.inputs import InputError, validate_input
from hearth.workflows.loader import (
    LoadedWorkflow,
    WorkflowFileError,
    load_workflow_dirs,
    load_workflow_file,
    parse_workflow_source,
)

__all__ = [
    "END",
    "Branch",
    "DefinitionError",
    "ExpressionError",
    "Expressions",
    "InputError",
    "InputSpec",
    "InputType",
    "LoadedWorkflow",
    "RetryPolicy",
    "StepAction",
    "StepDef",
    "WorkflowDef",
    "WorkflowFileError",
    "expression_context",
    "load_workflow_dirs",
    "load_workflow_file",
    "parse_duration",
    "parse_duration_value",
    "parse_until",
    "parse_workflow_source",
    "validate_input",
]
