"""HEARTBEAT.md: optional YAML front matter, then a Markdown checklist.

```
---
interval: 30m            # minutes (a number) or a duration such as "30m", "2h"
timezone: Europe/Berlin
activeHours: {start: "08:00", end: "22:00", daysOfWeek: [1, 2, 3, 4, 5]}
model: local:llama3.2    # default: [models] default
enabled: true
---
Context for the model (any text that is not a checklist line).

- [ ] Is the NAS more than 90 % full?
- [x] Done items are ignored.
```

The file is written by a person, so every rejection names the file and the key (or line) at
fault. Front matter is read with `yaml.safe_load` only: it comes from a file, and nothing in it
may construct Python objects.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

from hearth.scheduling.active_hours import ActiveHours
from hearth.scheduling.errors import InvalidScheduleError
from hearth.scheduling.triggers import zone
from hearth.workflows.durations import parse_duration

#: The front matter keys a checklist may set; anything else is a typo worth reporting.
FRONT_MATTER_KEYS = ("interval", "timezone", "activeHours", "model", "enabled")
#: Larger files are refused: the whole checklist goes into one prompt.
MAX_BYTES = 256 * 1024
MIN_INTERVAL = timedelta(seconds=1)

_ITEM = re.compile(r"^\s*[-*+]\s+\[( |x|X)\]\s+(.*\S)\s*$")
_EMPTY_ITEM = re.compile(r"^\s*[-*+]\s+\[( |x|X)\]\s*$")

EXAMPLE = """\
---
# Everything in this block is optional. `hearth heartbeat configure` flags override it.
#
# How often the heartbeat runs: minutes (30) or a duration ("30m", "2h").
interval: 30m
# The zone active hours are read in (an IANA name); default: the gateway's zone.
# timezone: Europe/Berlin
# Only run inside this window (and on these days, Monday = 1 ... Sunday = 7).
# activeHours:
#   start: "08:00"
#   end: "22:00"
#   daysOfWeek: [1, 2, 3, 4, 5]
# Which model checks the list; default: [models] default in config.toml.
# model: openai:gpt-4o-mini
# enabled: true
---
# Heartbeat

Every run, one model call reads the open items below (`- [ ]`) and decides, for each one,
whether you need to do something. It may read files in the workspace and fetch URLs (GET only)
to find out. You get an alert only when something needs you; done items (`- [x]`) are skipped.
Any other text, like this paragraph, is context for the model.

- [ ] Does workspace/backup-status.txt say last night's backup failed?
- [ ] Is anything in workspace/certificates.txt expiring within 14 days?
- [x] This one is done, so the heartbeat ignores it.
"""


class ChecklistError(Exception):
    """HEARTBEAT.md is missing, unreadable or wrong; the message names the file and the key."""

    def __init__(self, path: Path, message: str, key: str | None = None) -> None:
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(where + message)
        self.path = path
        self.key = key
        self.reason = message


@dataclass(frozen=True)
class Checklist:
    """One reading of the file. Front matter values are None when the file does not set them."""

    path: Path
    open_items: list[str] = field(default_factory=list)
    done_items: list[str] = field(default_factory=list)
    context: str = ""
    interval: timedelta | None = None
    timezone: str | None = None
    active_hours: dict[str, Any] | None = None
    model: str | None = None
    enabled: bool | None = None


def parse_interval(value: Any) -> timedelta:
    """Minutes as a number (30, 0.5) or a duration string ("30m", "1h30m")."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an interval: use minutes (30) or a duration ('30m')")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{value!r} minutes is not a positive interval")
        interval = timedelta(minutes=value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            interval = timedelta(minutes=float(text))
        except ValueError:
            interval = parse_duration(text)
    else:
        raise ValueError(f"{value!r} is not an interval: use minutes (30) or a duration ('30m')")
    if interval < MIN_INTERVAL:
        raise ValueError(f"{value!r} is shorter than one second")
    return interval


def _front_matter(path: Path, raw: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ChecklistError(path, f"front matter is not valid YAML{line}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ChecklistError(path, "front matter must be a mapping of keys to values")
    unknown = sorted(str(k) for k in data if k not in FRONT_MATTER_KEYS)
    if unknown:
        raise ChecklistError(
            path, f"unknown key (known: {', '.join(FRONT_MATTER_KEYS)})", key=unknown[0]
        )
    return data


def parse_checklist(text: str, path: Path) -> Checklist:
    """Split front matter from the body and sort the body into open, done and context."""
    text = text.removeprefix("\ufeff")
    handler = YAMLHandler()
    meta: dict[str, Any] = {}
    body = text
    if handler.detect(text):
        try:
            raw, body = handler.split(text)
        except ValueError:
            raise ChecklistError(path, "front matter starts with '---' but never ends") from None
        meta = _front_matter(path, raw)

    interval = None
    if meta.get("interval") is not None:
        try:
            interval = parse_interval(meta["interval"])
        except ValueError as exc:
            raise ChecklistError(path, str(exc), key="interval") from None
    timezone = meta.get("timezone")
    if timezone is not None:
        if not isinstance(timezone, str):
            raise ChecklistError(path, "expected an IANA zone name", key="timezone")
        try:
            zone(timezone)
        except InvalidScheduleError as exc:
            raise ChecklistError(path, exc.reason, key="timezone") from None
    active_hours = meta.get("activeHours")
    if active_hours is not None:
        try:
            active_hours = ActiveHours.parse(active_hours).to_json()
        except InvalidScheduleError as exc:
            raise ChecklistError(path, exc.reason, key=exc.field) from None
    model = meta.get("model")
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise ChecklistError(path, 'expected "provider:model"', key="model")
    enabled = meta.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ChecklistError(path, "expected true or false", key="enabled")

    open_items: list[str] = []
    done_items: list[str] = []
    context: list[str] = []
    for line in body.splitlines():
        match = _ITEM.match(line)
        if match:
            (open_items if match.group(1) == " " else done_items).append(match.group(2))
        elif not _EMPTY_ITEM.match(line):
            context.append(line.rstrip())
    return Checklist(
        path=path,
        open_items=open_items,
        done_items=done_items,
        context="\n".join(context).strip(),
        interval=interval,
        timezone=timezone,
        active_hours=active_hours,
        model=model.strip() if model else None,
        enabled=enabled,
    )


def read_checklist(path: Path) -> Checklist:
    """Read and parse the file; a missing or unreadable file is a `ChecklistError` too."""
    try:
        if path.is_dir():
            raise ChecklistError(path, "is a directory, not a file")
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ChecklistError(
            path, "no such file (`hearth init` writes an example HEARTBEAT.md)"
        ) from None
    except PermissionError:
        raise ChecklistError(path, "cannot be read: permission denied") from None
    except OSError as exc:
        raise ChecklistError(path, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ChecklistError(path, f"is larger than {MAX_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ChecklistError(path, f"is not UTF-8 text (byte {exc.start})") from None
    return parse_checklist(text, path)
