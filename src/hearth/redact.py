"""One redactor for everything that leaves the gateway: logs, events, error replies, tool
results and stored error text.

The secrets are the gateway token and every provider key the gateway can use (from the
environment or the secret store), plus tokens that come from settings. They are collected in
one place (`gateway_secrets`) and re-read at most once a second, so a key added with
`hearth keys set` is hidden without a restart.

Any run of `PIECE` characters of a secret counts as a leak: frame logs cut long frames, and a
provider error body may quote part of a key ("Incorrect API key provided: sk-abc...xyz"), so
matching whole secrets only would let pieces through.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hearth.config import Settings
    from hearth.events import DomainEvent, EventBus, Subscription
    from hearth.secrets import SecretStore

REDACTED = "[redacted]"
#: Any run of this many characters of a secret counts as leaking it.
PIECE = 8
#: How often the list of secrets is re-read (the token file, stored keys).
SECRETS_REFRESH_S = 1.0
#: Environment variables that hold provider keys whatever the config says.
STANDARD_KEY_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def pieces_of(secrets: Iterable[str]) -> list[str]:
    """Every `PIECE`-long run of every secret (a shorter secret is its own piece)."""
    pieces: set[str] = set()
    for secret in secrets:
        if len(secret) <= PIECE:
            if secret:
                pieces.add(secret)
            continue
        pieces.update(secret[i : i + PIECE] for i in range(len(secret) - PIECE + 1))
    return sorted(pieces)


def redact(text: str, pieces: Iterable[str]) -> str:
    """`text` with every run covered by a piece of a secret replaced by `[redacted]`."""
    covered: bytearray | None = None
    for piece in pieces:
        start = text.find(piece)
        while start != -1:
            if covered is None:
                covered = bytearray(len(text))
            covered[start : start + len(piece)] = b"\x01" * len(piece)
            start = text.find(piece, start + 1)
    if covered is None:
        return text
    out: list[str] = []
    index = 0
    while index < len(text):
        if covered[index]:
            while index < len(text) and covered[index]:
                index += 1
            out.append(REDACTED)
        else:
            out.append(text[index])
            index += 1
    return "".join(out)


def gateway_secrets(
    settings: Settings,
    store: SecretStore,
    token_path: Path,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The token and every key the gateway knows: none of them may leave it.

    Every source is read defensively: a missing token file or a broken secrets.json must not
    stop a log line or an event, it only means that source holds nothing to hide.
    """
    from hearth.datadir import read_token

    env = os.environ if environ is None else environ
    found: list[str] = []
    with contextlib.suppress(Exception):
        found.append(read_token(token_path))
    with contextlib.suppress(Exception):
        found += [v for n in store.names() if (v := store.get(n))]
    env_names = {p.api_key_env for p in settings.providers.values() if p.api_key_env}
    env_names.update(STANDARD_KEY_ENV)
    found += [env[n] for n in env_names if env.get(n)]
    # Tokens that may come from the environment as settings (never from the file).
    if settings.telegram.token is not None:
        found.append(settings.telegram.token.get_secret_value())
    if settings.metrics.token:
        found.append(settings.metrics.token)
    return found


class Redactor:
    """Removes secrets (and pieces of them) from text and JSON-ready values.

    Built once per gateway from `gateway_secrets`; the same instance serves the log filter,
    the event bus, error replies, tool results and the workflow engine's stored errors.
    """

    def __init__(
        self, secrets: Callable[[], Iterable[str]], refresh_s: float = SECRETS_REFRESH_S
    ) -> None:
        self._secrets = secrets
        self._refresh_s = refresh_s
        self._pieces: list[str] = []
        self._shortest = 0
        #: Whether every piece appears unchanged in JSON text (no quote, backslash or control
        #: character, which JSON escapes), so one search of a value's JSON can clear it.
        self._json_safe = True
        self._read_at: float | None = None

    def pieces(self) -> list[str]:
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self._refresh_s:
            self._pieces = pieces_of(self._secrets())
            self._shortest = min((len(p) for p in self._pieces), default=0)
            self._json_safe = not any(
                c in '"\\' or ord(c) < 0x20 for piece in self._pieces for c in piece
            )
            self._read_at = now
        return self._pieces

    def _hit(self, text: str) -> bool:
        """Whether `text` holds any piece. The usual answer is no and every event asks, so this
        is one C-speed substring search per piece (measured faster than looking up each of the
        text's windows in a set, even for short texts)."""
        return any(map(text.__contains__, self._pieces))

    def text(self, text: str) -> str:
        pieces = self.pieces()
        return redact(text, pieces) if pieces and self._hit(text) else text

    def value(self, value: Any) -> Any:
        """`value` with every string in it (keys too) redacted; a value holding no secret is
        returned as the same object, so the common case allocates nothing.

        Every event passes here, and almost none holds a secret: so the value is first encoded
        as JSON (in C) and searched once, and only a value whose text holds a piece is walked
        string by string. Walking every event cost a PostgreSQL step a fifth of its CPU.
        """
        pieces = self.pieces()
        if not pieces:
            return value
        if self._json_safe and isinstance(value, dict | list):
            try:
                text = json.dumps(value, ensure_ascii=False, default=str)
            except (TypeError, ValueError):  # a cycle or an unencodable key: walk it
                pass
            else:
                if not self._hit(text):
                    return value
        return self._walk(value, pieces)

    def _walk(self, value: Any, pieces: list[str]) -> Any:
        if isinstance(value, str):
            if len(value) < self._shortest or not self._hit(value):
                return value
            return redact(value, pieces)
        if isinstance(value, dict):
            changed = False
            out: dict[Any, Any] = {}
            for key, item in value.items():
                new_key = self._walk(key, pieces)
                new_item = self._walk(item, pieces)
                changed = changed or new_key is not key or new_item is not item
                out[new_key] = new_item
            return out if changed else value
        if isinstance(value, list | tuple):
            items = [self._walk(item, pieces) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return items if isinstance(value, list) else tuple(items)
        return value


class RedactingBus:
    """An `EventBus` that removes secrets from every event before anyone receives it.

    Publication is the one place every server event passes (workflow.status with step
    errors, chat.error, tool events, alerts), whether it then goes to WebSocket clients,
    Telegram or other nodes, so redacting here covers them all.
    """

    def __init__(self, inner: EventBus, redactor: Redactor) -> None:
        self.inner = inner
        self.redactor = redactor

    def publish(self, event: DomainEvent) -> None:
        data = self.redactor.value(event.data)
        self.inner.publish(event if data is event.data else replace(event, data=data))

    def subscribe(
        self,
        *prefixes: str,
        maxsize: int = 1000,
        accept: Callable[[DomainEvent], bool] | None = None,
    ) -> Subscription:
        return self.inner.subscribe(*prefixes, maxsize=maxsize, accept=accept)

    async def start(self) -> None:
        await self.inner.start()

    @property
    def connected(self) -> bool:
        return self.inner.connected

    @property
    def reconnects(self) -> int:
        return self.inner.reconnects

    async def aclose(self) -> None:
        await self.inner.aclose()
