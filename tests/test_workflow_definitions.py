"""Workflow files: what loads, what is refused, and how a refusal points at the mistake."""

from __future__ import annotations

import hashlib
import logging
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from hearth.workflows import (
    Expressions,
    InputError,
    LoadedWorkflow,
    WorkflowDef,
    WorkflowFileError,
    expression_context,
    load_workflow_dirs,
    load_workflow_file,
    parse_duration,
    parse_duration_value,
    parse_until,
    parse_workflow_source,
    validate_input,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "workflows"

GOOD = """\
name: Good workflow
description: Exercises every kind of step.
inputs:
  url:
    type: string
    required: true
  retries:
    type: integer
    default: 2
steps:
  - id: fetch
    action: tool
    tool: http.request
    args:
      method: GET
      url: "{{ input.url }}"
      headers: {x-run: "{{ execution.id }}"}
    timeout: 30
    retry: {attempts: 3, backoff: 2s}
    on_failure: report
  - id: decide
    action: noop
    branches:
      - condition: steps.fetch.output.status != 200
        goto: report
  - id: summarise
    action: model
    prompt: "Summarise {{ steps.fetch.output.body }}"
    output_schema: {type: object, properties: {summary: {type: string}}}
  - id: pause
    action: wait
    duration: 5m
  - id: until_time
    action: wait
    until: 2030-01-31T08:00:00Z
  - id: approve
    action: noop
    when: "{{ input.retries > 1 }}"
    approval_required: true
    approval_prompt: "Send {{ steps.summarise.output.summary }}?"
    on_success: end
  - id: report
    action: tool
    tool: notify
    args: {message: "failed: {{ steps.fetch.error }}"}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_text(tmp_path: Path, text: str, name: str = "flow.yaml") -> LoadedWorkflow:
    return load_workflow_file(write(tmp_path, name, text))


def error_of(tmp_path: Path, text: str) -> str:
    loaded = load_text(tmp_path, text)
    assert not loaded.valid
    assert loaded.definition is None
    assert loaded.error is not None
    assert loaded.error.startswith(str(tmp_path / "flow.yaml") + ": ")
    return loaded.error


# -- valid files -------------------------------------------------------------------------------


def test_valid_file_loads(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, GOOD, "my_flow-1.yaml")
    assert loaded.error is None
    assert loaded.valid
    assert loaded.id == "my_flow-1"
    assert loaded.source == GOOD
    assert loaded.content_hash == hashlib.sha256(GOOD.encode()).hexdigest()
    definition = loaded.definition
    assert definition is not None
    assert definition.name == "Good workflow"
    assert definition.inputs["url"].required
    assert definition.inputs["retries"].default == 2
    assert [step.id for step in definition.steps] == [
        "fetch",
        "decide",
        "summarise",
        "pause",
        "until_time",
        "approve",
        "report",
    ]
    fetch = definition.step("fetch")
    assert fetch.timeout == "30s"
    assert fetch.timeout_delta == timedelta(seconds=30)
    assert fetch.retry is not None
    assert fetch.retry.attempts == 3
    assert fetch.retry.backoff_delta == timedelta(seconds=2)
    assert definition.step("pause").duration_delta == timedelta(minutes=5)
    # YAML makes the unquoted timestamp a datetime; the definition keeps text.
    until = definition.step("until_time").until
    assert until is not None
    assert parse_until(until) == datetime(2030, 1, 31, 8, 0, tzinfo=UTC)
    assert definition.step("approve").when == "{{ input.retries > 1 }}"
    assert definition.step("decide").timeout_delta is None
    assert definition.next_step_id("fetch") == "decide"
    assert definition.next_step_id("report") is None
    with pytest.raises(KeyError):
        definition.step("nope")


def test_parse_workflow_source_roundtrip() -> None:
    definition = parse_workflow_source(GOOD)
    assert definition.step("summarise").output_schema == {
        "type": "object",
        "properties": {"summary": {"type": "string"}},
    }
    with pytest.raises(WorkflowFileError, match=r"^<workflow>: line 1: "):
        parse_workflow_source("name: x\nstepz: []\n")
    with pytest.raises(WorkflowFileError, match=r"^snap\.yaml: "):
        parse_workflow_source("- a\n", Path("snap.yaml"))


def test_dates_in_args_stay_json_text() -> None:
    definition = parse_workflow_source(
        "name: x\nsteps:\n  - id: a\n    action: tool\n    tool: notify\n"
        "    args: {message: hi, 'on': 2030-01-02, at: [{t: 2030-01-02 03:04:05}]}\n"
    )
    assert definition.steps[0].args == {
        "message": "hi",
        "on": "2030-01-02",
        "at": [{"t": "2030-01-02T03:04:05"}],
    }


@pytest.mark.parametrize(
    ("args", "loc"),
    [("{on: 1}", "steps[0].args: key 'on'"), ("{a: [{no: 1}]}", "steps[0].args.a: key False")],
)
def test_non_string_keys_are_explained(tmp_path: Path, args: str, loc: str) -> None:
    error = error_of(
        tmp_path, f"name: x\nsteps:\n  - id: a\n    action: tool\n    tool: t\n    args: {args}\n"
    )
    assert f"line 6: {loc} " in error
    assert "is not a string; quote it" in error


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    loaded = load_workflow_file(path)
    assert loaded.error is None
    assert loaded.valid


def example_context(**steps: dict[str, Any]) -> dict[str, Any]:
    return expression_context(
        input={"url": "https://example.org/feed.json", "min_items": 1, "path": "logs/a.log"}
        | {"max_bytes": 10},
        steps={
            name: {"status": "succeeded", "error": None} | state for name, state in steps.items()
        },
        execution={"id": "ex-1", "workflowId": "w", "triggeredBy": "cli", "scheduledFor": None},
        now=datetime(2030, 1, 31, 8, tzinfo=UTC),
    )


def test_example_templates_render() -> None:
    expressions = Expressions()
    digest = load_workflow_file(EXAMPLES / "daily-digest.yaml").definition
    assert digest is not None
    context = example_context(
        fetch={"output": {"status": 200, "headers": {}, "body": "{}", "json": {"a": 1}}},
        summarise={"output": {"summary": "All fine.", "items": [{"title": "Pay rent"}]}},
    )
    assert expressions.render(digest.step("fetch").args, context)["url"] == (
        "https://example.org/feed.json"
    )
    assert '{"a": 1}' in expressions.render(digest.step("summarise").prompt, context)
    notify = digest.step("notify")
    assert notify.when is not None
    assert expressions.evaluate(notify.when, context)
    assert "- Pay rent" in expressions.render(notify.args, context)["message"]
    branch = digest.step("check_status").branches[0]
    assert not expressions.evaluate(branch.condition, context)

    cleanup = load_workflow_file(EXAMPLES / "cleanup-with-approval.yaml").definition
    assert cleanup is not None
    context = example_context(
        read_log={"output": {"path": "logs/a.log", "content": "one\ntwo\n", "size": 2048}},
        archive={"output": {"path": "archive/logs_a.log.20300131T080000", "bytes": 8}},
        truncate={"status": "failed", "output": None, "error": "denied"},
    )
    assert expressions.render(cleanup.step("archive").args, context)["path"] == (
        "archive/logs_a.log.20300131T080000"
    )
    prompt = expressions.render(cleanup.step("truncate").approval_prompt, context)
    assert "(2.0 KiB)" in prompt
    assert prompt.rstrip().endswith("one\ntwo")
    assert not expressions.evaluate(cleanup.step("check_size").branches[0].condition, context)
    failure = expressions.render(cleanup.step("report_failure").args, context)["message"]
    assert failure.endswith("failed in execution ex-1: denied")


def test_examples_exist() -> None:
    loaded = load_workflow_dirs([EXAMPLES])
    assert {"daily-digest", "cleanup-with-approval"} <= set(loaded)
    assert all(item.valid for item in loaded.values())


# -- invalid files -----------------------------------------------------------------------------


def test_unknown_key_names_line_key_and_suggestion(tmp_path: Path) -> None:
    error = error_of(
        tmp_path,
        """\
        name: x
        steps:
          - id: a
            action: noop
          - id: b
            action: noop
            aproval_required: true
        """,
    )
    assert error == (
        f"{tmp_path / 'flow.yaml'}: line 7: steps[1].aproval_required: "
        "unknown key (did you mean 'approval_required'?)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\ndescripton: y\nsteps: [{id: a, action: noop}]\n", "line 2: descripton: "),
        (
            "name: x\nsteps:\n  - id: a\n    action: tool\n    tool: t\n    retry: {atempts: 2}\n",
            "line 6: steps[0].retry.atempts: unknown key (did you mean 'attempts'?)",
        ),
        (
            "name: x\ninputs:\n  a:\n    typ: string\nsteps: [{id: a, action: noop}]\n",
            "line 4: inputs.a.typ: unknown key (did you mean 'type'?)",
        ),
        (
            "name: x\nsteps:\n  - id: a\n    action: noop\n    branches:\n"
            "      - conditon: 'true'\n        goto: end\n",
            "line 6: steps[0].branches[0].conditon: unknown key (did you mean 'condition'?)",
        ),
        ("name: x\nzzz: 1\nsteps: [{id: a, action: noop}]\n", "zzz: unknown key (expected one of"),
    ],
)
def test_unknown_keys_everywhere(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_duplicate_step_id(tmp_path: Path) -> None:
    error = error_of(
        tmp_path,
        """\
        name: x
        steps:
          - id: a
            action: noop
          - id: a
            action: noop
        """,
    )
    assert "line 5: steps[1].id: duplicate step id 'a' (first used by steps[0])" in error


@pytest.mark.parametrize(
    ("field", "expected_loc"),
    [
        ("on_success: nowhere", "steps[0].on_success"),
        ("on_failure: nowhere", "steps[0].on_failure"),
        ("branches: [{condition: 'true', goto: nowhere}]", "steps[0].branches[0].goto"),
    ],
)
def test_unknown_goto_target(tmp_path: Path, field: str, expected_loc: str) -> None:
    error = error_of(
        tmp_path,
        f"name: x\nsteps:\n  - id: a\n    action: noop\n    {field}\n  - id: b\n    action: noop\n",
    )
    assert f"line 5: {expected_loc}: step 'a': goto target 'nowhere' is not a step id" in error
    assert "known: a, b" in error


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("action: wait\n    duration: 5 minutes", "steps[0].duration: step 'a': invalid duration"),
        ("action: wait\n    duration: 5x", "'30s', '5m'"),
        ("action: wait", "needs exactly one of 'duration' or 'until'"),
        ("action: wait\n    duration: 1s\n    until: 2030-01-01", "exactly one of"),
        ("action: wait\n    until: tomorrow", "steps[0].until: step 'a': invalid time 'tomorrow'"),
        ("action: wait\n    until: '09:00'", "invalid time '09:00'"),
        ("action: tool\n    timeout: soon\n    tool: t", "steps[0].timeout: step 'a': invalid"),
        ("action: tool\n    timeout: 0s\n    tool: t", "timeout must be longer than zero"),
        ("action: tool\n    tool: t\n    retry: {backoff: fast}", "steps[0].retry.backoff"),
        ("action: tool\n    tool: t\n    retry: {attempts: 0}", "steps[0].retry.attempts"),
        ("action: tool", "steps[0].tool: step 'a': a 'tool' step needs 'tool'"),
        ("action: tool\n    tool: t\n    prompt: hi", "'prompt' is not used by a 'tool' step"),
        ("action: model", "steps[0].prompt: step 'a': a 'model' step needs 'prompt'"),
        ("action: model\n    prompt: p\n    tool: t", "'tool' is not used by a 'model' step"),
        ("action: noop\n    args: {}", "steps[0].args: step 'a': 'args' is not used by a 'noop'"),
        ("action: noop\n    prompt: hi", "'prompt' is not used by a 'noop' step"),
        ("action: noop\n    duration: 1s", "'duration' is not used by a 'noop' step"),
        ("action: noop\n    retry: {attempts: 2}", "'retry' is not used by a 'noop' step"),
        ("action: wait\n    duration: 1s\n    timeout: 1s", "'timeout' is not used by a 'wait'"),
        ("action: noop\n    approval_prompt: ok?", "'approval_required' is not"),
        ("action: jump", "steps[0].action: Input should be"),
        (
            "action: model\n    prompt: p\n    output_schema: {type: objekt}",
            "steps[0].output_schema: step 'a': not a valid JSON Schema: output_schema.type:",
        ),
        (
            "action: model\n    prompt: p\n    output_schema: {properties: {n: {minimum: x}}}",
            "not a valid JSON Schema: output_schema.properties.n.minimum: 'x' is not of type",
        ),
    ],
)
def test_step_rules(tmp_path: Path, step: str, expected: str) -> None:
    error = error_of(tmp_path, f"name: x\nsteps:\n  - id: a\n    {step}\n")
    assert expected in error


@pytest.mark.parametrize(
    ("field", "loc"),
    [
        ("action: tool\n    tool: t\n    args: {url: '{{ input.url }'}", "steps[1].args.url"),
        (
            "action: tool\n    tool: t\n    args: {headers: [ok, '{% if %}']}",
            "steps[1].args.headers[1]",
        ),
        ("action: model\n    prompt: '{{ x'", "steps[1].prompt"),
        (
            "action: noop\n    approval_required: true\n    approval_prompt: '{{ }}'",
            "steps[1].approval_prompt",
        ),
        ("action: noop\n    when: 'a =='", "steps[1].when"),
        ("action: noop\n    branches: [{condition: 'a b', goto: end}]", "steps[1].branches[0]"),
        ("action: wait\n    until: '{{ now +'", "steps[1].until"),
    ],
)
def test_bad_template_names_step_and_field(tmp_path: Path, field: str, loc: str) -> None:
    error = error_of(
        tmp_path, f"name: x\nsteps:\n  - id: first\n    action: noop\n  - id: b\n    {field}\n"
    )
    assert f"{loc}" in error
    assert "step 'b': expression " in error
    assert "line 6:" in error or "line 7:" in error or "line 8:" in error


def test_bad_step_id(tmp_path: Path) -> None:
    assert "steps[0].id: String should match pattern" in error_of(
        tmp_path, "name: x\nsteps: [{id: 'has space', action: noop}]\n"
    )
    assert "reserved" in error_of(tmp_path, "name: x\nsteps: [{id: end, action: noop}]\n")


def test_missing_and_empty_keys(tmp_path: Path) -> None:
    assert "line 1: steps: required key is missing" in error_of(tmp_path, "name: x\n")
    assert "steps: List should have at least 1 item" in error_of(tmp_path, "name: x\nsteps: []\n")
    assert "line 3: steps[0].action: required key is missing" in error_of(
        tmp_path, "name: x\nsteps:\n  - id: a\n"
    )


def test_all_problems_are_reported(tmp_path: Path) -> None:
    error = error_of(tmp_path, "nme: x\nsteps:\n  - id: a\n    action: noop\n    tmeout: 1s\n")
    lines = error.splitlines()
    assert any("name: required key is missing" in line for line in lines)
    assert any("nme: unknown key (did you mean 'name'?)" in line for line in lines)
    assert any("line 5: steps[0].tmeout" in line for line in lines)


def test_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    error = error_of(tmp_path, "name: x\nsteps:\n  - id: a\n    action: [noop\n  - id: b\n")
    assert "invalid YAML" in error
    assert "line 5:" in error


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    error = error_of(tmp_path, "name: x\nsteps:\n  - id: a\n    action: noop\n    action: wait\n")
    assert "line 5: duplicate key 'action' (already on line 4)" in error


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        ("# only a comment\n", "the file is empty"),
        ("~\n", "the file is empty"),
        (
            "- name: x\n",
            "line 1: expected a mapping with 'name' and 'steps' at the top level, got a list",
        ),
        ("just text\n", "got a string"),
    ],
)
def test_documents_that_are_not_workflows(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in error_of(tmp_path, text)


def test_unreadable_and_undecodable_files(tmp_path: Path) -> None:
    missing = load_workflow_file(tmp_path / "gone.yaml")
    assert not missing.valid
    assert missing.error is not None
    assert "cannot read" in missing.error
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"name: \xff\xfe\n")
    loaded = load_workflow_file(binary)
    assert loaded.error is not None
    assert "not UTF-8" in loaded.error


def test_bad_file_name_is_reported(tmp_path: Path) -> None:
    loaded = load_text(tmp_path, GOOD, "bad name.yaml")
    assert not loaded.valid
    assert loaded.error is not None
    assert "'bad name'" in loaded.error


def test_input_spec_checks(tmp_path: Path) -> None:
    assert "default 'x' is not of type integer" in error_of(
        tmp_path,
        "name: x\ninputs:\n  n: {type: integer, default: x}\nsteps: [{id: a, action: noop}]\n",
    )
    assert "a required input cannot have a default" in error_of(
        tmp_path,
        "name: x\ninputs:\n  n: {required: true, default: x}\nsteps: [{id: a, action: noop}]\n",
    )
    assert "inputs.n.type" in error_of(
        tmp_path, "name: x\ninputs:\n  n: {type: text}\nsteps: [{id: a, action: noop}]\n"
    )


def test_model_validation_without_the_loader_names_step_and_field() -> None:
    data: dict[str, Any] = {
        "name": "x",
        "steps": [{"id": "s1", "action": "model", "prompt": "{{ oops"}],
    }
    with pytest.raises(ValidationError, match=r"prompt: step 's1': expression"):
        WorkflowDef.model_validate(data)


# -- directories -------------------------------------------------------------------------------


def test_one_bad_file_never_hides_the_good_ones(tmp_path: Path) -> None:
    write(tmp_path, "alpha.yaml", GOOD)
    write(tmp_path, "beta.yml", "name: b\nsteps: [{id: a, action: noop, aproval_required: true}]\n")
    write(tmp_path, "gamma.yaml", "name: [unclosed\n")
    write(tmp_path, "delta.yaml", "name: d\nsteps: [{id: a, action: noop}]\n")
    write(tmp_path, "notes.txt", "ignored")
    write(tmp_path, ".hidden.yaml", "ignored")
    (tmp_path / "sub.yaml").mkdir()
    loaded = load_workflow_dirs([tmp_path])
    assert list(loaded) == ["alpha", "beta", "delta", "gamma"]
    assert {key: item.valid for key, item in loaded.items()} == {
        "alpha": True,
        "beta": False,
        "delta": True,
        "gamma": False,
    }
    beta_error = loaded["beta"].error
    assert beta_error is not None
    assert "beta.yml: line 2: steps[0].aproval_required" in beta_error
    gamma_error = loaded["gamma"].error
    assert gamma_error is not None
    assert "gamma.yaml" in gamma_error
    assert "invalid YAML" in gamma_error


def test_first_directory_wins(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    write(first, "same.yaml", "name: from first\nsteps: [{id: a, action: noop}]\n")
    write(second, "same.yaml", "name: from second\nsteps: [{id: a, action: noop}]\n")
    write(second, "other.yaml", "name: other\nsteps: [{id: a, action: noop}]\n")
    with caplog.at_level(logging.WARNING, logger="hearth.workflows.loader"):
        loaded = load_workflow_dirs([first, second, tmp_path / "missing"])
    assert set(loaded) == {"same", "other"}
    definition = loaded["same"].definition
    assert definition is not None
    assert definition.name == "from first"
    assert "same" in caplog.text


def test_content_hash_follows_the_content(tmp_path: Path) -> None:
    path = write(tmp_path, "flow.yaml", GOOD)
    before = load_workflow_file(path).content_hash
    assert load_workflow_file(path).content_hash == before
    path.write_text(GOOD.replace("Good workflow", "Better workflow"), encoding="utf-8")
    after = load_workflow_file(path).content_hash
    assert after != before
    assert after == hashlib.sha256(path.read_bytes()).hexdigest()


# -- inputs ------------------------------------------------------------------------------------

INPUTS_FLOW = parse_workflow_source(
    """\
name: inputs
inputs:
  text: {type: string, required: true}
  count: {type: integer, default: 2}
  ratio: {type: number}
  flag: {type: boolean, default: false}
  data: {type: object, default: {a: 1}}
  items: {type: array}
steps: [{id: a, action: noop}]
"""
)


def test_validate_input_applies_defaults() -> None:
    result = validate_input(INPUTS_FLOW, {"text": "hi"})
    assert result == {
        "text": "hi",
        "count": 2,
        "ratio": None,
        "flag": False,
        "data": {"a": 1},
        "items": None,
    }
    result["data"]["a"] = 2
    assert INPUTS_FLOW.inputs["data"].default == {"a": 1}


def test_validate_input_accepts_right_types() -> None:
    result = validate_input(
        INPUTS_FLOW,
        {"text": "", "count": 3.0, "ratio": 1, "flag": True, "data": {}, "items": (1, "a")},
    )
    assert result["count"] == 3
    assert type(result["count"]) is int
    assert result["ratio"] == 1
    assert result["items"] == [1, "a"]


@pytest.mark.parametrize(
    ("raw", "field", "fragment"),
    [
        (None, "text", "is required"),
        ({}, "text", "is required"),
        ({"text": None}, "text", "is required"),
        ({"text": "a", "extra": 1}, "extra", "unknown input"),
        ({"text": 1}, "text", "expected a string, got an integer"),
        ({"text": "a", "count": True}, "count", "expected an integer, got a boolean"),
        ({"text": "a", "count": 1.5}, "count", "expected an integer"),
        ({"text": "a", "count": "3"}, "count", "got a string"),
        ({"text": "a", "ratio": False}, "ratio", "expected a number, got a boolean"),
        ({"text": "a", "ratio": float("nan")}, "ratio", "expected a number"),
        ({"text": "a", "flag": 1}, "flag", "expected a boolean"),
        ({"text": "a", "data": []}, "data", "expected an object, got an array"),
        ({"text": "a", "items": {}}, "items", "expected an array, got an object"),
        ({"text": "a", "items": "abc"}, "items", "expected an array"),
    ],
)
def test_validate_input_rejects(raw: dict[str, Any] | None, field: str, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        validate_input(INPUTS_FLOW, raw)
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert str(caught.value).startswith(f"input {field!r}: ")


def test_validate_input_rejects_non_mapping() -> None:
    with pytest.raises(InputError):
        validate_input(INPUTS_FLOW, ["text"])  # type: ignore[arg-type]


# -- durations and times -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5s", timedelta(seconds=1.5)),
        ("0s", timedelta(0)),
        ("2H", timedelta(hours=2)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "abc", "-5s", "5 minutes", "1y", "s", "1h30", "9" * 30 + "d"]
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration") as caught:
        parse_duration(text)
    assert repr(text) in str(caught.value)


def test_parse_duration_value() -> None:
    assert parse_duration_value(30) == timedelta(seconds=30)
    assert parse_duration_value(0.25) == timedelta(milliseconds=250)
    assert parse_duration_value("2m") == timedelta(minutes=2)
    for bad in (True, -1, float("inf"), "x"):
        with pytest.raises(ValueError, match="invalid duration"):
            parse_duration_value(bad)


def test_parse_until() -> None:
    assert parse_until("2030-01-31T08:00:00Z") == datetime(2030, 1, 31, 8, tzinfo=UTC)
    assert parse_until("2030-01-31T09:00:00+01:00") == datetime(2030, 1, 31, 8, tzinfo=UTC)
    assert parse_until("2030-01-31T08:00:00") == datetime(2030, 1, 31, 8, tzinfo=UTC)
    paris = ZoneInfo("Europe/Paris")
    assert parse_until("2030-07-01T10:00:00", paris) == datetime(2030, 7, 1, 8, tzinfo=UTC)
    assert parse_until("2030-01-31") == datetime(2030, 1, 31, tzinfo=UTC)
    assert parse_until("2030-01-31 08:00:00+00:00").tzinfo is UTC
    for bad in ("tomorrow", "09:00", "2030-13-01T00:00:00", ""):
        with pytest.raises(ValueError, match="invalid time"):
            parse_until(bad)
