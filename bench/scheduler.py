"""Schedules at scale: Hearth's durable scheduler vs APScheduler 3.11 (`AsyncIOScheduler`, memory).

Two scenarios, each with its baseline in the same run:

1. **Holding 100 000 schedules.** Hearth keeps schedules in its database, so holding many should
   cost a restart almost nothing: the rows are written straight into a fresh data directory
   (exactly the rows `ScheduleService.create` would write: cron expressions spread over the day,
   `next_run` computed by Hearth's own trigger code, a no-op workflow as target), then a real
   gateway is started as a person starts it (`python -m hearth serve --port 0`). *Ready* is the
   moment `runtime.json` exists **and** a `ping` round trip over the WebSocket succeeded. Its RSS
   is sampled every 50 ms from spawn until a few seconds after ready, and the kernel's high-water
   mark (`VmHWM`) is read at the end. A gateway on an empty data directory is measured the same
   way, so the cost of the schedules themselves shows. APScheduler keeps jobs in memory only, so
   its "start-up" is adding every job again: a subprocess starts an `AsyncIOScheduler` and adds
   100 000 `CronTrigger` jobs (the same expressions) while it runs; ready is when it has them.
2. **Firing 1 000 schedules every second.** 1 000 `every: 1s` schedules (all anchored on the
   same instant, the hardest case: 1 000 ticks due together each second) start a no-op workflow,
   with `overlap: allow` so no tick is skipped because the previous no-op execution is still
   being written. Lateness is read **afterwards from the database**, because the point is that
   every run is recorded durably: for each `schedule_runs` row, the time the workflow's step
   actually started (`step_runs.started_at`) minus the tick (`scheduled_for`). That is the
   analogue of APScheduler's lateness, the call time of the job function minus its scheduled run
   time (the job returns `time.time()`; `EVENT_JOB_EXECUTED` carries both). Two earlier points
   are shown too: the execution row's creation (inside the claim transaction) and the recorded
   `fired_at` (when the scheduler pass got to that tick, before its commit). CPU time of the
   process under test is measured over the window only. With `--profile FILE` the gateway runs
   under cProfile and its statistics are written to FILE when it stops (for where the time goes:
   the profiler slows the gateway, so that run's lateness does not count).

Why subprocesses: memory and start-up time are per process, and neither system should share a
heap, a GIL or an event loop with the measuring code. This file imports Hearth lazily, so the
APScheduler child (which runs this same file) does not carry Hearth's import graph on its heap.

Run: `.venv/bin/python bench/scheduler.py [--seconds N] [--schedules N] [--scenario hold|fire]
[--profile FILE] [--json]` (APScheduler is in the bench extra:
`.venv/bin/pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# psutil and websockets are imported here although `common` would import them lazily: the
# APScheduler child runs this file, and its measured heap has always held both.
import psutil  # type: ignore[import-untyped, unused-ignore]
from websockets.asyncio.client import connect

import common
from common import Child

WORKFLOW_ID = "noop"
WORKFLOW_YAML = "name: Does nothing\nsteps:\n  - {id: noop, action: noop}\n"
DEFAULT_SCHEDULES = 100_000  # scenario 1
DEFAULT_FIRE_SCHEDULES = 1_000  # scenario 2
DEFAULT_SECONDS = 30  # scenario 2: measured window
DEFAULT_WARMUP = 2  # scenario 2: ticks before the window, not measured
DEFAULT_SETTLE = 5.0  # scenario 1: seconds of RSS sampling after ready
DRAIN_S = 3.0  # scenario 2: time after the window for the last ticks' runs to finish
HEARTH_LEAD_S = 10  # scenario 2: first tick this long after the rows are written
APS_LEAD_S = 5  # scenario 2: first tick this long after the APScheduler child is spawned
SAMPLE_S = 0.05  # RSS sampling period
INSERT_CHUNK = 5_000
TARGET_READY_S = 5.0  # gateway start-to-ready with 100 000 schedules
TARGET_RSS_FRACTION = 1 / 3  # gateway peak RSS <= 1/3 of APScheduler's
TARGET_P99_MS = 100.0  # firing lateness p99, every run recorded durably
START_TIMEOUT_S = 180.0  # APScheduler needs about 30 s to add 100 000 jobs; a busy machine more
PING_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 15.0  # SIGTERM grace before SIGKILL
MB = 1024 * 1024


def cron_for(index: int) -> str:
    """Daily cron expressions spread over the 1 440 minutes of the day (and so over the run)."""
    return f"{index % 60} {(index // 60) % 24} * * *"


def _proc_status_bytes(pid: int, key: str) -> int | None:
    """A `kB` line of /proc/PID/status (VmHWM: peak RSS as the kernel counted it), in bytes."""
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) * 1024
    return None


def _percentile_ms(sorted_s: list[float], q: float) -> float:
    return common.percentile(sorted_s, q) * 1000.0


def _distribution(values_s: list[float]) -> dict[str, float | int]:
    ordered = sorted(values_s)
    return {
        "n": len(ordered),
        "p50_ms": _percentile_ms(ordered, 0.50),
        "p99_ms": _percentile_ms(ordered, 0.99),
        "max_ms": ordered[-1] * 1000.0 if ordered else float("nan"),
    }


# --------------------------------------------------------------------------- the APScheduler child


async def _aps_call_time() -> float:
    """The job: return when it was called, so the executed event carries the call time."""
    return time.time()


def _own_rss() -> int:
    return _proc_status_bytes(os.getpid(), "VmRSS") or 0


async def _aps_hold(jobs: int, ready_file: Path) -> None:
    """Start an AsyncIOScheduler, add `jobs` cron jobs while it runs, hold them until SIGTERM.

    Adding while running is how a long-lived application registers jobs, and it reproduces the
    figure quoted in the issue; adding before `start()` moves part of the cost into `start()`.
    """
    from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped, unused-ignore]
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped, unused-ignore]

    stopped = common.stop_signal()
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start()
    rss_before = _own_rss()
    begun = time.perf_counter()
    for index in range(jobs):
        trigger = CronTrigger.from_crontab(cron_for(index), timezone=UTC)
        scheduler.add_job(_aps_call_time, trigger, id=f"s{index}")
    added = time.perf_counter() - begun
    await asyncio.sleep(0)  # let the scheduler's wake-up run once with every job in place
    common.write_json_atomic(
        ready_file,
        {"add_s": added, "rss_before_add": rss_before, "rss_after_add": _own_rss()},
    )
    await stopped
    scheduler.shutdown(wait=False)


async def _aps_fire(jobs: int, anchor: float, until: float, out: Path) -> None:
    """`jobs` IntervalTrigger(seconds=1) jobs from `anchor` until `until`, then write what ran.

    Defaults as shipped (coalesce, max_instances=1, misfire_grace_time=1 s), as a user has them.
    Each executed event pairs the scheduled run time with the job's return value, its call time.
    """
    from apscheduler.events import (  # type: ignore[import-untyped, unused-ignore]
        EVENT_JOB_ERROR,
        EVENT_JOB_EXECUTED,
        EVENT_JOB_MAX_INSTANCES,
        EVENT_JOB_MISSED,
    )
    from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped, unused-ignore]
    from apscheduler.triggers.interval import IntervalTrigger  # type: ignore[import-untyped, unused-ignore]

    executed: list[tuple[float, float]] = []
    missed: list[float] = []
    errors: list[float] = []
    overlapped: list[float] = []

    def listen(event: Any) -> None:
        if event.code == EVENT_JOB_EXECUTED:
            executed.append((event.scheduled_run_time.timestamp(), float(event.retval)))
        elif event.code == EVENT_JOB_MISSED:
            missed.append(event.scheduled_run_time.timestamp())
        elif event.code == EVENT_JOB_ERROR:
            errors.append(event.scheduled_run_time.timestamp())
        elif event.code == EVENT_JOB_MAX_INSTANCES:
            overlapped.extend(t.timestamp() for t in event.scheduled_run_times)

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_listener(
        listen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES
    )
    scheduler.start()
    start = datetime.fromtimestamp(anchor, UTC)
    for index in range(jobs):
        trigger = IntervalTrigger(seconds=1, start_date=start, timezone=UTC)
        scheduler.add_job(_aps_call_time, trigger, id=f"s{index}")
    await asyncio.sleep(max(0.0, until - time.time()))
    scheduler.shutdown(wait=False)
    common.write_json_atomic(
        out, {"executed": executed, "missed": missed, "errors": errors, "overlapped": overlapped}
    )


# --------------------------------------------------------------------------- Hearth's data


def _schedule_row(now: datetime, **fields: Any) -> dict[str, Any]:
    """A `schedules` row as `ScheduleService.create` writes it, with `fields` filled in."""
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": "",
        "target": "workflow",
        "workflow_id": WORKFLOW_ID,
        "input": None,
        "cron_expression": None,
        "every": None,
        "every_s": None,
        "at": None,
        "anchor_at": now,
        "timezone": "UTC",
        "active_hours": None,
        "max_runs": None,
        "run_count": 0,
        "overlap": "skip",
        "misfire": "run_once",
        "misfire_grace_s": 3600.0,
        "enabled": True,
        "state": "active",
        "state_reason": None,
        "consecutive_failures": 0,
        "next_run": None,
        "last_execution_id": None,
        "created_at": now,
        "updated_at": now,
    }
    row.update(fields)
    return row


def cron_rows(count: int, now: datetime) -> list[dict[str, Any]]:
    """`count` daily cron schedules, `next_run` from Hearth's CronTrigger (once per expression)."""
    from hearth.scheduling.triggers import CronTrigger, check_cron, zone

    next_runs: dict[str, datetime | None] = {}
    rows = []
    for index in range(count):
        expression = cron_for(index)
        if expression not in next_runs:
            next_runs[expression] = CronTrigger(check_cron(expression), zone("UTC")).next_after(now)
        rows.append(
            _schedule_row(
                now,
                name=f"cron {index}",
                cron_expression=expression,
                next_run=next_runs[expression],
            )
        )
    return rows


def every_rows(count: int, anchor: datetime, now: datetime) -> list[dict[str, Any]]:
    """`count` `every: 1s` schedules anchored on `anchor` (the first tick), overlap allowed.

    With the anchor in the future, `EveryTrigger.next_after(now)` is the anchor itself.
    """
    return [
        _schedule_row(
            now,
            name=f"every {index}",
            every="1s",
            every_s=1.0,
            anchor_at=anchor,
            overlap="allow",
            next_run=anchor,
        )
        for index in range(count)
    ]


def _sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'hearth.db'}"


async def prepare_data_dir(data_dir: Path, rows: list[dict[str, Any]]) -> float:
    """Migrate a fresh database, add the no-op workflow and the rows; returns seconds taken."""
    from hearth.store import Database
    from hearth.store.tables import schedules

    begun = time.perf_counter()
    (data_dir / "workflows").mkdir(parents=True, exist_ok=True)
    (data_dir / "workflows" / f"{WORKFLOW_ID}.yaml").write_text(WORKFLOW_YAML, encoding="utf-8")
    db = Database.from_url(_sqlite_url(data_dir))
    try:
        await db.upgrade()
        async with db.begin() as conn:
            for offset in range(0, len(rows), INSERT_CHUNK):
                await conn.execute(schedules.insert(), rows[offset : offset + INSERT_CHUNK])
    finally:
        await db.dispose()
    return time.perf_counter() - begun


async def ping_gateway(data_dir: Path) -> bool:
    """One `hello` + `ping` round trip, with the URL from runtime.json and the token file."""
    try:
        endpoint = common.gateway_endpoint(data_dir)
    except (OSError, ValueError):
        return False
    try:
        async with asyncio.timeout(PING_TIMEOUT_S), connect(endpoint.url, proxy=None) as ws:
            await common.say_hello(ws, endpoint.token, PING_TIMEOUT_S)
            await ws.send(json.dumps({"type": "ping", "id": "p"}))
            return bool(json.loads(await ws.recv()).get("type") == "pong")
    except Exception:  # refused, closed, timed out, garbled: not ready (yet)
        return False


async def _wait_ready(child: Child, ready: Callable[[], Awaitable[bool]], timeout: float) -> float:
    """Seconds from spawn until `ready()` is true, checking every SAMPLE_S / 2 that it lives."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        child.check_alive()
        if await ready():
            return time.perf_counter() - child.spawned
        await asyncio.sleep(SAMPLE_S / 2)
    raise RuntimeError(f"{child.name} not ready within {timeout:.0f} s:\n{child.log_tail()}")


async def wait_gateway_ready(child: Child, data_dir: Path, timeout: float) -> float:
    """Seconds from spawn until runtime.json exists and a ping round trip succeeded."""

    async def ready() -> bool:
        return (data_dir / "runtime.json").exists() and await ping_gateway(data_dir)

    return await _wait_ready(child, ready, timeout)


async def wait_file(child: Child, path: Path, timeout: float) -> float:
    """Seconds from spawn until `path` exists (written atomically by the child)."""

    async def ready() -> bool:
        return path.exists()

    return await _wait_ready(child, ready, timeout)


class RssSampler:
    """Samples a child's RSS every 50 ms in the background and keeps the highest value."""

    def __init__(self, child: Child) -> None:
        self.child = child
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, self.child.rss())
            await asyncio.sleep(SAMPLE_S)

    def __enter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def high_water(self) -> int:
        """The kernel's VmHWM when readable (it sees peaks between samples), else the samples."""
        return max(self.peak, _proc_status_bytes(self.child.process.pid, "VmHWM") or 0)


# --------------------------------------------------------------------------- scenario 1: holding


@dataclass
class HoldResult:
    system: str
    schedules: int
    ready_s: float  # spawn -> ready (gateway: runtime.json + ping; APScheduler: jobs added)
    rss_ready_mb: float
    rss_end_mb: float  # after the settle time
    rss_peak_mb: float  # VmHWM over the whole life of the process
    cpu_s: float  # CPU of the process from spawn to the end of the settle time
    extra: dict[str, float] = field(default_factory=dict)


async def _hold(
    child: Child, wait_ready: Callable[[], Awaitable[float]], settle: float, system: str, count: int
) -> HoldResult:
    """Ready time and RSS of a child sampled from spawn until `settle` seconds after ready.

    The same for both systems, so that only what `wait_ready` calls ready differs.
    """
    with RssSampler(child) as sampler:
        ready = await wait_ready()
        rss_ready = child.rss()
        await asyncio.sleep(settle)
        child.check_alive()
        rss_end, peak, cpu = child.rss(), sampler.high_water(), child.cpu_seconds()
    return HoldResult(system, count, ready, rss_ready / MB, rss_end / MB, peak / MB, cpu)


async def hold_hearth(workdir: Path, count: int, settle: float) -> HoldResult:
    """Start a gateway on a data directory holding `count` schedules; measure ready and RSS."""
    data_dir = workdir / f"hold-hearth-{count}"
    now = datetime.now(UTC)
    rows = cron_rows(count, now)
    prepare_s = await prepare_data_dir(data_dir, rows)
    del rows
    with common.stopping(STOP_TIMEOUT_S) as started:
        child = common.spawn(
            f"gateway-hold-{count}", common.gateway_args(data_dir), workdir, started
        )
        result = await _hold(
            child,
            lambda: wait_gateway_ready(child, data_dir, START_TIMEOUT_S),
            settle,
            "hearth",
            count,
        )
    result.extra = {"prepare_s": prepare_s}
    return result


async def hold_apscheduler(workdir: Path, count: int, settle: float) -> HoldResult:
    """An AsyncIOScheduler child adding `count` cron jobs; ready when it has them all."""
    ready_file = workdir / "aps-hold.json"
    with common.stopping(STOP_TIMEOUT_S) as started:
        args = common.script(__file__, "--aps-hold", str(count), "--aps-file", str(ready_file))
        child = common.spawn("apscheduler-hold", args, workdir, started)
        result = await _hold(
            child,
            lambda: wait_file(child, ready_file, START_TIMEOUT_S),
            settle,
            "apscheduler",
            count,
        )
    data = json.loads(ready_file.read_text(encoding="utf-8"))
    result.extra = {
        "add_s": data["add_s"],
        "rss_before_add_mb": data["rss_before_add"] / MB,
        "rss_after_add_mb": data["rss_after_add"] / MB,
    }
    return result


# --------------------------------------------------------------------------- scenario 2: firing


@dataclass
class FireResult:
    system: str
    schedules: int
    seconds: int
    expected: int  # ticks scheduled inside the window
    fired: int  # ticks whose job / workflow was started
    skipped: int  # Hearth: skipped runs; APScheduler: max_instances refusals
    missed: int  # recorded as missed (Hearth) / EVENT_JOB_MISSED (APScheduler)
    not_run: int  # expected - fired - skipped - missed (coalesced or never reached)
    completed: int  # Hearth: executions completed; APScheduler: executed events
    lateness: dict[str, dict[str, float | int]]  # by measure: n, p50_ms, p99_ms, max_ms
    cpu_s: float  # CPU of the process under test over the window
    rss_peak_mb: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.cpu_s / self.seconds

    @property
    def cpu_us_per_tick(self) -> float:
        return 1e6 * self.cpu_s / max(self.fired, 1)


async def _sleep_until(moment: float, child: Child) -> None:
    """Sleep until wall-clock `moment`, checking every second that the child still lives."""
    while (left := moment - time.time()) > 0:
        await asyncio.sleep(min(left, 1.0))
        child.check_alive()


async def fire_hearth(
    workdir: Path, count: int, seconds: int, warmup: int, profile: Path | None = None
) -> FireResult:
    """`count` every-1s schedules in a real gateway; lateness read from the database afterwards.

    With `profile`, the gateway runs under cProfile, which writes its statistics there on exit.
    """
    data_dir = workdir / "fire-hearth"
    now = datetime.now(UTC)
    anchor = math.ceil(now.timestamp()) + HEARTH_LEAD_S
    await prepare_data_dir(data_dir, every_rows(count, datetime.fromtimestamp(anchor, UTC), now))
    args = common.gateway_args(data_dir)
    if profile is not None:
        args = ["-m", "cProfile", "-o", str(profile.resolve()), *args]
    with common.stopping(STOP_TIMEOUT_S) as started:
        child = common.spawn("gateway-fire", args, workdir, started)
        with RssSampler(child) as sampler:
            await wait_gateway_ready(child, data_dir, START_TIMEOUT_S)
            # On a busy machine the gateway may come up after the first tick: it then catches
            # up once (one run per schedule, the rest recorded as missed), and the window starts
            # `warmup` ticks after it was ready instead, so that burst is not measured.
            window_start = max(anchor, math.ceil(time.time())) + warmup
            window_end = window_start + seconds
            await _sleep_until(window_start, child)
            cpu_start = child.cpu_seconds()
            await _sleep_until(window_end, child)
            cpu = child.cpu_seconds() - cpu_start
            await _sleep_until(window_end + DRAIN_S, child)
            peak = sampler.high_water()
    return await _read_hearth_runs(data_dir, count, seconds, window_start, window_end, cpu, peak)


async def _read_hearth_runs(
    data_dir: Path,
    count: int,
    seconds: int,
    window_start: float,
    window_end: float,
    cpu: float,
    peak: int,
) -> FireResult:
    """Every tick of the window as the durable tables recorded it (the gateway has stopped)."""
    import sqlalchemy as sa

    from hearth.store import Database
    from hearth.store.tables import schedule_runs, step_runs, workflow_executions

    rc, ec, sc = schedule_runs.c, workflow_executions.c, step_runs.c
    query = (
        sa.select(
            rc.scheduled_for,
            rc.fired_at,
            rc.status,
            rc.missed_count,
            ec.started_at,
            ec.status,
            sc.started_at,
        )
        .select_from(schedule_runs)
        .outerjoin(workflow_executions, ec.id == rc.execution_id)
        .outerjoin(step_runs, sa.and_(sc.execution_id == rc.execution_id, sc.seq == 1))
        .where(rc.scheduled_for < datetime.fromtimestamp(window_end, UTC))
    )
    db = Database.from_url(_sqlite_url(data_dir))
    try:
        async with db.connect() as conn:
            rows = (await conn.execute(query)).all()
    finally:
        await db.dispose()
    recorded: list[float] = []
    created: list[float] = []
    step: list[float] = []
    fired = skipped = missed = completed = 0
    statuses: dict[str, int] = {}
    for tick, fired_at, status, missed_count, exec_started, exec_status, step_started in rows:
        if status == "missed":
            # One row stands for `missed_count` consecutive ticks (1 s apart here) from
            # `scheduled_for` on; count those inside the window.
            first = tick.timestamp()
            low = max(0, math.ceil(window_start - first))
            high = min(missed_count or 1, math.ceil(window_end - first))
            missed += max(0, high - low)
            if high > low:
                statuses[status] = statuses.get(status, 0) + 1
            continue
        if tick.timestamp() < window_start:
            continue
        statuses[status] = statuses.get(status, 0) + 1
        if status == "skipped":
            skipped += 1
            continue
        fired += 1
        recorded.append((fired_at - tick).total_seconds())
        if exec_started is not None:
            created.append((exec_started - tick).total_seconds())
        if step_started is not None:
            step.append((step_started - tick).total_seconds())
        if exec_status == "completed":
            completed += 1
    expected = count * seconds
    return FireResult(
        system="hearth",
        schedules=count,
        seconds=seconds,
        expected=expected,
        fired=fired,
        skipped=skipped,
        missed=missed,
        not_run=expected - fired - skipped - missed,
        completed=completed,
        lateness={
            "step started": _distribution(step),
            "execution created": _distribution(created),
            "recorded fired_at": _distribution(recorded),
        },
        cpu_s=cpu,
        rss_peak_mb=peak / MB,
        extra={"run_statuses": statuses},
    )


async def fire_apscheduler(workdir: Path, count: int, seconds: int, warmup: int) -> FireResult:
    """`count` IntervalTrigger(seconds=1) jobs in an AsyncIOScheduler child, same window."""
    out = workdir / "aps-fire.json"
    anchor = math.ceil(time.time()) + APS_LEAD_S
    window_start = anchor + warmup
    window_end = window_start + seconds
    until = window_end + DRAIN_S
    args = common.script(
        __file__,
        "--aps-fire",
        str(count),
        "--aps-anchor",
        str(anchor),
        "--aps-until",
        str(until),
        "--aps-file",
        str(out),
    )
    with common.stopping(STOP_TIMEOUT_S) as started:
        child = common.spawn("apscheduler-fire", args, workdir, started)
        with RssSampler(child) as sampler:
            await _sleep_until(window_start, child)
            cpu_start = child.cpu_seconds()
            await _sleep_until(window_end, child)
            cpu = child.cpu_seconds() - cpu_start
            peak = sampler.high_water()
            returncode = await asyncio.to_thread(child.process.wait, DRAIN_S + STOP_TIMEOUT_S)
            if returncode != 0 or not out.exists():
                raise RuntimeError(f"{child.name} exited with {returncode}:\n{child.log_tail()}")
    data = json.loads(out.read_text(encoding="utf-8"))

    def inside(tick: float) -> bool:
        return window_start <= tick < window_end

    lateness = [called - tick for tick, called in data["executed"] if inside(tick)]
    fired = len(lateness)
    missed = sum(1 for tick in data["missed"] if inside(tick))
    skipped = sum(1 for tick in data["overlapped"] if inside(tick))
    errors = sum(1 for tick in data["errors"] if inside(tick))
    expected = count * seconds
    return FireResult(
        system="apscheduler",
        schedules=count,
        seconds=seconds,
        expected=expected,
        fired=fired + errors,
        skipped=skipped,
        missed=missed,
        not_run=expected - fired - errors - skipped - missed,
        completed=fired,
        lateness={"job called": _distribution(lateness)},
        cpu_s=cpu,
        rss_peak_mb=peak / MB,
    )


# --------------------------------------------------------------------------- report


def _version(name: str) -> str:
    return common.package_version(name) or "not installed"


def summarize(
    hold: list[HoldResult], fire: list[FireResult], args: argparse.Namespace
) -> dict[str, Any]:
    """The figures, the ratios and the targets of the issue, as data (printed as text or JSON)."""
    targets: dict[str, Any] = {}
    ratios: dict[str, float] = {}
    hearth_hold = next((r for r in hold if r.system == "hearth" and r.schedules > 0), None)
    empty = next((r for r in hold if r.system == "hearth" and r.schedules == 0), None)
    aps_hold = next((r for r in hold if r.system == "apscheduler"), None)
    if hearth_hold is not None:
        targets["ready_s"] = {
            "target": TARGET_READY_S,
            "value": hearth_hold.ready_s,
            "met": hearth_hold.ready_s <= TARGET_READY_S,
        }
    if hearth_hold is not None and aps_hold is not None:
        ratios["ready_hearth_over_apscheduler"] = hearth_hold.ready_s / aps_hold.ready_s
        ratios["rss_peak_hearth_over_apscheduler"] = hearth_hold.rss_peak_mb / aps_hold.rss_peak_mb
        targets["rss_peak_fraction"] = {
            "target": TARGET_RSS_FRACTION,
            "value": ratios["rss_peak_hearth_over_apscheduler"],
            "met": ratios["rss_peak_hearth_over_apscheduler"] <= TARGET_RSS_FRACTION,
        }
        if empty is not None:
            hearth_growth = hearth_hold.rss_peak_mb - empty.rss_peak_mb
            aps_growth = aps_hold.extra["rss_after_add_mb"] - aps_hold.extra["rss_before_add_mb"]
            ratios["rss_growth_hearth_mb"] = hearth_growth
            ratios["rss_growth_apscheduler_mb"] = aps_growth
    hearth_fire = next((r for r in fire if r.system == "hearth"), None)
    aps_fire = next((r for r in fire if r.system == "apscheduler"), None)
    if hearth_fire is not None:
        p99 = float(hearth_fire.lateness["step started"]["p99_ms"])
        durable = hearth_fire.not_run == 0 and hearth_fire.missed == 0
        targets["lateness_p99_ms"] = {
            "target": TARGET_P99_MS,
            "value": p99,
            "every_tick_recorded": durable,
            "met": p99 <= TARGET_P99_MS and durable,
        }
    if hearth_fire is not None and aps_fire is not None:
        ratios["cpu_hearth_over_apscheduler"] = hearth_fire.cpu_s / max(aps_fire.cpu_s, 1e-9)
    return {
        "benchmark": "scheduler",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine(
            apscheduler=_version("apscheduler"),
            sqlalchemy=_version("sqlalchemy"),
            aiosqlite=_version("aiosqlite"),
        ),
        "args": {
            "schedules": args.schedules,
            "fire_schedules": args.fire_schedules,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "settle": args.settle,
        },
        "hold": [asdict(r) for r in hold],
        "fire": [
            {**asdict(r), "cpu_pct": r.cpu_pct, "cpu_us_per_tick": r.cpu_us_per_tick} for r in fire
        ],
        "ratios": ratios,
        "targets": targets,
    }


def print_text(summary: dict[str, Any]) -> None:
    machine = summary["machine"]
    print(
        "Scheduler benchmark: "
        + common.machine_line(machine, ("APScheduler", "apscheduler"), ("SQLAlchemy", "sqlalchemy"))
    )
    if summary["hold"]:
        print()
        print("1. Holding schedules: spawn -> ready, memory (MB)")
        print(
            f"{'system':<12} {'schedules':>9} {'ready s':>8} {'RSS@ready':>9} {'RSS end':>8} "
            f"{'peak RSS':>8} {'CPU s':>6}  notes"
        )
        for r in summary["hold"]:
            extra = r["extra"]
            if r["system"] == "apscheduler":
                note = (
                    f"add {extra['add_s']:.1f} s, RSS {extra['rss_before_add_mb']:.0f} -> "
                    f"{extra['rss_after_add_mb']:.0f} MB while adding"
                )
            else:
                note = f"rows written in {extra['prepare_s']:.1f} s before spawn"
            print(
                f"{r['system']:<12} {r['schedules']:>9} {r['ready_s']:>8.2f} "
                f"{r['rss_ready_mb']:>9.0f} {r['rss_end_mb']:>8.0f} {r['rss_peak_mb']:>8.0f} "
                f"{r['cpu_s']:>6.1f}  {note}"
            )
        ratios = summary["ratios"]
        if "ready_hearth_over_apscheduler" in ratios:
            print(
                f"ratio hearth/apscheduler: ready {ratios['ready_hearth_over_apscheduler']:.3f}x, "
                f"peak RSS {ratios['rss_peak_hearth_over_apscheduler']:.3f}x"
            )
        if "rss_growth_hearth_mb" in ratios:
            print(
                f"memory for the schedules themselves: hearth +{ratios['rss_growth_hearth_mb']:.0f}"
                f" MB (peak vs an empty gateway), apscheduler "
                f"+{ratios['rss_growth_apscheduler_mb']:.0f} MB (while adding)"
            )
    if summary["fire"]:
        print()
        first = summary["fire"][0]
        print(
            f"2. Firing: {first['schedules']} schedules every 1 s, {first['seconds']} s window "
            "(lateness = actual start - scheduled tick)"
        )
        print(f"{'system':<12} {'measure':<18} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for r in summary["fire"]:
            for measure, dist in r["lateness"].items():
                print(
                    f"{r['system']:<12} {measure:<18} {dist['n']:>6} {dist['p50_ms']:>8.1f} "
                    f"{dist['p99_ms']:>8.1f} {dist['max_ms']:>8.1f}"
                )
        print(
            f"{'system':<12} {'expected':>8} {'fired':>6} {'skipped':>7} {'missed':>6} "
            f"{'not run':>7} {'done':>6} {'CPU s':>6} {'CPU %':>6} {'us/tick':>8} {'peak RSS':>8}"
        )
        for r in summary["fire"]:
            print(
                f"{r['system']:<12} {r['expected']:>8} {r['fired']:>6} {r['skipped']:>7} "
                f"{r['missed']:>6} {r['not_run']:>7} {r['completed']:>6} {r['cpu_s']:>6.1f} "
                f"{r['cpu_pct']:>5.0f}% {r['cpu_us_per_tick']:>8.0f} {r['rss_peak_mb']:>8.0f}"
            )
            if r["extra"].get("run_statuses"):
                print(f"{'':<12} schedule_runs statuses: {r['extra']['run_statuses']}")
    targets = summary["targets"]
    print()
    if "ready_s" in targets:
        t = targets["ready_s"]
        print(
            f"target: gateway ready <= {t['target']:.0f} s with the schedules stored: "
            f"{t['value']:.2f} s -> {common.verdict(t['met'])}"
        )
    if "rss_peak_fraction" in targets:
        t = targets["rss_peak_fraction"]
        print(
            f"target: gateway peak RSS <= 1/3 of APScheduler's: {t['value']:.3f}x -> "
            f"{common.verdict(t['met'])}"
        )
    if "lateness_p99_ms" in targets:
        t = targets["lateness_p99_ms"]
        print(
            f"target: lateness p99 <= {t['target']:.0f} ms (step started), every tick run and "
            f"recorded: {t['value']:.1f} ms, every tick recorded: {t['every_tick_recorded']} -> "
            f"{common.verdict(t['met'])}"
        )


# --------------------------------------------------------------------------- entry point


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The scenarios in order; a baseline next to each Hearth figure, so both see the same noise."""
    hold: list[HoldResult] = []
    fire: list[FireResult] = []
    if args.scenario in ("hold", "both"):
        print("  hold: empty gateway ...", file=sys.stderr, flush=True)
        hold.append(await hold_hearth(workdir, 0, args.settle))
        print(f"  hold: gateway with {args.schedules} schedules ...", file=sys.stderr, flush=True)
        hold.append(await hold_hearth(workdir, args.schedules, args.settle))
        print(f"  hold: APScheduler with {args.schedules} jobs ...", file=sys.stderr, flush=True)
        hold.append(await hold_apscheduler(workdir, args.schedules, args.settle))
    if args.scenario in ("fire", "both"):
        print(f"  fire: APScheduler, {args.seconds} s ...", file=sys.stderr, flush=True)
        fire.append(await fire_apscheduler(workdir, args.fire_schedules, args.seconds, args.warmup))
        print(f"  fire: gateway, {args.seconds} s ...", file=sys.stderr, flush=True)
        fire.append(
            await fire_hearth(workdir, args.fire_schedules, args.seconds, args.warmup, args.profile)
        )
    return summarize(hold, fire, args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=("hold", "fire", "both"), default="both")
    parser.add_argument(
        "--schedules", type=int, default=DEFAULT_SCHEDULES, help="scenario 1 (default 100 000)"
    )
    parser.add_argument(
        "--fire-schedules",
        type=int,
        default=DEFAULT_FIRE_SCHEDULES,
        help="scenario 2 (default 1 000)",
    )
    parser.add_argument(
        "--seconds", type=int, default=DEFAULT_SECONDS, help="scenario 2 window (default 30)"
    )
    parser.add_argument(
        "--warmup", type=int, default=DEFAULT_WARMUP, help="scenario 2 unmeasured ticks (2)"
    )
    parser.add_argument(
        "--settle", type=float, default=DEFAULT_SETTLE, help="scenario 1 RSS after ready (5 s)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="scenario 2: run the gateway under cProfile and write its statistics to this file",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    # The APScheduler children run this same file with these:
    parser.add_argument("--aps-hold", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--aps-fire", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--aps-anchor", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--aps-until", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--aps-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0 or args.schedules <= 0 or args.fire_schedules <= 0:
        parser.error("--seconds, --schedules and --fire-schedules must be > 0, --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.aps_hold is not None:
        asyncio.run(_aps_hold(args.aps_hold, args.aps_file))
        return 0
    if args.aps_fire is not None:
        asyncio.run(_aps_fire(args.aps_fire, args.aps_anchor, args.aps_until, args.aps_file))
        return 0
    signal.signal(signal.SIGTERM, common.exit_on_sigterm)
    workdir = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    try:
        summary = asyncio.run(run(args, workdir))
    finally:
        if args.keep:
            print(f"  kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    common.emit(summary, args.json, print_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
