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

Also (issue 15): scenario 1 at several counts (`--schedules 10000 100000`, `--million` adds
1 000 000) against APScheduler restarted on its persisted `SQLAlchemyJobStore` (SQLite) as well
as in memory; scenario 2 on PostgreSQL (`--backend postgres`, a fresh database on the server of
`--database-url`, dropped afterwards) with `--nodes N` gateways sharing it (each tick once is
checked), and `--clients N` WebSocket clients reading every event while firing
(`--client-topics all`: each subscribes to every `schedule.run`), reporting clients closed and
the ping p99 of a connected client. The fire verdict needs every fired tick completed and
recorded `ok`.

Run: `.venv/bin/python bench/scheduler.py [--scenario hold|fire|both] [--schedules N ...]
[--million] [--seconds N] [--fire-schedules N] [--backend sqlite|postgres] [--nodes N]
[--clients N] [--client-topics default|all] [--profile FILE] [--json]` (APScheduler is in the
bench extra: `.venv/bin/pip install -e '.[bench]'`).
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
DEFAULT_SCHEDULES = 100_000  # scenario 1: the count the targets are judged at
DEFAULT_HOLD_COUNTS = [10_000, 100_000]  # scenario 1 (1 000 000 with --million)
#: APScheduler in memory has to add every job again at start-up (about 30 s for 100 000).
MEMORY_HOLD_MAX = 100_000
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
TARGET_PING_P99_MS = 20.0  # ping round trip from a connected client while firing
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


APS_TABLE = "apscheduler_jobs"


def aps_prepare_store(jobs: int, path: Path) -> float:
    """Write `jobs` cron jobs into a SQLAlchemyJobStore on SQLite, as APScheduler stores them.

    Rows are written directly (the pickled job state the store itself writes, one state per
    distinct expression with its own id), because adding a million jobs one by one through
    `add_job` would take far longer than the measurement; a restart reads them the same way.
    Returns seconds taken.
    """
    import pickle

    from apscheduler.job import Job  # type: ignore[import-untyped, unused-ignore]
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped, unused-ignore]
    from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped, unused-ignore]
    from apscheduler.triggers.cron import CronTrigger  # type: ignore[import-untyped, unused-ignore]

    begun = time.perf_counter()
    scheduler = AsyncIOScheduler(timezone=UTC)
    store = SQLAlchemyJobStore(url=f"sqlite:///{path}", tablename=APS_TABLE)
    store.start(scheduler, "default")
    now = datetime.now(UTC)
    states: dict[str, tuple[dict[str, Any], float]] = {}
    with store.engine.begin() as conn:
        chunk: list[dict[str, Any]] = []
        for index in range(jobs):
            expression = cron_for(index)
            if expression not in states:
                trigger = CronTrigger.from_crontab(expression, timezone=UTC)
                first = trigger.get_next_fire_time(None, now)
                job = Job(
                    scheduler,
                    id="template",
                    func=_aps_call_time,
                    trigger=trigger,
                    executor="default",
                    args=(),
                    kwargs={},
                    name="job",
                    misfire_grace_time=1,
                    coalesce=True,
                    max_instances=1,
                    next_run_time=first,
                )
                states[expression] = (job.__getstate__(), first.timestamp())
            state, at = states[expression]
            job_id = f"s{index}"
            chunk.append(
                {
                    "id": job_id,
                    "next_run_time": at,
                    "job_state": pickle.dumps({**state, "id": job_id}, store.pickle_protocol),
                }
            )
            if len(chunk) >= INSERT_CHUNK:
                conn.execute(store.jobs_t.insert(), chunk)
                chunk = []
        if chunk:
            conn.execute(store.jobs_t.insert(), chunk)
    store.shutdown()
    return time.perf_counter() - begun


async def _aps_restart(path: Path, ready_file: Path) -> None:
    """Start an AsyncIOScheduler on an existing SQLAlchemyJobStore; ready once it runs."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore  # type: ignore[import-untyped, unused-ignore]
    from apscheduler.schedulers.asyncio import AsyncIOScheduler  # type: ignore[import-untyped, unused-ignore]

    stopped = common.stop_signal()
    store = SQLAlchemyJobStore(url=f"sqlite:///{path}", tablename=APS_TABLE)
    scheduler = AsyncIOScheduler(timezone=UTC, jobstores={"default": store})
    scheduler.start()
    await asyncio.sleep(0)  # its first wake-up: due jobs looked up, the next wake-up planned
    common.write_json_atomic(ready_file, {"rss": _own_rss()})
    await stopped
    scheduler.shutdown(wait=False)


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


def _asyncpg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.asynccontextmanager
async def fresh_postgres(base: str) -> Any:
    """A new database `hearth_bench_<random>` on the server of `base`, dropped afterwards."""
    import asyncpg  # type: ignore[import-untyped, unused-ignore]
    from sqlalchemy.engine import make_url

    name = f"hearth_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_asyncpg_dsn(base))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(base))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def write_workflow(data_dir: Path) -> None:
    (data_dir / "workflows").mkdir(parents=True, exist_ok=True)
    (data_dir / "workflows" / f"{WORKFLOW_ID}.yaml").write_text(WORKFLOW_YAML, encoding="utf-8")


async def prepare_data_dir(
    data_dir: Path, rows: list[dict[str, Any]], url: str | None = None
) -> float:
    """Migrate a fresh database, add the no-op workflow and the rows; returns seconds taken."""
    from hearth.store import Database
    from hearth.store.tables import schedules

    begun = time.perf_counter()
    write_workflow(data_dir)
    db = Database.from_url(url or _sqlite_url(data_dir))
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
    ready_file = workdir / f"aps-hold-{count}.json"  # one per count: never a stale one
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


async def hold_apscheduler_persisted(workdir: Path, count: int, settle: float) -> HoldResult:
    """APScheduler restarted on a SQLAlchemyJobStore (SQLite) already holding `count` jobs."""
    path = workdir / f"aps-jobs-{count}.sqlite"
    ready_file = workdir / f"aps-restart-{count}.json"
    prepare_s = await asyncio.to_thread(aps_prepare_store, count, path)
    with common.stopping(STOP_TIMEOUT_S) as started:
        args = common.script(
            __file__, "--aps-restart", "--aps-db", str(path), "--aps-file", str(ready_file)
        )
        child = common.spawn(f"apscheduler-restart-{count}", args, workdir, started)
        result = await _hold(
            child,
            lambda: wait_file(child, ready_file, START_TIMEOUT_S),
            settle,
            "apscheduler+sqlite",
            count,
        )
    result.extra = {"prepare_s": prepare_s}
    path.unlink(missing_ok=True)
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


@dataclass
class FireSetup:
    """Where and how the gateways under test run (scenario 2)."""

    database_url: str | None = None  # None: a SQLite file in the first node's data directory
    nodes: int = 1
    clients: int = 0
    client_topics: str = "default"  # or "all": each client subscribes to every schedule.run
    profile: Path | None = None


class EventClient:
    """One WebSocket client connected while the schedules fire, reading every frame.

    With topics `all` it first subscribes to `schedule.run` (per the subscribe protocol; a
    gateway that does not know the message answers with an error, and then sends everything
    anyway). It counts the events it read and whether the gateway closed it; `ping` measures a
    round trip on the same connection, between the events.
    """

    def __init__(self, data_dir: Path, topics: str) -> None:
        self.data_dir = data_dir
        self.topics = topics
        self.events = 0
        self.closed: str | None = None  # why the gateway closed it before the end
        self.subscribe_reply: str | None = None
        self._ws: Any = None
        self._waiting: dict[str, asyncio.Future[float]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        endpoint = common.gateway_endpoint(self.data_dir)
        self._ws = await connect(endpoint.url, proxy=None, max_size=None)
        await common.say_hello(self._ws, endpoint.token, PING_TIMEOUT_S)
        if self.topics == "all":
            await self._ws.send(
                json.dumps({"type": "subscribe", "id": "sub", "topics": ["schedule.run"]})
            )
            async with asyncio.timeout(PING_TIMEOUT_S):
                while True:
                    reply = json.loads(await self._ws.recv())
                    if reply.get("id") == "sub":
                        # An error reply: the gateway has no subscriptions yet and sends
                        # every event to everyone, which is what `all` asks for anyway.
                        self.subscribe_reply = str(reply.get("type"))
                        break
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for frame in self._ws:
                message = json.loads(frame)
                waiting = self._waiting.pop(str(message.get("id")), None)
                if waiting is not None:
                    waiting.set_result(time.perf_counter())
                elif "id" not in message:
                    self.events += 1
        except ConnectionClosed as exc:
            self.closed = (
                f"{exc.rcvd.code if exc.rcvd else '?'} {exc.rcvd.reason if exc.rcvd else ''}"
            )
        else:
            self.closed = "closed"

    async def ping(self, number: int) -> float | None:
        """One `ping` round trip in seconds, None if it timed out or the socket is gone."""
        if self.closed is not None:
            return None
        key = f"p{number}"
        answered: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting[key] = answered
        sent = time.perf_counter()
        try:
            await self._ws.send(json.dumps({"type": "ping", "id": key}))
            async with asyncio.timeout(PING_TIMEOUT_S):
                return (await answered) - sent
        except Exception:
            self._waiting.pop(key, None)
            return None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()


async def _ping_loop(client: EventClient, until: float, out: list[float]) -> None:
    """A ping every 100 ms from `client` until wall-clock `until`."""
    number = 0
    while time.time() < until:
        number += 1
        took = await client.ping(number)
        if took is not None:
            out.append(took)
        await asyncio.sleep(0.1)


async def fire_hearth(
    workdir: Path, count: int, seconds: int, warmup: int, setup: FireSetup
) -> FireResult:
    """`count` every-1s schedules in real gateways (`setup.nodes` of them sharing PostgreSQL,
    or one on SQLite); lateness read from the database afterwards.

    With `setup.profile`, the (first) gateway runs under cProfile, which writes its statistics
    there on exit.
    """
    data_dirs = [workdir / f"fire-hearth-{n}" for n in range(setup.nodes)]
    now = datetime.now(UTC)
    anchor = math.ceil(now.timestamp()) + HEARTH_LEAD_S
    rows = every_rows(count, datetime.fromtimestamp(anchor, UTC), now)
    await prepare_data_dir(data_dirs[0], rows, setup.database_url)
    for data_dir in data_dirs[1:]:
        write_workflow(data_dir)
    env = None
    if setup.database_url is not None:
        env = {**os.environ, "HEARTH_DATABASE_URL": setup.database_url}
    clients: list[EventClient] = []
    pings: list[float] = []
    with common.stopping(STOP_TIMEOUT_S) as started:
        children = []
        for number, data_dir in enumerate(data_dirs):
            args = common.gateway_args(data_dir)
            if setup.profile is not None and number == 0:
                args = ["-m", "cProfile", "-o", str(setup.profile.resolve()), *args]
            children.append(common.spawn(f"gateway-fire-{number}", args, workdir, started, env=env))
        with RssSampler(children[0]) as sampler:
            for child, data_dir in zip(children, data_dirs, strict=True):
                await wait_gateway_ready(child, data_dir, START_TIMEOUT_S)
            for number in range(setup.clients):
                client = EventClient(data_dirs[number % setup.nodes], setup.client_topics)
                await client.start()
                clients.append(client)
            # On a busy machine the gateway may come up after the first tick: it then catches
            # up once (one run per schedule, the rest recorded as missed), and the window starts
            # `warmup` ticks after it was ready instead, so that burst is not measured.
            window_start = max(anchor, math.ceil(time.time())) + warmup
            window_end = window_start + seconds
            await _sleep_until(window_start, children[0])
            cpu_start = sum(child.cpu_seconds() for child in children)
            pinger = None
            if clients:
                pinger = asyncio.create_task(_ping_loop(clients[0], window_end, pings))
            await _sleep_until(window_end, children[0])
            cpu = sum(child.cpu_seconds() for child in children) - cpu_start
            if pinger is not None:
                await pinger
            await _sleep_until(window_end + DRAIN_S, children[0])
            peak = sampler.high_water()
            for client in clients:
                await client.stop()
    url = setup.database_url or _sqlite_url(data_dirs[0])
    result = await _read_hearth_runs(url, count, seconds, window_start, window_end, cpu, peak)
    result.extra["nodes"] = setup.nodes
    if clients:
        result.extra["clients"] = {
            "count": len(clients),
            "topics": setup.client_topics,
            "subscribe_reply": clients[0].subscribe_reply,
            "closed": sum(1 for c in clients if c.closed is not None),
            "closed_why": sorted({c.closed for c in clients if c.closed is not None}),
            "events_read": [c.events for c in clients],
            "ping": _distribution(pings),
        }
    return result


async def _read_hearth_runs(
    url: str,
    count: int,
    seconds: int,
    window_start: float,
    window_end: float,
    cpu: float,
    peak: int,
) -> FireResult:
    """Every tick of the window as the durable tables recorded it (the gateways have stopped)."""
    import sqlalchemy as sa

    from hearth.store import Database
    from hearth.store.tables import schedule_runs, step_runs, workflow_executions

    rc, ec, sc = schedule_runs.c, workflow_executions.c, step_runs.c
    start_at = datetime.fromtimestamp(window_start, UTC)
    end_at = datetime.fromtimestamp(window_end, UTC)
    query = (
        sa.select(
            rc.scheduled_for,
            rc.status,
            rc.missed_count,
            ec.status,
            sc.started_at,
        )
        .select_from(schedule_runs)
        .outerjoin(workflow_executions, ec.id == rc.execution_id)
        .outerjoin(step_runs, sa.and_(sc.execution_id == rc.execution_id, sc.seq == 1))
        .where(rc.scheduled_for < end_at)
    )
    # Each tick once: executions started for the window's ticks (a finished execution has no
    # owner any more, so which node started it is not on record).
    started = sa.select(sa.func.count()).where(
        ec.triggered_by == "cron", ec.scheduled_for >= start_at, ec.scheduled_for < end_at
    )
    db = Database.from_url(url)
    try:
        async with db.connect() as conn:
            rows = (await conn.execute(query)).all()
            executions = int((await conn.execute(started)).scalar() or 0)
    finally:
        await db.dispose()
    step: list[float] = []
    fired = skipped = missed = completed = ok = 0
    for tick, status, missed_count, exec_status, step_started in rows:
        if status == "missed":
            # One row stands for `missed_count` consecutive ticks (1 s apart here) from
            # `scheduled_for` on; count those inside the window.
            first = tick.timestamp()
            low = max(0, math.ceil(window_start - first))
            high = min(missed_count or 1, math.ceil(window_end - first))
            missed += max(0, high - low)
            continue
        if tick.timestamp() < window_start:
            continue
        if status == "skipped":
            skipped += 1
            continue
        fired += 1
        ok += status == "ok"
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
        lateness={"step started": _distribution(step)},
        cpu_s=cpu,
        rss_peak_mb=peak / MB,
        extra={
            "recorded_ok": ok,
            "executions": executions,
        },
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
    ratios: dict[str, Any] = {}
    empty = next((r for r in hold if r.system == "hearth" and r.schedules == 0), None)
    held: dict[str, dict[str, float]] = {}
    for hearth_hold in (r for r in hold if r.system == "hearth" and r.schedules > 0):
        count = hearth_hold.schedules
        same = {r.system: r for r in hold if r.schedules == count}
        row: dict[str, float] = {}
        for system, label in (("apscheduler+sqlite", "sqlite"), ("apscheduler", "memory")):
            other = same.get(system)
            if other is not None:
                row[f"ready_over_aps_{label}"] = hearth_hold.ready_s / other.ready_s
                row[f"rss_peak_over_aps_{label}"] = hearth_hold.rss_peak_mb / other.rss_peak_mb
        if empty is not None:
            row["rss_growth_hearth_mb"] = hearth_hold.rss_peak_mb - empty.rss_peak_mb
        held[str(count)] = row
        if count == DEFAULT_SCHEDULES:
            targets["ready_s"] = {
                "target": TARGET_READY_S,
                "value": hearth_hold.ready_s,
                "met": hearth_hold.ready_s <= TARGET_READY_S,
            }
            if "rss_peak_over_aps_memory" in row:
                targets["rss_peak_fraction"] = {
                    "target": TARGET_RSS_FRACTION,
                    "value": row["rss_peak_over_aps_memory"],
                    "met": row["rss_peak_over_aps_memory"] <= TARGET_RSS_FRACTION,
                }
    if held:
        ratios["hold"] = held
    hearth_fire = next((r for r in fire if r.system == "hearth"), None)
    aps_fire = next((r for r in fire if r.system == "apscheduler"), None)
    if hearth_fire is not None:
        p99 = float(hearth_fire.lateness["step started"]["p99_ms"])
        extra = hearth_fire.extra
        durable = (
            hearth_fire.not_run == 0
            and hearth_fire.missed == 0
            and hearth_fire.completed == hearth_fire.fired
            and extra["recorded_ok"] == hearth_fire.fired
        )
        once = extra["executions"] == hearth_fire.fired
        targets["lateness_p99_ms"] = {
            "target": TARGET_P99_MS,
            "value": p99,
            "every_tick_completed_ok": durable,
            "each_tick_once": once,
            "met": p99 <= TARGET_P99_MS and durable and once,
        }
        clients = extra.get("clients")
        if clients:
            ping = float(clients["ping"]["p99_ms"])
            targets["clients"] = {
                "closed": clients["closed"],
                "ping_p99_ms": ping,
                "ping_target_ms": TARGET_PING_P99_MS,
                "met": clients["closed"] == 0 and ping <= TARGET_PING_P99_MS,
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
            "backend": args.backend,
            "nodes": args.nodes,
            "clients": args.clients,
            "client_topics": args.client_topics,
            "hold_counts": args.hold_counts + ([1_000_000] if args.million else []),
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
            f"{'system':<19} {'schedules':>9} {'ready s':>8} {'RSS@ready':>9} {'RSS end':>8} "
            f"{'peak RSS':>8} {'CPU s':>6}  notes"
        )
        for r in summary["hold"]:
            extra = r["extra"]
            if r["system"] == "apscheduler":
                note = f"in memory: add_job x{r['schedules']} took {extra['add_s']:.1f} s"
            elif r["system"] == "apscheduler+sqlite":
                note = f"restart on its job store (rows written in {extra['prepare_s']:.1f} s)"
            else:
                note = f"rows written in {extra['prepare_s']:.1f} s before spawn"
            print(
                f"{r['system']:<19} {r['schedules']:>9} {r['ready_s']:>8.2f} "
                f"{r['rss_ready_mb']:>9.0f} {r['rss_end_mb']:>8.0f} {r['rss_peak_mb']:>8.0f} "
                f"{r['cpu_s']:>6.1f}  {note}"
            )
        for count, row in summary["ratios"].get("hold", {}).items():
            parts = []
            for label in ("sqlite", "memory"):
                if f"ready_over_aps_{label}" in row:
                    parts.append(
                        f"vs APScheduler ({label}) ready {row[f'ready_over_aps_{label}']:.2f}x, "
                        f"peak RSS {row[f'rss_peak_over_aps_{label}']:.2f}x"
                    )
            if "rss_growth_hearth_mb" in row:
                parts.append(f"hearth +{row['rss_growth_hearth_mb']:.0f} MB over an empty gateway")
            print(f"ratio hearth/apscheduler at {count}: " + "; ".join(parts))
    if summary["fire"]:
        print()
        first = summary["fire"][0]
        hearth = next((r for r in summary["fire"] if r["system"] == "hearth"), None)
        where = ""
        if hearth is not None:
            nodes = hearth["extra"]["nodes"]
            where = f", Hearth on {summary['args']['backend']} with {nodes} node(s)"
        print(
            f"2. Firing: {first['schedules']} schedules every 1 s, {first['seconds']} s window"
            f"{where} (lateness = first step started - scheduled tick)"
        )
        print(
            f"{'system':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'fired':>6} "
            f"{'unrun':>5} {'done':>6} {'CPU s':>6} {'CPU %':>6} {'us/tick':>8} {'peak RSS':>8}"
        )
        print(
            "  unrun: ticks of the window not fired by the end, whether skipped, missed (a "
            "misfire), or still queued when the run stopped (durable: a later start handles them)"
        )
        for r in summary["fire"]:
            (dist,) = r["lateness"].values()
            unrun = r["not_run"] + r["missed"] + r["skipped"]
            print(
                f"{r['system']:<12} {dist['p50_ms']:>8.1f} {dist['p99_ms']:>8.1f} "
                f"{dist['max_ms']:>8.1f} {r['fired']:>6} {unrun:>5} {r['completed']:>6} "
                f"{r['cpu_s']:>6.1f} {r['cpu_pct']:>5.0f}% {r['cpu_us_per_tick']:>8.0f} "
                f"{r['rss_peak_mb']:>8.0f}"
            )
        if hearth is not None:
            extra = hearth["extra"]
            print(
                f"executions started for the window's ticks: {extra['executions']} "
                f"(fired ticks: {hearth['fired']})"
            )
            clients = extra.get("clients")
            if clients:
                reads = ", ".join(str(n) for n in clients["events_read"])
                print(
                    f"{clients['count']} clients ({clients['topics']} topics"
                    + (
                        f", subscribe answered {clients['subscribe_reply']}"
                        if clients["subscribe_reply"]
                        else ""
                    )
                    + f"): closed {clients['closed']} {clients['closed_why'] or ''}, "
                    f"events read {reads}; ping n={clients['ping']['n']} p50 "
                    f"{clients['ping']['p50_ms']:.1f} ms, p99 {clients['ping']['p99_ms']:.1f} ms"
                )
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
            f"target: lateness p99 <= {t['target']:.0f} ms, every fired tick completed and "
            f"recorded ok, each tick once: {t['value']:.1f} ms, completed ok: "
            f"{t['every_tick_completed_ok']}, once: {t['each_tick_once']} -> "
            f"{common.verdict(t['met'])}"
        )
    if "clients" in targets:
        t = targets["clients"]
        print(
            f"target: no client closed, ping p99 <= {t['ping_target_ms']:.0f} ms: closed "
            f"{t['closed']}, ping p99 {t['ping_p99_ms']:.1f} ms -> {common.verdict(t['met'])}"
        )


# --------------------------------------------------------------------------- entry point


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The scenarios in order; a baseline next to each Hearth figure, so both see the same noise."""
    hold: list[HoldResult] = []
    fire: list[FireResult] = []
    if args.scenario in ("hold", "both"):
        print("  hold: empty gateway ...", file=sys.stderr, flush=True)
        hold.append(await hold_hearth(workdir, 0, args.settle))
        counts = args.hold_counts + ([1_000_000] if args.million else [])
        for count in counts:
            print(f"  hold: gateway with {count} schedules ...", file=sys.stderr, flush=True)
            hold.append(await hold_hearth(workdir, count, args.settle))
            print(f"  hold: APScheduler+SQLite, {count} jobs ...", file=sys.stderr, flush=True)
            hold.append(await hold_apscheduler_persisted(workdir, count, args.settle))
            if count <= MEMORY_HOLD_MAX:
                print(f"  hold: APScheduler in memory, {count} jobs ...", file=sys.stderr)
                hold.append(await hold_apscheduler(workdir, count, args.settle))
    if args.scenario in ("fire", "both"):
        print(f"  fire: APScheduler, {args.seconds} s ...", file=sys.stderr, flush=True)
        fire.append(await fire_apscheduler(workdir, args.fire_schedules, args.seconds, args.warmup))
        print(f"  fire: gateway, {args.seconds} s ...", file=sys.stderr, flush=True)
        setup = FireSetup(
            database_url=None,
            nodes=args.nodes,
            clients=args.clients,
            client_topics=args.client_topics,
            profile=args.profile,
        )
        if args.backend == "postgres":
            async with fresh_postgres(args.database_url) as url:
                setup.database_url = url
                fire.append(
                    await fire_hearth(
                        workdir, args.fire_schedules, args.seconds, args.warmup, setup
                    )
                )
        else:
            fire.append(
                await fire_hearth(workdir, args.fire_schedules, args.seconds, args.warmup, setup)
            )
    return summarize(hold, fire, args)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=("hold", "fire", "both"), default="both")
    parser.add_argument(
        "--schedules",
        dest="hold_counts",
        type=int,
        nargs="+",
        default=DEFAULT_HOLD_COUNTS,
        help="scenario 1: schedule counts (default 10 000 and 100 000)",
    )
    parser.add_argument(
        "--million",
        action="store_true",
        help="scenario 1: also 1 000 000 schedules (opt-in: writing and starting take minutes)",
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
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="scenario 2: the gateways' database (postgres: a fresh database on the server of "
        "--database-url, dropped afterwards)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HEARTH_BENCH_DATABASE_URL")
        or os.environ.get("HEARTH_TEST_DATABASE_URL")
        or "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        help="scenario 2 with --backend postgres: any database on the server to use",
    )
    parser.add_argument(
        "--nodes", type=int, default=1, help="scenario 2: gateways sharing PostgreSQL (1)"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=0,
        help="scenario 2: WebSocket clients connected while firing, reading every event (0)",
    )
    parser.add_argument(
        "--client-topics",
        choices=("default", "all"),
        default="default",
        help="scenario 2: default subscriptions, or `all`: each client subscribes to every "
        "schedule.run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    # The APScheduler children run this same file with these:
    parser.add_argument("--aps-hold", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--aps-fire", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--aps-anchor", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--aps-until", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--aps-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--aps-restart", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--aps-db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (
        args.seconds <= 0
        or args.warmup < 0
        or min(args.hold_counts) <= 0
        or args.fire_schedules <= 0
    ):
        parser.error("--seconds, --schedules and --fire-schedules must be > 0, --warmup >= 0")
    if args.nodes < 1 or args.clients < 0:
        parser.error("--nodes must be >= 1 and --clients >= 0")
    if args.nodes > 1 and args.backend != "postgres":
        parser.error("--nodes > 1 needs --backend postgres (a SQLite file has one gateway)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.aps_hold is not None:
        asyncio.run(_aps_hold(args.aps_hold, args.aps_file))
        return 0
    if args.aps_restart:
        asyncio.run(_aps_restart(args.aps_db, args.aps_file))
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
