"""Model Markdown → Telegram text plus message entities, cut into messages Telegram accepts.

Entities (offsets in UTF-16 code units) instead of a parse mode mean the model's text can never
make Telegram refuse a message for markup: whatever the Markdown, the text goes out as text and
the formatting as separate ranges. telegramify-markdown does the conversion and the splitting at
line boundaries; a message is at most 4096 UTF-16 code units.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import telegramify_markdown
from telegramify_markdown.entity import split_entities, utf16_len

log = logging.getLogger("hearth.channels.telegram")

#: Telegram's limit on a message's text, in UTF-16 code units.
MAX_UTF16 = 4096

__all__ = ["MAX_UTF16", "Chunk", "plain_chunks", "render", "utf16_len"]


@dataclass(frozen=True)
class Chunk:
    """One Telegram message: its text and its entities as Bot API dicts."""

    text: str
    entities: tuple[dict[str, Any], ...] = field(default=())

    def entity_list(self) -> list[dict[str, Any]] | None:
        return [dict(e) for e in self.entities] or None


def render(markdown: str, limit: int = MAX_UTF16) -> list[Chunk]:
    """The messages that show `markdown`; empty when there is nothing visible to send."""
    if not markdown.strip():
        return []
    try:
        text, entities = telegramify_markdown.convert(markdown)
    except Exception:  # a converter bug must not cost the person their reply
        log.exception("could not convert Markdown; sending it as plain text")
        return plain_chunks(markdown, limit)
    return [
        Chunk(part, tuple(e.to_dict() for e in part_entities))
        for part, part_entities in split_entities(text, entities, limit)
    ]


def plain_chunks(text: str, limit: int = MAX_UTF16) -> list[Chunk]:
    """`text` without formatting, cut at line breaks (or anywhere) to fit `limit`."""
    return [Chunk(part) for part, _ in split_entities(text, [], limit)]
