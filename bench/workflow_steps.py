"""Durable workflow steps per second: Hearth's engine vs raw commits vs DBOS Transact.

Why this shape:

- Every workflow step Hearth runs is one committed write (a `step_runs` journal row, plus the
  execution row on PostgreSQL), so the ceiling for durable steps/s is how fast the database
  commits journal rows at all. That ceiling is measured in the same run on a fresh database:
  with stdlib `sqlite3` and the same PRAGMAs (WAL, the same `synchronous`), or with asyncpg on
  the same PostgreSQL server. It runs at the *same concurrency and grouping* as Hearth's row:
  one row per commit for 1 in flight, 8 rows per commit for 8 in flight (what Hearth's group
  commit does with 8 runners ready together). The ratio Hearth/raw says how much of that
  like-for-like ceiling the workflow engine keeps.
- DBOS Transact is the closest comparable library (durable workflows whose steps are checkpointed
  in a SQLite or PostgreSQL database), so it runs the same shape in the same run: a
  `@DBOS.workflow()` calling 10 `@DBOS.step()` functions that do nothing. On SQLite it gets the
  *same* PRAGMAs as Hearth (a custom engine built the way DBOS builds its own plus WAL and the
  same `synchronous`); left to itself DBOS keeps SQLite's rollback journal with
  `synchronous=FULL`, which is measured once as well, for reference only. On PostgreSQL it gets
  a fresh database on the same server as Hearth (`--backend postgres`).
- DBOS runs in a subprocess of this script: it keeps process-wide state (a global instance and
  registry, background threads, logging handlers) that should not share a process, a GIL or an
  event loop with the engine under test. Hearth runs in this process, built through its
  composition root (`hearth.app.Hearth`) exactly as the gateway builds it, minus the HTTP server,
  which plays no part in running a step.
- SQLite: both modes are measured, the default (WAL, `synchronous=NORMAL`: a commit is durable
  against a process crash, not against power loss) and `synchronous=FULL` (an fsync per commit).
  PostgreSQL: the server's own settings (`synchronous_commit`, `fsync`), printed with the figures.
- Executions run as a closed loop with 1 and with 8 in flight, for a measured window of
  `--seconds` (at least 2 s by default; a fixed count of 100 executions was over in 70 ms), after
  a few executions that are not measured.
- CPU time per step of this process is printed next to throughput. On a shared 2-core machine
  it is the steadier figure; throughput moves with whatever else is running. It does not
  include the PostgreSQL server's own CPU (for DBOS neither).

Run: `.venv/bin/python bench/workflow_steps.py [--backend sqlite|postgres] [--seconds S] [--json]`
(DBOS needs the bench extra: `.venv/bin/pip install -e '.[bench]'`; `--backend postgres` takes
the server from `--database-url`, `HEARTH_BENCH_DATABASE_URL` or `HEARTH_TEST_DATABASE_URL`, and
creates and drops databases of its own there).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import common

if TYPE_CHECKING:
    # Imported for real inside measure_hearth only: the DBOS child process runs this same file
    # and should not carry Hearth's (large) import graph on its heap while it is measured.
    from hearth.app import Hearth
    from hearth.events import DomainEvent

BACKENDS = ("sqlite", "postgres")
MODES = ("NORMAL", "FULL")
DEFAULT_MODE = "NORMAL"
PG_MODE = "server"  # PostgreSQL runs with the server's own durability settings
CONCURRENCY = (1, 8)
STEPS = 10
WORKFLOW_ID = "ten"
WARMUP_EXECUTIONS = 5
DEFAULT_SECONDS = 2.0
#: Hearth steps/s against DBOS steps/s (same backend, mode and concurrency), per concurrency.
TARGET_VS_DBOS = {"sqlite": {1: 10.0, 8: 10.0}, "postgres": {1: 5.0, 8: 10.0}}
TARGET_VS_RAW = 0.15  # Hearth steps/s >= 15 % of raw commits/s, SQLite in the default mode
TARGET_PG_CPU_US = 500.0  # Hearth's CPU per step on PostgreSQL
SCENARIO_TIMEOUT_S = 300.0  # one scenario longer than this means something is stuck
TERMINAL = frozenset({"completed", "failed", "cancelled"})
SYNCHRONOUS_CODES = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

WORKFLOW_YAML = "name: Ten noop steps\nsteps:\n" + "".join(
    f"  - {{id: s{i:02d}, action: noop}}\n" for i in range(1, STEPS + 1)
)


@dataclass
class Result:
    """One measured scenario. `per_s` is steps/s (engines) or committed rows/s (raw)."""

    system: str  # "hearth", "raw", "dbos" (matched PRAGMAs) or "dbos-stock"
    mode: str  # the `synchronous` mode, "stock" for DBOS's own defaults, or PG_MODE
    concurrency: int
    units: int  # steps (engines) or rows (raw)
    seconds: float
    cpu_s: float
    #: Transactions committed: raw (units / rows per commit), or Hearth's writer's group
    #: commits in the window (so steps per commit shows how much grouping happened).
    commits: int = 0

    @property
    def per_s(self) -> float:
        return self.units / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_unit(self) -> float:
        return self.cpu_s / self.units * 1e6 if self.units else 0.0


def _deadline_loop(seconds: float, body: Callable[[], int]) -> tuple[int, float, float]:
    """Run `body` (returns units done) until `seconds` passed: (units, elapsed, CPU)."""
    units = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    deadline = t0 + seconds
    while time.perf_counter() < deadline:
        units += body()
    return units, time.perf_counter() - t0, time.process_time() - cpu0


# --------------------------------------------------------------------------- raw ceilings

_RAW_COLUMNS = (
    "execution_id TEXT NOT NULL, seq INTEGER NOT NULL, step_id TEXT NOT NULL, "
    "attempt INTEGER NOT NULL, status TEXT NOT NULL, output {json}, error TEXT, "
    "started_at {time} NOT NULL, finished_at {time} NOT NULL, PRIMARY KEY (execution_id, seq)"
)
RAW_EXECUTION = "00000000-0000-4000-8000-000000000000"


def measure_raw(path: Path, mode: str, seconds: float, group: int) -> Result:
    """`group` journal-shaped rows per BEGIN IMMEDIATE ... COMMIT, with Hearth's PRAGMAs."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        journal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(journal).lower() != "wal":
            raise RuntimeError(f"raw SQLite: journal_mode is {journal!r}, not WAL")
        conn.execute(f"PRAGMA synchronous={mode}")
        conn.execute(
            f"CREATE TABLE step_runs ({_RAW_COLUMNS.format(json='TEXT', time='TEXT')}) "
            "WITHOUT ROWID"
        )
        stamp = datetime.now(UTC).isoformat()
        sql = "INSERT INTO step_runs VALUES (?, ?, ?, 1, 'success', 'null', NULL, ?, ?)"
        seq = [0]

        def commit() -> int:
            first = seq[0]
            seq[0] += group
            rows = [
                (RAW_EXECUTION, n, f"s{n % STEPS:02d}", stamp, stamp)
                for n in range(first, first + group)
            ]
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(sql, rows)
            conn.execute("COMMIT")
            return group

        _deadline_loop(min(0.5, seconds / 4), commit)
        rows, elapsed, cpu = _deadline_loop(seconds, commit)
    finally:
        conn.close()
    return Result("raw", mode, group, rows, elapsed, cpu, rows // group)


async def measure_raw_pg(url: str, seconds: float, group: int) -> Result:
    """`group` journal-shaped rows per commit on PostgreSQL, one statement (one round trip)
    each, prepared, on asyncpg: the least a client can do to commit that many rows."""
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        columns = _RAW_COLUMNS.format(json="json", time="timestamptz")
        table = f"raw_step_runs_{group}"
        await conn.execute(f"CREATE TABLE {table} ({columns})")
        insert = await conn.prepare(
            f"INSERT INTO {table} SELECT $1, s, 's' || (s % 10), 1, 'success', 'null', "  # noqa: S608
            "NULL, $3, $3 FROM unnest($2::int4[]) AS s"
        )
        stamp = datetime.now(UTC)
        seq = 0

        async def window(duration: float) -> tuple[int, float, float]:
            nonlocal seq
            rows = 0
            cpu0, t0 = time.process_time(), time.perf_counter()
            deadline = t0 + duration
            while time.perf_counter() < deadline:
                await insert.fetch(RAW_EXECUTION, list(range(seq, seq + group)), stamp)
                seq += group
                rows += group
            return rows, time.perf_counter() - t0, time.process_time() - cpu0

        await window(min(0.5, seconds / 4))
        rows, elapsed, cpu = await window(seconds)
    finally:
        await conn.close()
    return Result("raw", PG_MODE, group, rows, elapsed, cpu, rows // group)


# --------------------------------------------------------------------------- PostgreSQL databases


def _asyncpg_dsn(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, name: str, driver: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername=driver, database=name).render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_pg_database(url: str, prefix: str) -> AsyncIterator[str]:
    """A new database on the server of `url` (its SQLAlchemy URL), dropped on the way out."""
    import asyncpg

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield _with_database(url, name, "postgresql+asyncpg")
    finally:
        admin = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def pg_settings(url: str) -> dict[str, str]:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        return {
            name: str(await conn.fetchval(f"SHOW {name}"))
            for name in ("server_version", "synchronous_commit", "fsync")
        }
    finally:
        await conn.close()


# --------------------------------------------------------------------------- Hearth


async def _closed_loop(
    hearth: Hearth,
    events: AsyncIterator[DomainEvent],
    concurrency: int,
    *,
    executions: int | None = None,
    seconds: float | None = None,
) -> int:
    """Keep `concurrency` executions in flight until `executions` were started (or `seconds`
    passed); returns how many completed, once all in flight have."""
    deadline = time.perf_counter() + seconds if seconds is not None else None

    def more() -> bool:
        if deadline is not None:
            return time.perf_counter() < deadline
        assert executions is not None
        return started < executions

    started = done = 0
    while started < concurrency and more():
        await hearth.workflows.trigger(WORKFLOW_ID, triggered_by="manual")
        started += 1
    while done < started:
        event = await anext(events)
        status = event.data["status"]
        if status not in TERMINAL:
            continue
        if status != "completed":
            raise RuntimeError(f"Hearth execution ended {status}: {event.data}")
        done += 1
        if more():
            await hearth.workflows.trigger(WORKFLOW_ID, triggered_by="manual")
            started += 1
    return done


async def _check_backend(hearth: Hearth, backend: str, mode: str) -> None:
    """Make sure the figures are for the database asked for, not some other one."""
    if backend == "postgres":
        if hearth.db.backend != "postgresql":
            raise RuntimeError(f"Hearth uses {hearth.db.backend}, not PostgreSQL")
        return
    if hearth.db.backend != "sqlite":
        raise RuntimeError(f"Hearth uses {hearth.db.backend}, not SQLite (HEARTH_DATABASE_* set?)")
    async with hearth.db.connect() as conn:
        journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        synchronous = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    if str(journal).lower() != "wal" or synchronous != SYNCHRONOUS_CODES[mode]:
        raise RuntimeError(f"Hearth SQLite: journal_mode={journal}, synchronous={synchronous}")


async def measure_hearth(
    data_dir: Path,
    mode: str,
    seconds: float,
    concurrencies: tuple[int, ...],
    database_url: str | None = None,
) -> list[Result]:
    """Build Hearth in-process through its composition root and drive `ten` executions."""
    from hearth.app import Hearth  # not at the top: see the TYPE_CHECKING block there
    from hearth.config import load_settings

    workflows_dir = data_dir / "workflows"
    workflows_dir.mkdir(parents=True)
    (workflows_dir / f"{WORKFLOW_ID}.yaml").write_text(WORKFLOW_YAML, encoding="utf-8")
    overrides: dict[str, Any] = {"workflows": {"watch": False}}
    if database_url is not None:
        overrides["database_url"] = database_url
    else:
        overrides["database"] = {"sqlite_synchronous": mode}
    settings = load_settings(data_dir=data_dir, port=0, **overrides)
    hearth = Hearth(settings)
    results: list[Result] = []
    # Only the end of each execution matters to the closed loop, so the harness asks for
    # just those (filtered at publish time): waking it for every step would bill the
    # measuring code's work to the engine. Room for far more than a run can complete.
    subscription = hearth.bus.subscribe(
        "workflow.status",
        maxsize=1_000_000,
        accept=lambda event: event.data["status"] in TERMINAL,
    )
    try:
        await hearth.start(url="http://bench")
        await _check_backend(hearth, "postgres" if database_url else "sqlite", mode)
        events = aiter(subscription)
        async with asyncio.timeout(SCENARIO_TIMEOUT_S):
            for concurrency in concurrencies:
                await _closed_loop(hearth, events, concurrency, executions=WARMUP_EXECUTIONS)
                writer = hearth.db.writer or hearth.db.pg_writer
                commits0 = writer.batches if writer is not None else 0
                cpu0, t0 = time.process_time(), time.perf_counter()
                done = await _closed_loop(hearth, events, concurrency, seconds=seconds)
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                # The group commits the writer made (steps, starts and ends of executions).
                commits = (writer.batches - commits0) if writer is not None else 0
                results.append(
                    Result("hearth", mode, concurrency, done * STEPS, elapsed, cpu, commits)
                )
        if subscription.dropped:
            raise RuntimeError(f"{subscription.dropped} workflow.status events were dropped")
    finally:
        subscription.close()
        await hearth.stop()
    return results


# --------------------------------------------------------------------------- DBOS (subprocess)


def _dbos_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in a child process: launch DBOS, run the workflows, print one JSON line.

    `dbos` is imported here rather than at the top because it is an optional (bench-only)
    dependency and because only this child process should ever hold DBOS's global state.
    """
    import sqlalchemy as sa
    from dbos import DBOS, DBOSConfig

    engine: sa.Engine | None = None
    journal = "postgresql"
    if args.dbos_url:
        url = args.dbos_url
        config: DBOSConfig = {"name": "hearth-bench", "system_database_url": url}
    else:
        path = Path(args.dbos_worker) / "dbos.sqlite"
        url = f"sqlite:///{path}"
        config = {"name": "hearth-bench", "system_database_url": url}
    config["log_level"] = "WARNING"
    if not args.dbos_url and args.dbos_mode != "stock":
        # DBOS's own SQLite engine (dbos/_sys_db_sqlite.py), plus Hearth's journal and sync mode.
        engine = sa.create_engine(url, pool_size=20, max_overflow=0, pool_timeout=30)
        synchronous = args.dbos_mode

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = "IMMEDIATE"
            dbapi_connection.execute("PRAGMA busy_timeout=30000")
            dbapi_connection.execute("PRAGMA foreign_keys=ON")
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute(f"PRAGMA synchronous={synchronous}")

        config["system_database_engine"] = engine

    @DBOS.step()
    def noop_step() -> None:
        return None

    @DBOS.workflow()
    def ten_steps() -> int:
        for _ in range(STEPS):
            noop_step()
        return STEPS

    def run(concurrency: int, *, executions: int = 0, seconds: float = 0.0) -> int:
        """Closed loop of `concurrency` clients; returns the executions completed."""
        deadline = time.perf_counter() + seconds
        lock = threading.Lock()
        remaining = [executions]
        completed = [0]

        def client() -> None:
            while True:
                with lock:
                    if seconds:
                        if time.perf_counter() >= deadline:
                            return
                    elif remaining[0] == 0:
                        return
                    else:
                        remaining[0] -= 1
                ten_steps()
                with lock:
                    completed[0] += 1

        if concurrency == 1:
            client()
        else:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                for future in [pool.submit(client) for _ in range(concurrency)]:
                    future.result()
        return completed[0]

    DBOS(config=config)
    DBOS.launch()
    results: list[dict[str, Any]] = []
    try:
        if not args.dbos_url:
            probe = sa.create_engine(url)
            with probe.connect() as conn:
                journal = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
            probe.dispose()
        for concurrency in args.concurrency:
            run(concurrency, executions=WARMUP_EXECUTIONS)
            cpu0, t0 = time.process_time(), time.perf_counter()
            done = run(concurrency, seconds=args.seconds)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            results.append(
                {"concurrency": concurrency, "executions": done, "seconds": elapsed, "cpu_s": cpu}
            )
    finally:
        DBOS.destroy(destroy_registry=True)
        if engine is not None:
            engine.dispose()
    return {"journal_mode": journal, "results": results}


def measure_dbos(
    workdir: Path,
    mode: str,
    seconds: float,
    concurrencies: tuple[int, ...],
    database_url: str | None = None,
) -> list[Result]:
    """Run `_dbos_worker` in a child process (see the module docstring for why)."""
    workdir.mkdir(parents=True)
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--dbos-worker",
        str(workdir),
        "--dbos-mode",
        mode,
        "--seconds",
        str(seconds),
        "--concurrency",
        *(str(c) for c in concurrencies),
    ]
    if database_url is not None:
        # DBOS speaks psycopg: the same server and database name, its own driver.
        from sqlalchemy.engine import make_url

        plain = make_url(database_url).set(drivername="postgresql")
        command += ["--dbos-url", plain.render_as_string(hide_password=False)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"DBOS worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = "postgresql" if database_url else ("delete" if mode == "stock" else "wal")
    if str(report["journal_mode"]).lower() != expected:
        raise RuntimeError(f"DBOS journal_mode is {report['journal_mode']}, not {expected}")
    system = "dbos-stock" if mode == "stock" else "dbos"
    return [
        Result(system, mode, r["concurrency"], r["executions"] * STEPS, r["seconds"], r["cpu_s"])
        for r in report["results"]
    ]


def dbos_available() -> bool:
    return common.package_version("dbos") is not None


# --------------------------------------------------------------------------- the run


def run_all(
    args: argparse.Namespace, workdir: Path, progress: Callable[[str], None]
) -> list[Result]:
    """Per mode: raw, Hearth, DBOS, back to back, so that each ratio compares neighbours."""
    if args.backend == "postgres":
        return asyncio.run(run_postgres(args, workdir, progress))
    results: list[Result] = []
    with_dbos = not args.no_dbos and dbos_available()
    for mode in args.modes:
        for group in args.concurrency:
            progress(f"{mode}: raw SQLite, {group} row(s) per commit, {args.seconds:g} s")
            path = workdir / f"raw-{mode}-{group}.db"
            results.append(measure_raw(path, mode, args.seconds, group))
        progress(f"{mode}: Hearth, {args.seconds:g} s per level")
        results += asyncio.run(
            measure_hearth(workdir / f"hearth-{mode}", mode, args.seconds, args.concurrency)
        )
        if with_dbos:
            progress(f"{mode}: DBOS, {args.seconds:g} s per level")
            results += measure_dbos(workdir / f"dbos-{mode}", mode, args.seconds, args.concurrency)
    if with_dbos and not args.no_dbos_stock:
        progress("DBOS out of the box (rollback journal, synchronous=FULL), for reference")
        results += measure_dbos(workdir / "dbos-stock", "stock", args.seconds, args.concurrency)
    return results


async def run_postgres(
    args: argparse.Namespace, workdir: Path, progress: Callable[[str], None]
) -> list[Result]:
    """Raw asyncpg, Hearth and DBOS, each on a fresh database of the same server."""
    results: list[Result] = []
    server = args.database_url
    args.pg = await pg_settings(server)
    async with fresh_pg_database(server, "bench_raw") as url:
        for group in args.concurrency:
            progress(f"PostgreSQL: raw asyncpg, {group} row(s) per commit, {args.seconds:g} s")
            results.append(await measure_raw_pg(url, args.seconds, group))
    async with fresh_pg_database(server, "bench_hearth") as url:
        progress(f"PostgreSQL: Hearth, {args.seconds:g} s per level")
        results += await measure_hearth(
            workdir / "hearth-pg", PG_MODE, args.seconds, args.concurrency, database_url=url
        )
    if not args.no_dbos and dbos_available():
        async with fresh_pg_database(server, "bench_dbos") as url:
            progress(f"PostgreSQL: DBOS, {args.seconds:g} s per level")
            results += await asyncio.to_thread(
                measure_dbos, workdir / "dbos-pg", PG_MODE, args.seconds, args.concurrency, url
            )
    return results


def _find(results: list[Result], system: str, mode: str, concurrency: int) -> Result | None:
    for r in results:
        if r.system == system and r.mode == mode and r.concurrency == concurrency:
            return r
    return None


def _ratio(a: Result | None, b: Result | None) -> float | None:
    return a.per_s / b.per_s if a and b and b.per_s else None


def _uptime() -> str:
    try:
        load = os.getloadavg()
    except OSError:
        return "unknown"
    return f"load average: {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"


def summarize(results: list[Result], args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    modes = [PG_MODE] if args.backend == "postgres" else args.modes
    targets = TARGET_VS_DBOS[args.backend]
    for mode in modes:
        for concurrency in args.concurrency:
            raw = _find(results, "raw", mode, concurrency)
            hearth = _find(results, "hearth", mode, concurrency)
            dbos = _find(results, "dbos", mode, concurrency)
            vs_raw, vs_dbos = _ratio(hearth, raw), _ratio(hearth, dbos)
            target = targets.get(concurrency, 10.0)
            cpu = hearth.cpu_us_per_unit if hearth else None
            rows.append(
                {
                    "mode": mode,
                    "concurrency": concurrency,
                    "hearth_steps_per_s": hearth.per_s if hearth else None,
                    "hearth_cpu_us_per_step": cpu,
                    "hearth_commits_per_step": (hearth.commits / hearth.units)
                    if hearth and hearth.units and hearth.commits
                    else None,
                    "hearth_seconds": hearth.seconds if hearth else None,
                    "raw_rows_per_commit": concurrency,
                    "raw_rows_per_s": raw.per_s if raw else None,
                    "raw_cpu_us_per_row": raw.cpu_us_per_unit if raw else None,
                    "hearth_vs_raw": vs_raw,
                    "dbos_steps_per_s": dbos.per_s if dbos else None,
                    "dbos_cpu_us_per_step": dbos.cpu_us_per_unit if dbos else None,
                    "hearth_vs_dbos": vs_dbos,
                    "target_vs_dbos": target,
                    "target_vs_raw_met": (vs_raw >= TARGET_VS_RAW)
                    if vs_raw is not None and mode == DEFAULT_MODE
                    else None,
                    "target_vs_dbos_met": (vs_dbos >= target) if vs_dbos is not None else None,
                    "target_cpu_met": (cpu <= TARGET_PG_CPU_US)
                    if cpu is not None and args.backend == "postgres"
                    else None,
                }
            )
    stock = [
        {"concurrency": r.concurrency, "steps_per_s": r.per_s, "cpu_us_per_step": r.cpu_us_per_unit}
        for r in results
        if r.system == "dbos-stock"
    ]

    package = common.package_version
    return {
        "benchmark": "workflow_steps",
        "backend": args.backend,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load": _uptime(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "sqlite": sqlite3.sqlite_version,
            "postgresql": getattr(args, "pg", None),
            "hearth": package("hearthgate"),
            "dbos": package("dbos"),
            "sqlalchemy": package("sqlalchemy"),
            "aiosqlite": package("aiosqlite"),
            "asyncpg": package("asyncpg"),
        },
        "parameters": {
            "seconds": args.seconds,
            "steps_per_execution": STEPS,
            "warmup_executions": WARMUP_EXECUTIONS,
            "concurrency": list(args.concurrency),
        },
        "targets": {
            "hearth_vs_dbos": targets,
            "hearth_vs_raw_default_mode": TARGET_VS_RAW if args.backend == "sqlite" else None,
            "hearth_cpu_us_per_step": TARGET_PG_CPU_US if args.backend == "postgres" else None,
        },
        "rows": rows,
        "dbos_stock": stock,
        "dbos_measured": any(r.system == "dbos" for r in results),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "MISSED")


def print_text(summary: dict[str, Any]) -> None:
    params, machine = summary["parameters"], summary["machine"]
    postgres = summary["backend"] == "postgres"
    if postgres:
        pg = machine["postgresql"] or {}
        database = (
            f"PostgreSQL {pg.get('server_version')} (synchronous_commit="
            f"{pg.get('synchronous_commit')}, fsync={pg.get('fsync')}), "
            f"asyncpg {machine['asyncpg']}"
        )
    else:
        database = f"SQLite {machine['sqlite']}"
    print(
        f"\n{params['seconds']:g} s measured per level ({params['steps_per_execution']} noop "
        f"steps per execution, after {params['warmup_executions']} unmeasured executions). "
        f"Python {machine['python']}, {database}, DBOS {machine['dbos'] or 'not installed'}, "
        f"{machine['cpus']} CPUs; {summary['measured_at']}, {summary['load']}.\n"
    )
    last = "µs/step<=500" if postgres else f">={TARGET_VS_RAW:.0%} raw"
    header = (
        f"{'mode':<7}{'conc':>5}{'Hearth st/s':>13}{'raw rows/s':>12}{'rows/commit':>12}"
        f"{'H/raw':>8}{'DBOS st/s':>11}{'H/DBOS':>8}{'µs CPU/step H | DBOS':>23}"
        f"   {'H/DBOS target':>13}   {last}"
    )
    print(header)
    print("-" * len(header))
    for row in summary["rows"]:
        cpu = (
            f"{_fmt(row['hearth_cpu_us_per_step'], '.0f')} | "
            f"{_fmt(row['dbos_cpu_us_per_step'], '.0f')}"
        )
        target = f">={row['target_vs_dbos']:g}x {_verdict(row['target_vs_dbos_met'])}"
        last_verdict = row["target_cpu_met"] if postgres else row["target_vs_raw_met"]
        print(
            f"{row['mode']:<7}{row['concurrency']:>5}"
            f"{_fmt(row['hearth_steps_per_s'], ',.0f'):>13}"
            f"{_fmt(row['raw_rows_per_s'], ',.0f'):>12}"
            f"{row['raw_rows_per_commit']:>12}"
            f"{_fmt(row['hearth_vs_raw'], '.2%'):>8}"
            f"{_fmt(row['dbos_steps_per_s'], ',.0f'):>11}"
            f"{_fmt(row['hearth_vs_dbos'], '.2f'):>7}x"
            f"{cpu:>23}"
            f"   {target:>13}   {_verdict(last_verdict)}"
        )
    for row in summary["rows"]:
        if row["hearth_commits_per_step"]:
            print(
                f"  Hearth {row['mode']}, {row['concurrency']} in flight: "
                f"{1 / row['hearth_commits_per_step']:.1f} steps per commit "
                "(executions' starts and ends included)"
            )
    if not summary["dbos_measured"]:
        print("\nDBOS was not measured (--no-dbos, or not installed: pip install -e '.[bench]').")
    if summary["dbos_stock"]:
        print("\nDBOS out of the box (rollback journal, synchronous=FULL), for reference only:")
    for row in summary["dbos_stock"]:
        print(
            f"  concurrency {row['concurrency']}: {row['steps_per_s']:,.0f} steps/s, "
            f"{row['cpu_us_per_step']:.0f} µs CPU/step"
        )
    print(
        "\nThe raw ceiling commits journal-shaped rows at the same grouping as the row (1 or 8 "
        "rows per commit). CPU is this process's (every thread), not the database server's."
    )


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=BACKENDS, default="sqlite")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("HEARTH_BENCH_DATABASE_URL")
        or os.environ.get("HEARTH_TEST_DATABASE_URL")
        or DEFAULT_PG_URL,
        help="--backend postgres: a SQLAlchemy URL of the server; the benchmark creates and "
        "drops databases of its own there",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help=f"measured window per engine, mode and concurrency (default {DEFAULT_SECONDS:g})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=list(CONCURRENCY),
        help="executions in flight (default: 1 8)",
    )
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="SQLite synchronous modes"
    )
    parser.add_argument("--no-dbos", action="store_true", help="skip DBOS entirely")
    parser.add_argument(
        "--no-dbos-stock", action="store_true", help="skip DBOS's out-of-the-box reference run"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    # Internal: the DBOS child process.
    parser.add_argument("--dbos-worker", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--dbos-mode", default="NORMAL", help=argparse.SUPPRESS)
    parser.add_argument("--dbos-url", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or any(c < 1 for c in args.concurrency):
        parser.error("--seconds must be positive and --concurrency at least 1")
    args.concurrency = tuple(args.concurrency)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dbos_worker is not None:
        print(json.dumps(_dbos_worker(args)))
        return 0
    signal.signal(signal.SIGTERM, common.exit_on_sigterm)  # temp dirs are removed on SIGTERM

    def progress(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    if not args.no_dbos and not dbos_available():
        progress("dbos is not installed: DBOS is skipped (pip install -e '.[bench]')")
    with tempfile.TemporaryDirectory(prefix="hearth-bench-steps-") as tmp:
        results = run_all(args, Path(tmp), progress)
    summary = summarize(results, args)
    summary["results"] = [asdict(r) | {"per_s": r.per_s} for r in results]
    common.emit(summary, args.json, print_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
