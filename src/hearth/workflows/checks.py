"""Checks of a parsed workflow against this installation: its tools and its own names.

`parse_workflow_source` checks what a file says on its own; this checks what it means here:
the tools it calls exist and are enabled (`shell.run` is off unless config.toml turns it on),
literal tool arguments fit the tool's argument model (`pth:` for `path:`), and every
`input.<name>` and `steps.<id>` a template reads by a literal name is declared. The gateway's
catalog and `hearth workflow validate` both call `check_workflow`, so they cannot disagree.

Kept out of `parse_workflow_source` on purpose: that one also re-reads the snapshots pinned by
running executions, which must keep loading even if the configuration changed since.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from hearth.tools import ToolRegistry
from hearth.workflows.definition import StepDef, WorkflowDef, format_loc
from hearth.workflows.expressions import ExpressionError, Expressions
from hearth.workflows.loader import LoadedWorkflow, line_of

__all__ = ["SHELL_TOOL", "check_workflow"]

log = logging.getLogger("hearth.workflows.checks")

#: The built-in tool that exists only when a person enables it.
SHELL_TOOL = "shell.run"

Loc = tuple[str | int, ...]

#: Ends the message of a missing argument (which is reported at its parent's line).
_MISSING = " (missing)"

# Only compiles and walks syntax trees; holds no per-execution state.
_EXPRESSIONS = Expressions()


def check_workflow(item: LoadedWorkflow, tools: ToolRegistry | None) -> LoadedWorkflow:
    """`item`, or a copy marked invalid with one "<path>: line N: <where>: <what>" per problem.

    `tools` None skips the tool checks (references are still checked).
    """
    definition = item.definition
    if definition is None:
        return item
    problems: list[tuple[Loc, str]] = []
    for index, step in enumerate(definition.steps):
        at: Loc = ("steps", index)
        found = list(_reference_problems(definition, step))
        if tools is not None and step.action == "tool" and step.tool is not None:
            found.extend(_tool_problems(step, tools))
        problems.extend(((*at, *loc), f"step {step.id!r}: {message}") for loc, message in found)
    if not problems:
        return item
    lines = []
    for loc, message in problems:
        # A missing key has no line of its own: point at the mapping that lacks it.
        line_loc = loc[:-1] if message.endswith(_MISSING) else loc
        line = line_of(item.source, line_loc) if item.source else None
        where = f"line {line}: " if line is not None else ""
        lines.append(f"{item.path}: {where}{format_loc(loc)}: {message}")
    return replace(item, definition=None, error="\n".join(lines))


def _tool_problems(step: StepDef, tools: ToolRegistry) -> Iterator[tuple[Loc, str]]:
    assert step.tool is not None
    if step.tool not in tools:
        unknown_yet = tools.unavailable(step.tool)
        if unknown_yet is not None:
            # An MCP server's tools are known once it runs; until then the step is accepted
            # and the call itself reports a tool that does not exist.
            log.warning("step %r: tool %r not checked: %s", step.id, step.tool, unknown_yet)
            return
        if step.tool == SHELL_TOOL:
            yield (
                ("tool",),
                f"tool {SHELL_TOOL!r} is disabled; enable it with "
                "[tools.shell] enabled = true in config.toml",
            )
            return
        known = tools.names()
        yield (
            ("tool",),
            f"unknown tool {step.tool!r}{_did_you_mean(step.tool, known)}; "
            f"known tools: {', '.join(known)}",
        )
        return
    model = tools.get(step.tool).args_model
    try:
        model.model_validate(step.args)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            unknown_key = error["type"] == "extra_forbidden"
            if _through_template(step.args, loc[:-1] if unknown_key else loc):
                continue  # known only once rendered; the tool validates it then
            yield (("args", *loc), _argument_message(step.tool, error["type"], loc, model, error))


def _argument_message(tool: str, kind: str, loc: Loc, model: Any, error: Mapping[str, Any]) -> str:
    name = str(loc[-1]) if loc else ""
    if kind == "extra_forbidden" and len(loc) == 1:
        fields = list(model.model_fields)
        return f"unknown argument {name!r} for {tool}{_did_you_mean(name, fields)}"
    if kind == "missing" and len(loc) == 1:
        return f"{tool} needs the argument {name!r}{_MISSING}"
    return f"{tool}: {error['msg']}"


def _through_template(args: Mapping[str, Any], loc: Loc) -> bool:
    """Whether the value at `loc` (or one it lies in) is a template, i.e. not yet known."""
    value: Any = args
    for part in loc:
        if _is_template(value):
            return True
        in_mapping = isinstance(value, Mapping) and part in value
        in_list = isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        if not (in_mapping or in_list):
            return False
        value = value[part]
    return _is_template(value)


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _texts(step: StepDef) -> Iterator[tuple[Loc, str, bool]]:
    """(where, text, is_condition) for every template and condition of a step."""
    yield from _nested(step.args, ("args",))
    for name in ("prompt", "approval_prompt", "until"):
        value = getattr(step, name)
        if isinstance(value, str) and (name != "until" or _is_template(value)):
            yield (name,), value, False
    if step.when is not None:
        yield ("when",), step.when, True
    for index, branch in enumerate(step.branches):
        yield ("branches", index, "condition"), branch.condition, True


def _nested(value: Any, loc: Loc) -> Iterator[tuple[Loc, str, bool]]:
    if isinstance(value, str):
        if _is_template(value):
            yield loc, value, False
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _nested(item, (*loc, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nested(item, (*loc, index))


def _reference_problems(definition: WorkflowDef, step: StepDef) -> Iterator[tuple[Loc, str]]:
    step_ids = [s.id for s in definition.steps]
    inputs = list(definition.inputs)
    for loc, text, condition in _texts(step):
        try:
            references = _EXPRESSIONS.references(text, condition=condition)
        except ExpressionError:
            continue  # already reported by the definition's own syntax check
        for root, name in references:
            if root == "input" and name not in definition.inputs:
                declared = ", ".join(inputs) if inputs else "none"
                yield (
                    loc,
                    f"input {name!r} is not declared{_did_you_mean(name, inputs)} "
                    f"(declared inputs: {declared})",
                )
            elif root == "steps" and name not in step_ids:
                yield (
                    loc,
                    f"there is no step {name!r}{_did_you_mean(name, step_ids)} "
                    f"(steps: {', '.join(step_ids)})",
                )


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
