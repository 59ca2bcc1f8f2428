"""Logging for the gateway: text or JSON lines, each carrying the connection id, never a token."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

#: The connection a log line belongs to; set by the WebSocket endpoint for its task tree.
connection_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "hearth_connection_id", default=None
)

REDACTED = "[redacted]"
_STANDARD_ATTRS = set(vars(logging.makeLogRecord({})))


class ContextFilter(logging.Filter):
    """Adds `connection_id` and removes secrets from every record before it is formatted."""

    def __init__(self, secrets: Callable[[], list[str]]) -> None:
        super().__init__()
        self._secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        record.connection_id = connection_id_var.get() or "-"
        message = record.getMessage()
        for secret in self._secrets():
            if secret and secret in message:
                message = message.replace(secret, REDACTED)
        record.msg, record.args = message, None
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
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(connection_id)s] %(message)s"


def configure_logging(
    fmt: str, level: str, secrets: Callable[[], list[str]], stream: TextIO | None = None
) -> logging.Handler:
    """Install one handler on the root logger; uvicorn's loggers propagate into it."""
    handler: logging.Handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter(secrets))
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("alembic").setLevel("WARNING")
    return handler
