"""Holding a model step's answer to the step's `output_schema`.

The schema is handed to the model (as an output tool or in the prompt), but nothing makes a
model obey it: a local model may answer `{"big": "yes"}` for a boolean. Checked here, at the
step, a bad answer fails that attempt — retried per the step's `retry` — with the place of the
first violation, instead of passing as a success and failing later in some template as an
undefined name. The schema itself is checked when the workflow file loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hearth.workflows.errors import StepFailedError

__all__ = ["OutputSchemaError", "check_output", "schema_problem"]

#: Longest rendering of the offending value quoted in an error.
_QUOTE_LIMIT = 300


class OutputSchemaError(StepFailedError):
    """A model answer does not match the step's `output_schema` (retryable: models vary)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"the model's answer does not match output_schema at {path}: {message}")
        self.path = path


def schema_problem(schema: Mapping[str, Any]) -> str | None:
    """Why `schema` is not a valid JSON Schema (by its own `$schema`, default 2020-12), or None."""
    # jsonschema (with referencing, rpds and attrs: ~3 MB) only loads for workflows that
    # declare an output schema.
    from jsonschema import exceptions as schema_errors
    from jsonschema import validators

    validator = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        validator.check_schema(dict(schema))
    except schema_errors.SchemaError as exc:
        where = exc.json_path.replace("$", "output_schema", 1)
        return f"not a valid JSON Schema: {where}: {_shorten(exc.message)}"
    return None


def check_output(schema: Mapping[str, Any] | None, answer: Any) -> None:
    """Raise OutputSchemaError naming the first violation when `answer` does not fit `schema`.

    "First" is jsonschema's best match: the deepest, most specific error, so an answer with a
    wrong field reports that field (`$.items[2].price`) rather than the whole object.
    """
    if schema is None:
        return
    from jsonschema import exceptions as schema_errors
    from jsonschema import validators

    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    error = schema_errors.best_match(validator.iter_errors(answer))
    if error is not None:
        raise OutputSchemaError(error.json_path, _shorten(error.message))


def _shorten(text: str) -> str:
    return text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 1] + "…"
