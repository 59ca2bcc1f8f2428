"""An MCP tool result as Hearth stores and shows it: text, structured data, descriptions.

Results are stored with workflow steps, sent to every client and given to the model, so they
are capped like the built-in tools' (1 MiB), and images, audio and embedded resources are
described (kind, type, size, URI) instead of carrying base64 data nobody can read in a log
or a chat.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

#: The same limit as `file.read` and `http.request` bodies.
MAX_RESULT_CHARS = 1024 * 1024
#: An error text from a server is cut to this for the message a person reads.
MAX_ERROR_CHARS = 2000


def _size_of_base64(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return len(data) * 3 // 4


def describe_block(block: Any) -> tuple[str | None, str | None]:
    """(text, description): the text of a text block, or a one-line description of another."""
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text), None
    if kind in ("image", "audio"):
        size = _size_of_base64(str(block.data))
        return None, f"[{kind} {block.mime_type or 'unknown type'}, {size} bytes, not shown]"
    if kind == "resource_link":
        mime = f" {block.mime_type}" if getattr(block, "mime_type", None) else ""
        return None, f"[resource link {block.uri}{mime}: {block.name}]"
    if kind == "resource":
        resource = block.resource
        mime = getattr(resource, "mime_type", None) or "unknown type"
        text = getattr(resource, "text", None)
        if text is not None:
            return None, f"[resource {resource.uri} ({mime}), {len(text)} characters:]\n{text}"
        blob = getattr(resource, "blob", "") or ""
        size = _size_of_base64(blob)
        return None, f"[resource {resource.uri} ({mime}), {size} bytes, not shown]"
    return None, f"[{kind or 'unknown'} content, not shown]"


def _cut(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def convert(content: list[Any], structured: Any) -> dict[str, Any]:
    """`{"text", "structured"?, "truncated"?}` from a successful `tools/call` result."""
    parts: list[str] = []
    for block in content:
        text, description = describe_block(block)
        parts.append(text if text is not None else str(description))
    text, truncated = _cut("\n".join(parts), MAX_RESULT_CHARS)
    result: dict[str, Any] = {"text": text}
    if structured is not None:
        size = len(json.dumps(structured, default=str))
        if size + len(text) <= MAX_RESULT_CHARS:
            result["structured"] = structured
        else:
            truncated = True
    if truncated:
        result["truncated"] = True
    return result


def error_text(content: list[Any]) -> str:
    """The text a failed call (`isError`) carries, cut for a message."""
    parts = []
    for block in content:
        text, description = describe_block(block)
        parts.append(text if text is not None else str(description))
    joined = " ".join(" ".join(parts).split()) or "no details"
    return _cut(joined, MAX_ERROR_CHARS)[0]
