"""Checking the `input` of `workflow.trigger` (or a schedule) against the workflow's `inputs`.

Done before an execution is created, so a caller gets a precise error naming the field instead
of an execution that fails at whichever step first touches the bad value.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from hearth.workflows.definition import InputSpec, WorkflowDef, json_type_matches

__all__ = ["InputError", "validate_input"]


class InputError(ValueError):
    """One input field is missing, unknown or of the wrong type."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"input {field!r}: {message}")


_ARTICLES = {"integer": "an integer", "object": "an object", "array": "an array"}


def validate_input(definition: WorkflowDef, raw: Mapping[str, Any] | None) -> dict[str, Any]:
    """The input an execution runs with: declared names only, typed, defaults filled in.

    Optional inputs without a default are present as None, so templates can test
    `input.name is none` instead of failing on an undefined name.
    """
    given: Mapping[str, Any] = {} if raw is None else raw
    if not isinstance(given, Mapping):
        raise InputError("input", f"expected an object, got {_json_name(given)}")
    specs = definition.inputs
    for name in given:
        if name not in specs:
            known = ", ".join(specs) if specs else "none"
            raise InputError(str(name), f"unknown input (declared inputs: {known})")
    result: dict[str, Any] = {}
    for name, spec in specs.items():
        value = given.get(name)
        if value is None:
            if spec.required:
                raise InputError(name, "is required")
            result[name] = copy.deepcopy(spec.default)
            continue
        result[name] = _checked(name, spec, value)
    return result


def _checked(name: str, spec: InputSpec, value: Any) -> Any:
    if not json_type_matches(value, spec.type):
        expected = _ARTICLES.get(spec.type, f"a {spec.type}")
        raise InputError(name, f"expected {expected}, got {_json_name(value)}")
    if spec.type == "integer":
        return int(value)
    if spec.type == "array":
        return list(value)
    if spec.type == "object":
        return dict(value)
    return value


def _json_name(value: Any) -> str:
    """The JSON name of a value's type, because callers speak JSON, not Python."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number" if value == value and abs(value) != float("inf") else f"{value!r}"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__
