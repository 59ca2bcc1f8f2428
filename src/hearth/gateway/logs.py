"""Logging for the gateway: text or JSON lines, each carrying the connection id, never a token."""

from __future__ import annotations

import contextvars
import json
import logging
import logging.handlers
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from hearth.redact import Redactor, redact

#: The connection a log line belongs to; set by the WebSocket endpoint for its task tree.
connection_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hearth_connection_id", default=None
)

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({})))
_TRACEBACKS = logging.Formatter()


class ContextFilter(logging.Filter):
    """Adds `connection_id` and removes secrets (and pieces of them) from every record.

    The message, a traceback and a stack are all rewritten here, before any formatter sees
    the record, so no handler or format can print a secret.
    """

    def __init__(self, secrets: Callable[[], Iterable[str]]) -> None:
        super().__init__()
        self._redactor = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        record.connection_id = connection_id_var.get() or "-"
        pieces = self._redactor.pieces()
        record.msg, record.args = redact(record.getMessage(), pieces), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, pieces)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, pieces)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        conn = getattr(record, "connection_id", "-")
        if conn != "-":
            entry["connectionId"] = conn
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in {"connection_id", "color_message"}:
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_text:
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


@dataclass(frozen=True)
class RotatingFile:
    path: Path
    max_bytes: int
    backups: int


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(connection_id)s] %(message)s"


def configure_logging(
    fmt: str,
    level: str,
    secrets: Callable[[], list[str]],
    stream: TextIO | None = None,
    file: RotatingFile | None = None,
) -> logging.Handler:
    """Install the stderr handler (and a rotating file handler when `file` is given) on the
    root logger; uvicorn's loggers propagate into it. The file gets the same format and the
    same redaction, so it never holds more than stderr does."""
    handler: logging.Handler = logging.StreamHandler(stream or sys.stderr)
    handlers = [handler]
    if file is not None:
        file.path.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                file.path, maxBytes=file.max_bytes, backupCount=file.backups, encoding="utf-8"
            )
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    for each in handlers:
        each.addFilter(ContextFilter(secrets))
        each.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
        root.addHandler(each)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("alembic").setLevel("WARNING")
    # HTTPX logs every request's full URL at INFO: query strings and user:password@ of
    # http.request calls, and the Telegram Bot API path, which carries the bot token.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel("WARNING")
    return handler
