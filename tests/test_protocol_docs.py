"""docs/protocol.md names every message type and error code; its JSON examples fit the schema."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from hearth.protocol import ErrorCode, client_models, protocol_schema, server_models

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
_JSON_BLOCK = re.compile(r"^```json[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


@cache
def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


@cache
def validators() -> dict[str, Any]:
    schema = protocol_schema()
    found = {}
    for side in ("client", "server"):
        cls = jsonschema.validators.validator_for(schema[side])
        found[side] = cls(schema[side])
    return found


def json_examples() -> list[tuple[int, dict[str, Any]]]:
    """Every line of a ```json block that is a JSON object with a "type", with its line number."""
    text = doc_text()
    examples = []
    for block in _JSON_BLOCK.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        for offset, line in enumerate(block.group(1).splitlines()):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and "type" in value:
                examples.append((first_line + offset, value))
    return examples


@pytest.mark.parametrize(
    "message_type", sorted({*client_models(), *server_models()}), ids=lambda t: t
)
def test_every_message_type_is_documented(message_type: str) -> None:
    assert f"`{message_type}`" in doc_text()


@pytest.mark.parametrize("code", [c.value for c in ErrorCode], ids=lambda c: c)
def test_every_error_code_is_documented(code: str) -> None:
    assert f"`{code}`" in doc_text()


def test_doc_has_json_examples_of_both_sides() -> None:
    types = {example["type"] for _, example in json_examples()}
    assert types & set(client_models())
    assert types & set(server_models())


def test_json_examples_fit_the_published_schema() -> None:
    problems = []
    for line, example in json_examples():
        side = "client" if example["type"] in client_models() else "server"
        error = jsonschema.exceptions.best_match(validators()[side].iter_errors(example))
        if error is not None:
            problems.append(f"docs/protocol.md:{line}: {example['type']} ({side}): {error.message}")
    assert not problems, "\n".join(problems)
