"""Model errors as people read them: one line, at most 300 characters.

Provider errors carry whole response bodies: llama-cpp-python's HTTP 500 holds a Python
traceback, and its repr inside an alert was 2 KB of escapes. What a person sees (a chat error, the
heartbeat's "failing" alert, a workflow step's error) is the provider's own message, trimmed to
one line; the full error goes to the gateway log.

Nothing here imports pydantic-ai: exceptions are recognised by their attributes, so importing
the model layer stays cheap for processes that never call a model.
"""

from __future__ import annotations

import json
from typing import Any

MAX_REASON = 300


class ModelCallError(Exception):
    """The model could not be reached, refused, or answered with something unusable.

    `str()` is one readable line (≤ 300 characters) for people; details are logged.
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """`text` with whitespace collapsed to single spaces, cut to `limit` characters with "…"."""
    collapsed = " ".join(str(text).split())
    if len(collapsed) <= limit:
        return collapsed
    return collapsed[: limit - 1].rstrip() + "…"


def _body_message(body: Any) -> str | None:
    """The human part of an error body: OpenAI's `error.message`, or a `message`/`detail`."""
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            return str(body) if isinstance(body, str) else body.decode("utf-8", "replace")
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            for key in ("message", "detail", "msg"):
                value = inner.get(key)
                if isinstance(value, str) and value.strip():
                    return value
            return None
        if isinstance(inner, str):
            return inner
    return None


def _last_line(text: str) -> str:
    """For a server that sends a traceback as its message, the line that says what failed."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Traceback"):
        return lines[-1]
    return text


def describe(exc: BaseException, name: str) -> str:
    """One line for people saying what went wrong when asking `name`."""
    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    if isinstance(status, int):
        # Only the server's own words: pydantic-ai's message is a repr of the whole body.
        message = _body_message(getattr(exc, "body", None)) or ""
        text = f"{name}: the model server answered HTTP {status}"
        if message:
            text += f": {_last_line(message)}"
        return one_line(text)
    if kind in ("UnexpectedModelBehavior", "ContentFilterError"):
        return one_line(f"{name} gave an unusable answer: {getattr(exc, 'message', exc)}")
    if kind == "ModelConnectionError" or isinstance(exc, OSError):
        return one_line(f"cannot reach {name}: {getattr(exc, 'message', exc)}")
    if isinstance(exc, TimeoutError):
        return one_line(f"{name} did not answer in time")
    message = getattr(exc, "message", None) or str(exc)
    return one_line(f"{name} failed: {kind}: {_last_line(str(message))}")
