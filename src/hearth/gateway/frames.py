"""Turning a bad frame into an error reply that says what is wrong and where."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from hearth.protocol import Error, ErrorCode


def request_id_of(frame: str) -> str | None:
    """The `id` of a frame that failed validation, so its error still correlates."""
    try:
        data = json.loads(frame)
    except ValueError:
        return None
    if isinstance(data, dict):
        value = data.get("id")
        if isinstance(value, str) and 0 < len(value) <= 128:
            return value
    return None


def _path(loc: tuple[int | str, ...], tag: str | None) -> str:
    parts = list(loc)
    if parts and tag is not None and parts[0] == tag:
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "(frame)"


def _describe(err: Any, tag: str | None) -> dict[str, str]:
    kind = err["type"]
    if kind == "json_invalid":
        return {"path": "(frame)", "message": f"not valid JSON: {err['ctx']['error']}"}
    if kind == "union_tag_not_found":
        return {"path": "type", "message": "missing: every message needs a string 'type'"}
    if kind == "union_tag_invalid":
        return {"path": "type", "message": f"unknown message type {err['ctx']['tag']}"}
    if kind == "model_attributes_type" or kind == "dict_type" or kind == "model_type":
        return {"path": _path(err["loc"], tag), "message": "expected a JSON object"}
    return {"path": _path(err["loc"], tag), "message": err["msg"]}


def invalid_message(frame: str, exc: ValidationError) -> Error:
    """An INVALID_MESSAGE reply listing each problem with its field path."""
    msg_id = request_id_of(frame)
    tag: str | None = None
    try:
        data = json.loads(frame)
        if isinstance(data, dict) and isinstance(data.get("type"), str):
            tag = data["type"]
    except ValueError:
        pass
    problems = [_describe(e, tag) for e in exc.errors(include_url=False)][:20]
    first = problems[0]
    what = f"invalid {tag} message" if tag else "invalid message"
    return Error(
        id=msg_id,
        code=ErrorCode.INVALID_MESSAGE,
        message=f"{what}: {first['path']}: {first['message']}",
        details={"errors": problems},
    )
