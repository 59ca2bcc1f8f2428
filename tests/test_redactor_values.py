"""`Redactor.value`: the JSON search that clears most events, and the walk that redacts.

The gateway's own tests (test_secret_scrubbing.py) show secrets never reaching a client; these
pin down the cases the fast path must not miss: secrets in keys, in nested lists, split across
strings, and secrets holding characters JSON escapes (which turn the fast path off).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hearth.redact import REDACTED, Redactor

TOKEN = "tok-8c1e54b0a9d2f7e3"


def redactor(*secrets: str) -> Redactor:
    return Redactor(lambda: secrets)


def test_a_value_without_secrets_is_returned_as_the_same_object() -> None:
    data = {"status": "running", "steps": [{"id": "a", "at": datetime.now(UTC)}], "n": 3}
    assert redactor(TOKEN).value(data) is data


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"error": f"401 for key {TOKEN}"}, {"error": f"401 for key {REDACTED}"}),
        ({TOKEN: 1}, {REDACTED: 1}),
        ({"a": [{"b": ("x", f"..{TOKEN[2:14]}..")}]}, {"a": [{"b": ("x", f"..{REDACTED}..")}]}),
        ([1, None, f"pre{TOKEN}"], [1, None, f"pre{REDACTED}"]),
    ],
)
def test_secrets_anywhere_in_a_value_are_redacted(value: Any, expected: Any) -> None:
    assert redactor(TOKEN).value(value) == expected


def test_a_secret_split_over_two_strings_is_not_a_leak_and_not_changed() -> None:
    data = {"a": TOKEN[:7], "b": TOKEN[7:14], "c": TOKEN[14:]}  # each shorter than a piece
    assert redactor(TOKEN).value(data) is data


@pytest.mark.parametrize("secret", ['pass"word-123456', "back\\slash-12345", "tab\tsecret-12345"])
def test_secrets_with_characters_json_escapes_are_still_found(secret: str) -> None:
    data = {"message": f"the value was {secret}!", "nested": [secret]}
    out = redactor(secret).value(data)
    assert out == {"message": f"the value was {REDACTED}!", "nested": [REDACTED]}


def test_a_value_json_cannot_encode_is_walked() -> None:
    data: dict[Any, Any] = {(1, 2): f"key {TOKEN}"}  # a tuple key: json.dumps refuses it
    assert redactor(TOKEN).value(data) == {(1, 2): f"key {REDACTED}"}
