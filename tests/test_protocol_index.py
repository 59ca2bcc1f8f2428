"""The generated type -> family index matches the families, and clients parse through it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

from hearth.protocol import indexgen, server_models
from hearth.protocol.registry import parse_server


def test_the_committed_index_is_what_the_families_generate() -> None:
    committed = Path(indexgen.__file__).with_name("family_index.py").read_text(encoding="utf-8")
    assert committed == indexgen.render(), "the protocol index is stale: run `make protocol-index`"


def test_every_server_message_is_in_the_index() -> None:
    from hearth.protocol.family_index import SERVER_FAMILIES

    assert set(SERVER_FAMILIES) == set(server_models())


def test_parsing_a_reply_imports_only_its_family() -> None:
    """A fresh interpreter parsing a status reply does not import the workflow family."""
    code = (
        "import sys\n"
        "from hearth.protocol import parse_server\n"
        'm = parse_server(\'{"type": "pong", "id": "1"}\')\n'
        "print(type(m).__name__)\n"
        "print('hearth.protocol.messages.workflows' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["Pong", "False"]


def test_an_unknown_type_still_gets_the_unions_error() -> None:
    with pytest.raises(pydantic.ValidationError) as caught:
        parse_server('{"type": "no.such.message", "id": "1"}')
    assert "no.such.message" in str(caught.value)
