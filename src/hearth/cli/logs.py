"""`hearth logs`: read (and follow) the gateway's log file, filtered by level."""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal, TextIO

import typer

from hearth.cli.common import DataDirOption, fail, settings_for

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
TEXT_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<level>[A-Z]+) ")
POLL_S = 0.25


def _level_of(line: str) -> int | None:
    """The level of a line that starts a record; None for a continuation (a traceback)."""
    match = TEXT_RECORD.match(line)
    if match:
        return LEVELS.get(match["level"], 0)
    if line.startswith("{"):
        try:
            return LEVELS.get(str(json.loads(line).get("level")), 0)
        except (ValueError, AttributeError):
            return None
    return None


class _Filter:
    """Keeps records at or above a level; continuation lines follow their record's fate."""

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum
        self.showing = True

    def __call__(self, line: str) -> bool:
        level = _level_of(line)
        if level is not None:
            self.showing = level >= self.minimum
        return self.showing


def _follow(path: Path, handle: TextIO, keep: _Filter) -> Iterator[str]:
    """New lines as they are written, across rotations (the file is replaced or truncated)."""
    inode = path.stat().st_ino
    while True:
        line = handle.readline()
        if line:
            if keep(line):
                yield line
            continue
        time.sleep(POLL_S)
        try:
            current = path.stat()
        except FileNotFoundError:
            continue
        if current.st_ino != inode or current.st_size < handle.tell():
            handle.close()
            handle = path.open(encoding="utf-8", errors="replace")
            inode = current.st_ino


def logs(
    data_dir: DataDirOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"],
        typer.Option("--level", help="Show records at this level and above."),
    ] = "DEBUG",
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, help="How many of the last lines to show first.")
    ] = 50,
) -> None:
    """Print the gateway's log file (set [logging] file in config.toml to have one)."""
    settings = settings_for(data_dir)
    path = settings.log_file
    if path is None:
        fail(
            "no log file configured: the gateway logs to stderr (under systemd: journalctl "
            '--user -u hearth.service); set [logging] file = "hearth.log" in config.toml for one'
        )
    if not path.exists():
        fail(f"{path} does not exist yet: the gateway creates it when it starts")
    keep = _Filter(LEVELS[level])
    handle = path.open(encoding="utf-8", errors="replace")
    try:
        tail: deque[str] = deque(maxlen=lines)
        for line in handle:
            if keep(line):
                tail.append(line)
        typer.echo("".join(tail), nl=False)
        if follow:
            for line in _follow(path, handle, keep):
                typer.echo(line, nl=False)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    finally:
        handle.close()
