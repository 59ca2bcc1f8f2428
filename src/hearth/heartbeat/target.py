"""The heartbeat as a schedule target, so the scheduler fires it like any other schedule.

Being a schedule gives the heartbeat, for free, what people expect of it: it is listed by
`schedule.list`, its ticks are claimed exactly once across nodes, it survives restarts, and it
obeys active hours in its own zone (the scheduler records ticks outside them as `skipped`).
The schedule's `input` holds `{"heartbeatPath": ..., "pinned": [...]}`: the file to read, and
which settings `heartbeat.configure` gave explicitly (the others follow the file's front
matter).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from hearth.heartbeat.runner import HeartbeatConfig, HeartbeatRunner
from hearth.scheduling.errors import InvalidScheduleError
from hearth.scheduling.targets import Started
from hearth.store.heartbeat import HeartbeatRepository
from hearth.store.records import ScheduleRecord

KIND = "heartbeat"
PATH_KEY = "heartbeatPath"
PINNED_KEY = "pinned"
PINNABLE = ("interval", "timezone", "activeHours", "enabled")


class Launcher(Protocol):
    def launch(self, run_id: str, schedule: ScheduleRecord) -> None: ...


def resolve_path(data_dir: Path, raw: str | None) -> Path:
    """Relative paths are read against the data directory; `~` is the gateway user's home."""
    if raw is None or not raw.strip():
        return data_dir / "HEARTBEAT.md"
    path = Path(raw.strip()).expanduser()
    return path if path.is_absolute() else data_dir / path


def check_confined(data_dir: Path, path: Path, allow_outside: bool) -> None:
    """Refuse a checklist outside the data directory (links resolved) unless allowed.

    The checklist's text is sent to the model provider, so a path anywhere on the disk
    would let any client ship any readable file (keys, ~/.ssh) out of the machine.
    """
    if allow_outside or path.resolve().is_relative_to(data_dir.resolve()):
        return
    raise ValueError(
        f"{path} is outside the data directory {data_dir}; keep the checklist there "
        "or set [heartbeat] allow_outside = true"
    )


def path_of(data_dir: Path, schedule: ScheduleRecord) -> Path:
    raw = (schedule.input or {}).get(PATH_KEY)
    return resolve_path(data_dir, raw if isinstance(raw, str) else None)


def pinned_of(schedule: ScheduleRecord) -> set[str]:
    pinned = (schedule.input or {}).get(PINNED_KEY) or []
    return {p for p in pinned if isinstance(p, str)}


class HeartbeatTarget:
    kind = KIND

    def __init__(
        self,
        repo: HeartbeatRepository,
        runner: HeartbeatRunner,
        data_dir: Path,
        config: HeartbeatConfig,
    ) -> None:
        self.repo = repo
        self.runner = runner
        self.data_dir = data_dir
        self.config = config
        self._launcher: Launcher | None = None

    def attach(self, launcher: Launcher) -> None:
        """The service that runs what this target begins (it needs the scheduler, which needs
        this target: the cycle is closed here, once, by the composition root)."""
        self._launcher = launcher

    def check(self, workflow_id: str | None, raw_input: Mapping[str, Any] | None) -> None:
        """The input must name a file that could be a checklist (whether it parses is checked
        by `heartbeat.configure`, and again on every run)."""
        data = dict(raw_input or {})
        unknown = sorted(set(data) - {PATH_KEY, PINNED_KEY})
        if unknown:
            raise InvalidScheduleError(f"input.{unknown[0]}", "unknown key")
        raw = data.get(PATH_KEY)
        if not isinstance(raw, str) or not raw.strip():
            raise InvalidScheduleError(f"input.{PATH_KEY}", "the checklist file is required")
        if "\x00" in raw:
            raise InvalidScheduleError(f"input.{PATH_KEY}", "contains a NUL character")
        if resolve_path(self.data_dir, raw).is_dir():
            raise InvalidScheduleError(f"input.{PATH_KEY}", f"{raw} is a directory, not a file")
        pinned = data.get(PINNED_KEY, [])
        if not isinstance(pinned, list) or any(p not in PINNABLE for p in pinned):
            raise InvalidScheduleError(
                f"input.{PINNED_KEY}", f"expected a list of: {', '.join(PINNABLE)}"
            )

    async def begin(
        self, conn: AsyncConnection, schedule: ScheduleRecord, scheduled_for: datetime
    ) -> Started:
        run = self.runner.new_run(
            path_of(self.data_dir, schedule),
            trigger="schedule",
            schedule_id=schedule.id,
            scheduled_for=scheduled_for,
        )
        await self.repo.insert_run(conn, run)
        return Started(run.id, schedule)

    def launch(self, started: Started) -> None:
        assert self._launcher is not None, "HeartbeatTarget.attach was never called"
        assert started.execution_id is not None
        assert isinstance(started.handle, ScheduleRecord)
        self._launcher.launch(started.execution_id, started.handle)

    async def busy(self, schedule: ScheduleRecord) -> bool:
        """A run is in progress (on any node): the next tick is skipped as an overlap."""
        return await self.repo.running_since(datetime.now(UTC) - self.config.longest_run)
