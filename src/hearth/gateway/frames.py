"""Turning a bad frame into an error reply that says what is wrong and where."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from hearth.protocol import Error, ErrorCode


def _zero(_text: str) -> int:
    return 0


def _loads(frame: str) -> Any:
    """The frame as JSON for error reporting only, or None when it cannot be read at all.

    Numbers are not converted (a 5000-digit one would exceed Python's conversion limit and
    hide the frame's id), and nesting too deep for the parser counts as unreadable.
    """
    try:
        return json.loads(frame, parse_int=_zero, parse_float=_zero, parse_constant=_zero)
    except (ValueError, RecursionError):
        return None


def _encodable(text: str) -> bool:
    """False for strings with lone surrogates: they cannot be sent back as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def safe_text(text: str) -> str:
    """`text` with anything UTF-8 cannot carry (lone surrogates) escaped, for error messages."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _usable(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= 128 and _encodable(value):
        return value
    return None


#: The `id` among the leading string members of an object, for frames JSON cannot read
#: (nested too deep further on): `{"type":"ping","id":"n1","x":[[[[…`.
_LEADING_ID = re.compile(
    r'\s*\{(?:\s*"[^"\\]*"\s*:\s*"[^"\\]*"\s*,)*?'  # leading "key": "value", members
    r'\s*"id"\s*:\s*"([^"\\]{1,128})"'
)


def _ids(frame: str, data: Any) -> str | None:
    if isinstance(data, dict):
        return _usable(data.get("id"))
    if data is None and (found := _LEADING_ID.match(frame[:4096])):
        return _usable(found.group(1))
    return None


def request_id_of(frame: str) -> str | None:
    """The `id` of a frame that failed validation, so its error still correlates."""
    return _ids(frame, _loads(frame))


def _path(loc: tuple[int | str, ...], tag: str | None) -> str:
    parts = list(loc)
    if parts and tag is not None and parts[0] == tag:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "(frame)"


def _describe(err: Any, tag: str | None) -> dict[str, str]:
    kind = err["type"]
    if kind == "json_invalid":
        return {"path": "(frame)", "message": f"not valid JSON: {safe_text(err['ctx']['error'])}"}
    if kind == "union_tag_not_found":
        return {"path": "type", "message": "missing: every message needs a string 'type'"}
    if kind == "union_tag_invalid":
        return {"path": "type", "message": f"unknown message type {safe_text(err['ctx']['tag'])}"}
    if kind == "model_attributes_type" or kind == "dict_type" or kind == "model_type":
        return {"path": safe_text(_path(err["loc"], tag)), "message": "expected a JSON object"}
    return {"path": safe_text(_path(err["loc"], tag)), "message": safe_text(err["msg"])}


def invalid_message(frame: str, exc: ValidationError) -> Error:
    """An INVALID_MESSAGE reply listing each problem with its field path."""
    data = _loads(frame)
    msg_id = _ids(frame, data)
    tag = _usable(data.get("type")) if isinstance(data, dict) else None
    problems = [_describe(e, tag) for e in exc.errors(include_url=False)][:20]
    first = problems[0]
    what = f"invalid {tag} message" if tag else "invalid message"
    return Error(
        id=msg_id,
        code=ErrorCode.INVALID_MESSAGE,
        message=f"{what}: {first['path']}: {first['message']}",
        details={"errors": problems},
    )
