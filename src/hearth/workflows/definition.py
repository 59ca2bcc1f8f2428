"""The schema of a workflow file, checked completely when the file is loaded.

Everything that can be known without running the workflow is checked here — unknown keys,
fields that make no sense for the step's action, durations, goto targets, template and condition
syntax — so that a typo is reported by `workflow.list` and `hearth workflow validate` rather than
by a failed execution hours later.

Checks that concern one place in the file raise `DefinitionError` carrying `DefinitionIssue`s
with a location relative to the model that raised it; the loader joins that with pydantic's
location to point at a line of the YAML file.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PrivateAttr, model_validator

from hearth.workflows.durations import parse_duration, parse_until
from hearth.workflows.expressions import ExpressionError, Expressions
from hearth.workflows.output_schema import schema_problem

__all__ = [
    "END",
    "STEP_ID_PATTERN",
    "Branch",
    "DefinitionError",
    "DefinitionIssue",
    "InputSpec",
    "InputType",
    "OnInterrupt",
    "RetryPolicy",
    "StepAction",
    "StepDef",
    "WorkflowDef",
    "format_loc",
    "json_type_matches",
    "key_message",
]

#: The goto target that finishes the execution successfully.
END = "end"
STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"

InputType = Literal["string", "number", "integer", "boolean", "object", "array"]
StepAction = Literal["tool", "model", "noop", "wait"]
#: What a tool step does when the gateway stopped while it ran (see docs/workflows.md).
OnInterrupt = Literal["ask", "retry", "fail"]
Loc = tuple[str | int, ...]

# Only compilation happens at definition time; the instance holds no per-execution state.
_EXPRESSIONS = Expressions()


@dataclass(frozen=True)
class DefinitionIssue:
    """One problem at `loc` (relative to the model whose validator found it)."""

    loc: Loc
    message: str


class DefinitionError(ValueError):
    """Raised by validators; pydantic keeps the instance in the error's `ctx["error"]`."""

    def __init__(self, issues: Sequence[DefinitionIssue]) -> None:
        self.issues = tuple(issues)
        super().__init__(
            "; ".join(
                f"{format_loc(issue.loc)}: {issue.message}" if issue.loc else issue.message
                for issue in self.issues
            )
        )


def format_loc(loc: Sequence[str | int]) -> str:
    """`("steps", 1, "args", "url")` → `steps[1].args.url`."""
    text = ""
    for part in loc:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def json_type_matches(value: Any, expected: InputType) -> bool:
    """Whether `value` is of JSON Schema type `expected`; bool is never a number here."""
    if expected == "string":
        return isinstance(value, str)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        return isinstance(value, float) and math.isfinite(value) and value.is_integer()
    if expected == "number":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
    if expected == "object":
        return isinstance(value, Mapping)
    return isinstance(value, list | tuple)


def _plain_json(value: Any) -> Any:
    """YAML turns unquoted dates and timestamps into objects; keep definitions JSON-clean."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise ValueError(key_message(key))
        return {key: _plain_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(item) for item in value]
    return value


def key_message(key: object) -> str:
    return (
        f"key {key!r} is not a string; quote it (YAML reads unquoted yes/no/on/off as "
        "booleans and unquoted numbers as numbers)"
    )


def _duration_text(value: Any) -> Any:
    """`timeout: 30` in YAML is an int; read it as seconds, keeping the field a string."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value}s"
    return value


def _condition_text(value: Any) -> Any:
    """`when: false` is a natural way to switch a step off; YAML makes it a bool."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


JsonValue = Annotated[Any, BeforeValidator(_plain_json)]
DurationText = Annotated[str, BeforeValidator(_duration_text)]
ConditionText = Annotated[str, BeforeValidator(_condition_text)]
TimeText = Annotated[str, BeforeValidator(_plain_json)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Model):
    type: InputType = "string"
    default: JsonValue = None
    required: bool = False
    description: str | None = None

    @model_validator(mode="after")
    def _check(self) -> InputSpec:
        issues: list[DefinitionIssue] = []
        if self.default is not None and not json_type_matches(self.default, self.type):
            issues.append(
                DefinitionIssue(
                    ("default",), f"default {self.default!r} is not of type {self.type}"
                )
            )
        if self.required and self.default is not None:
            issues.append(
                DefinitionIssue(
                    ("required",), "a required input cannot have a default (drop one of them)"
                )
            )
        if issues:
            raise DefinitionError(issues)
        return self


class RetryPolicy(_Model):
    #: Total tries including the first, so `attempts: 1` means no retry.
    attempts: int = Field(default=1, ge=1, le=100)
    #: Delay before the second try; doubled before each further one.
    backoff: DurationText = "1s"
    #: No wait between tries is longer than this, however many doublings.
    max_delay: DurationText = "5m"
    #: Each wait is shortened by a random part of up to this fraction, so executions that
    #: failed together do not all retry in the same instant.
    jitter: float = Field(default=0.2, ge=0, le=1)

    @model_validator(mode="after")
    def _check(self) -> RetryPolicy:
        issues: list[DefinitionIssue] = []
        for name in ("backoff", "max_delay"):
            try:
                delta = parse_duration(getattr(self, name))
            except ValueError as exc:
                issues.append(DefinitionIssue((name,), str(exc)))
                continue
            if name == "max_delay" and delta <= timedelta(0):
                issues.append(DefinitionIssue((name,), "max_delay must be longer than zero"))
        if issues:
            raise DefinitionError(issues)
        return self

    @property
    def backoff_delta(self) -> timedelta:
        return parse_duration(self.backoff)

    @property
    def max_delay_delta(self) -> timedelta:
        return parse_duration(self.max_delay)

    def delay(self, failed_attempt: int) -> timedelta:
        """The wait after attempt `failed_attempt` failed: doubled per attempt, capped, with
        jitter taken off (never added: the wait never exceeds `max_delay`)."""
        cap = self.max_delay_delta.total_seconds()
        base = self.backoff_delta.total_seconds()
        # min() before the power would overflow: 2**99 seconds is no duration.
        doubled = min(cap, base * 2 ** min(failed_attempt - 1, 64))
        return timedelta(seconds=doubled * (1 - self.jitter * random.random()))


class Branch(_Model):
    condition: ConditionText
    goto: str


# Which of the action-specific fields each action takes; the others must stay unset.
_ACTION_FIELDS: dict[str, frozenset[str]] = {
    "tool": frozenset({"tool", "args", "timeout", "retry", "on_interrupt"}),
    "model": frozenset({"prompt", "output_schema", "timeout", "retry"}),
    "wait": frozenset({"duration", "until"}),
    "noop": frozenset(),
}
_SPECIFIC_FIELDS = frozenset().union(*_ACTION_FIELDS.values())


class StepDef(_Model):
    """One step. Templates may refer to it as `steps.<id>`, or `steps["<id>"]` when the id
    contains a hyphen (Jinja would read `steps.my-id` as `steps.my - id`).
    """

    id: str = Field(pattern=STEP_ID_PATTERN)
    action: StepAction
    description: str | None = None
    tool: str | None = None
    args: dict[str, JsonValue] = Field(default_factory=dict)
    prompt: str | None = None
    output_schema: dict[str, JsonValue] | None = None
    duration: DurationText | None = None
    until: TimeText | None = None
    when: ConditionText | None = None
    approval_required: bool = False
    approval_prompt: str | None = None
    branches: list[Branch] = Field(default_factory=list)
    on_success: str | None = None
    on_failure: str | None = None
    timeout: DurationText | None = None
    retry: RetryPolicy | None = None
    #: A tool step the gateway stopped in: `ask` re-runs it by itself when the call is
    #: idempotent and otherwise asks a person; `retry` always re-runs; `fail` fails the run.
    on_interrupt: OnInterrupt = "ask"

    @model_validator(mode="after")
    def _check(self) -> StepDef:
        issues = [
            DefinitionIssue(loc, f"step {self.id!r}: {message}") for loc, message in self._issues()
        ]
        if issues:
            raise DefinitionError(issues)
        return self

    def _issues(self) -> list[tuple[Loc, str]]:
        issues: list[tuple[Loc, str]] = []
        given = self.model_fields_set
        if self.id == END:
            issues.append((("id",), f"{END!r} is reserved as the goto target that ends the run"))
        allowed = _ACTION_FIELDS[self.action]
        for name in sorted((_SPECIFIC_FIELDS - allowed) & given):
            issues.append(((name,), f"{name!r} is not used by a {self.action!r} step"))
        if self.action == "tool" and not self.tool:
            issues.append((("tool",), "a 'tool' step needs 'tool' (the tool name)"))
        if self.action == "model" and not self.prompt:
            issues.append((("prompt",), "a 'model' step needs 'prompt'"))
        if self.action == "wait" and (self.duration is None) == (self.until is None):
            issues.append(
                (("duration",), "a 'wait' step needs exactly one of 'duration' or 'until'")
            )
        if self.duration is not None:
            issues.extend(_duration_issue("duration", self.duration, positive=False))
        if self.timeout is not None:
            issues.extend(_duration_issue("timeout", self.timeout, positive=True))
        if self.until is not None:
            issues.extend(_until_issue(self.until))
        if self.approval_prompt is not None and not self.approval_required:
            issues.append(
                (("approval_prompt",), "'approval_prompt' is set but 'approval_required' is not")
            )
        if self.output_schema is not None and (problem := schema_problem(self.output_schema)):
            issues.append((("output_schema",), problem))
        issues.extend(self._expression_issues())
        return issues

    def _expression_issues(self) -> list[tuple[Loc, str]]:
        issues: list[tuple[Loc, str]] = []
        for loc, text in _strings_with_loc(self.args, ("args",)):
            issues.extend(_compile(loc, text, _EXPRESSIONS.check_template))
        for name in ("prompt", "approval_prompt"):
            value = getattr(self, name)
            if value is not None:
                issues.extend(_compile((name,), value, _EXPRESSIONS.check_template))
        if self.when is not None:
            issues.extend(_compile(("when",), self.when, _EXPRESSIONS.check_condition))
        for index, branch in enumerate(self.branches):
            issues.extend(
                _compile(
                    ("branches", index, "condition"), branch.condition, _EXPRESSIONS.check_condition
                )
            )
        return issues

    @property
    def timeout_delta(self) -> timedelta | None:
        return parse_duration(self.timeout) if self.timeout is not None else None

    @property
    def duration_delta(self) -> timedelta | None:
        return parse_duration(self.duration) if self.duration is not None else None


def _duration_issue(name: str, text: str, *, positive: bool) -> list[tuple[Loc, str]]:
    try:
        delta = parse_duration(text)
    except ValueError as exc:
        return [((name,), str(exc))]
    if positive and delta <= timedelta(0):
        return [((name,), f"{name} must be longer than zero")]
    return []


def _until_issue(text: str) -> list[tuple[Loc, str]]:
    """`until` is either a template (checked for syntax) or a literal time (parsed now)."""
    if "{{" in text or "{%" in text:
        return _compile(("until",), text, _EXPRESSIONS.check_template)
    try:
        parse_until(text)
    except ValueError as exc:
        return [(("until",), str(exc))]
    return []


def _compile(loc: Loc, text: str, check: Callable[[str], None]) -> list[tuple[Loc, str]]:
    try:
        check(text)
    except ExpressionError as exc:
        return [(loc, str(exc))]
    return []


def _strings_with_loc(value: Any, loc: Loc) -> list[tuple[Loc, str]]:
    if isinstance(value, str):
        return [(loc, value)]
    found: list[tuple[Loc, str]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found.extend(_strings_with_loc(item, (*loc, str(key))))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(_strings_with_loc(item, (*loc, index)))
    return found


class WorkflowDef(_Model):
    name: str = Field(min_length=1)
    description: str | None = None
    inputs: dict[
        Annotated[str, Field(pattern=STEP_ID_PATTERN)],
        InputSpec,
    ] = Field(default_factory=dict)
    steps: list[StepDef] = Field(min_length=1)

    _index: dict[str, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> WorkflowDef:
        issues: list[DefinitionIssue] = []
        first_seen: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if step.id in first_seen:
                issues.append(
                    DefinitionIssue(
                        ("steps", index, "id"),
                        f"duplicate step id {step.id!r} "
                        f"(first used by steps[{first_seen[step.id]}])",
                    )
                )
            else:
                first_seen[step.id] = index
        for index, step in enumerate(self.steps):
            targets: list[tuple[Loc, str | None]] = [
                (("steps", index, "on_success"), step.on_success),
                (("steps", index, "on_failure"), step.on_failure),
            ]
            targets.extend(
                (("steps", index, "branches", number, "goto"), branch.goto)
                for number, branch in enumerate(step.branches)
            )
            for loc, target in targets:
                if target is not None and target != END and target not in first_seen:
                    issues.append(
                        DefinitionIssue(
                            loc,
                            f"step {step.id!r}: goto target {target!r} is not a step id "
                            f"(known: {', '.join(first_seen)}; or {END!r} to finish)",
                        )
                    )
        if issues:
            raise DefinitionError(issues)
        self._index = first_seen
        return self

    def step(self, step_id: str) -> StepDef:
        """The step with this id; KeyError when there is none."""
        try:
            # Straight from the private store: attribute access to a private attribute goes
            # through pydantic's __getattr__, and this runs on every step.
            return self.steps[self.__pydantic_private__["_index"][step_id]]  # type: ignore[index]
        except KeyError:
            raise KeyError(f"workflow {self.name!r} has no step {step_id!r}") from None

    def next_step_id(self, step_id: str) -> str | None:
        """The step after `step_id` in file order (the default successor), None after the last."""
        position = self.__pydantic_private__["_index"][step_id] + 1  # type: ignore[index]
        return self.steps[position].id if position < len(self.steps) else None
