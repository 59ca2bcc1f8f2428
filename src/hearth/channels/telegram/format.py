"""Text with entities built by hand, for messages the gateway writes (prompts, alerts, help).

What goes in comes from workflows, tools and models; entities keep it verbatim (no escaping,
no parse errors), and long values are cut so a prompt always fits one message.
"""

from __future__ import annotations

from typing import Any

from hearth.channels.telegram.render import MAX_UTF16, utf16_len


class RichText:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._entities: list[dict[str, Any]] = []
        self._length = 0

    def add(self, text: str, kind: str | None = None, **extra: Any) -> RichText:
        if not text:
            return self
        size = utf16_len(text)
        if kind is not None and text.strip():
            self._entities.append({"type": kind, "offset": self._length, "length": size, **extra})
        self._parts.append(text)
        self._length += size
        return self

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def entities(self) -> list[dict[str, Any]] | None:
        return [dict(e) for e in self._entities] or None


def clip(text: str, limit: int = 1500) -> str:
    """At most `limit` characters, with a mark when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fits(rich: RichText) -> bool:
    return utf16_len(rich.text) <= MAX_UTF16
