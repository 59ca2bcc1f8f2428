"""Durable workflow steps per second: Hearth's engine vs raw SQLite commits vs DBOS Transact.

Why this shape:

- Every workflow step Hearth runs is one committed transaction (a `step_runs` journal row plus the
  execution row's update), so the ceiling for durable steps/s is how fast SQLite can commit at all.
  That ceiling is measured in the same run with stdlib `sqlite3` on a fresh file with the same
  PRAGMAs (WAL, the same `synchronous`), one single-row INSERT + COMMIT per iteration. The ratio
  Hearth/raw says how much of the storage engine's commit rate the workflow engine keeps.
- DBOS Transact is the closest comparable library (durable workflows whose steps are checkpointed
  in a SQLite or PostgreSQL database), so it runs the same shape in the same run: a
  `@DBOS.workflow()` calling 10 `@DBOS.step()` functions that do nothing. It gets a SQLite system
  database with the *same* PRAGMAs as Hearth (WAL, the same `synchronous`): a custom engine built
  the way DBOS builds its own (IMMEDIATE transactions, busy timeout, foreign keys) plus those two
  PRAGMAs. Left to itself DBOS keeps SQLite's rollback journal with `synchronous=FULL`; that
  out-of-the-box configuration is measured once as well, for reference only.
- DBOS runs in a subprocess of this script: it keeps process-wide state (a global instance and
  registry, background threads, logging handlers) that should not share a process, a GIL or an
  event loop with the engine under test. Hearth runs in this process, built through its
  composition root (`hearth.app.Hearth`) exactly as the gateway builds it, minus the HTTP server,
  which plays no part in running a step.
- Both modes are measured: the default (WAL, `synchronous=NORMAL`: a commit is durable against a
  process crash, not against power loss) and `synchronous=FULL` (an fsync per commit).
- Executions run as a closed loop with 1 and with 8 in flight. One at a time is the like-for-like
  comparison with the raw loop (one commit after the other; SQLite has a single writer and no
  group commit, so concurrency cannot beat that ceiling); 8 in flight shows what interleaving
  buys or costs each engine. Each level is preceded by a few executions that are not measured.
- CPU time per step is printed next to throughput. On a shared 2-core machine it is the steadier
  figure; throughput moves with whatever else is running.

Run: `.venv/bin/python bench/workflow_steps.py [--executions N] [--json]`
(DBOS needs the bench extra: `.venv/bin/pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
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

MODES = ("NORMAL", "FULL")
DEFAULT_MODE = "NORMAL"
CONCURRENCY = (1, 8)
STEPS = 10
WORKFLOW_ID = "ten"
WARMUP_EXECUTIONS = 5
DEFAULT_EXECUTIONS = 100
DEFAULT_RAW_SECONDS = 2.0
TARGET_VS_DBOS = 10.0  # Hearth steps/s >= 10x DBOS steps/s (same mode, same concurrency)
TARGET_VS_RAW = 0.15  # Hearth steps/s >= 15 % of raw commits/s, in the default mode
SCENARIO_TIMEOUT_S = 300.0  # one scenario longer than this means something is stuck
TERMINAL = frozenset({"completed", "failed", "cancelled"})
SYNCHRONOUS_CODES = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}

WORKFLOW_YAML = "name: Ten noop steps\nsteps:\n" + "".join(
    f"  - {{id: s{i:02d}, action: noop}}\n" for i in range(1, STEPS + 1)
)


@dataclass
class Result:
    """One measured scenario. `unit_per_s` is steps/s (engines) or commits/s (raw SQLite)."""

    system: str  # "hearth", "raw", "dbos" (matched PRAGMAs) or "dbos-stock"
    mode: str  # the `synchronous` mode, or "stock" for DBOS's own defaults
    concurrency: int
    units: int  # steps (engines) or commits (raw)
    seconds: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.units / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_unit(self) -> float:
        return self.cpu_s / self.units * 1e6 if self.units else 0.0


# --------------------------------------------------------------------------- raw SQLite ceiling


def measure_raw(path: Path, mode: str, seconds: float) -> Result:
    """Single-row INSERT + COMMIT in a loop, with the PRAGMAs and BEGIN that Hearth uses.

    The row is shaped like a `step_runs` journal row so that the page writes are comparable.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        journal = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(journal).lower() != "wal":
            raise RuntimeError(f"raw SQLite: journal_mode is {journal!r}, not WAL")
        conn.execute(f"PRAGMA synchronous={mode}")
        conn.execute(
            "CREATE TABLE step_runs (execution_id TEXT NOT NULL, seq INTEGER NOT NULL, "
            "step_id TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL, "
            "output TEXT, error TEXT, started_at TEXT NOT NULL, finished_at TEXT NOT NULL, "
            "PRIMARY KEY (execution_id, seq))"
        )
        execution_id = "00000000-0000-4000-8000-000000000000"
        stamp = datetime.now(UTC).isoformat()
        sql = "INSERT INTO step_runs VALUES (?, ?, ?, 1, 'success', 'null', NULL, ?, ?)"

        def commit_for(duration: float, first_seq: int) -> tuple[int, float, float]:
            seq = first_seq
            cpu0, t0 = time.process_time(), time.perf_counter()
            deadline = t0 + duration
            while time.perf_counter() < deadline:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(sql, (execution_id, seq, f"s{seq % STEPS:02d}", stamp, stamp))
                conn.execute("COMMIT")
                seq += 1
            return seq - first_seq, time.perf_counter() - t0, time.process_time() - cpu0

        warm, _, _ = commit_for(min(0.5, seconds / 4), 0)
        commits, elapsed, cpu = commit_for(seconds, warm)
    finally:
        conn.close()
    return Result("raw", mode, 1, commits, elapsed, cpu)


# --------------------------------------------------------------------------- Hearth


async def _closed_loop(
    hearth: Hearth, events: AsyncIterator[DomainEvent], executions: int, concurrency: int
) -> None:
    """Keep `concurrency` executions in flight until `executions` have completed."""
    started = done = 0
    while started < min(concurrency, executions):
        await hearth.workflows.trigger(WORKFLOW_ID, triggered_by="manual")
        started += 1
    while done < executions:
        event = await anext(events)
        status = event.data["status"]
        if status not in TERMINAL:
            continue
        if status != "completed":
            raise RuntimeError(f"Hearth execution ended {status}: {event.data}")
        done += 1
        if started < executions:
            await hearth.workflows.trigger(WORKFLOW_ID, triggered_by="manual")
            started += 1


async def _check_pragmas(hearth: Hearth, mode: str) -> None:
    """Make sure the figures are for SQLite in WAL with the mode asked for, not some other DB."""
    if hearth.db.backend != "sqlite":
        raise RuntimeError(f"Hearth uses {hearth.db.backend}, not SQLite (HEARTH_DATABASE_* set?)")
    async with hearth.db.connect() as conn:
        journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        synchronous = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    if str(journal).lower() != "wal" or synchronous != SYNCHRONOUS_CODES[mode]:
        raise RuntimeError(f"Hearth SQLite: journal_mode={journal}, synchronous={synchronous}")


async def measure_hearth(
    data_dir: Path, mode: str, executions: int, concurrencies: tuple[int, ...]
) -> list[Result]:
    """Build Hearth in-process through its composition root and drive `ten` executions."""
    from hearth.app import Hearth  # not at the top: see the TYPE_CHECKING block there
    from hearth.config import load_settings

    workflows_dir = data_dir / "workflows"
    workflows_dir.mkdir(parents=True)
    (workflows_dir / f"{WORKFLOW_ID}.yaml").write_text(WORKFLOW_YAML, encoding="utf-8")
    settings = load_settings(
        data_dir=data_dir,
        port=0,
        database={"sqlite_synchronous": mode},
        workflows={"watch": False},
    )
    hearth = Hearth(settings)
    results: list[Result] = []
    # Room for every event of the whole run, so that nothing is dropped (checked below).
    # Only the end of each execution matters to the closed loop, so the harness asks for
    # just those (filtered at publish time): waking it for every step would bill the
    # measuring code's work to the engine.
    subscription = hearth.bus.subscribe(
        "workflow.status",
        maxsize=(executions + WARMUP_EXECUTIONS) * len(concurrencies) * 2,
        accept=lambda event: event.data["status"] in TERMINAL,
    )
    try:
        await hearth.start(url="http://bench")
        await _check_pragmas(hearth, mode)
        events = aiter(subscription)
        async with asyncio.timeout(SCENARIO_TIMEOUT_S):
            for concurrency in concurrencies:
                await _closed_loop(hearth, events, WARMUP_EXECUTIONS, concurrency)
                cpu0, t0 = time.process_time(), time.perf_counter()
                await _closed_loop(hearth, events, executions, concurrency)
                elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                results.append(
                    Result("hearth", mode, concurrency, executions * STEPS, elapsed, cpu)
                )
        if subscription.dropped:
            raise RuntimeError(f"{subscription.dropped} workflow.status events were dropped")
    finally:
        subscription.close()
        await hearth.stop()
    return results


# --------------------------------------------------------------------------- DBOS (subprocess)


def _dbos_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Runs in a child process: launch DBOS on SQLite, run the workflows, print one JSON line.

    `dbos` is imported here rather than at the top because it is an optional (bench-only)
    dependency and because only this child process should ever hold DBOS's global state.
    """
    import sqlalchemy as sa
    from dbos import DBOS, DBOSConfig

    path = Path(args.dbos_worker) / "dbos.sqlite"
    url = f"sqlite:///{path}"
    config: DBOSConfig = {"name": "hearth-bench", "system_database_url": url}
    config["log_level"] = "WARNING"
    engine: sa.Engine | None = None
    if args.dbos_mode != "stock":
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

    def run(executions: int, concurrency: int) -> None:
        if concurrency == 1:
            for _ in range(executions):
                ten_steps()
            return
        lock = threading.Lock()
        remaining = [executions]

        def client() -> None:
            while True:
                with lock:
                    if remaining[0] == 0:
                        return
                    remaining[0] -= 1
                ten_steps()

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            for future in [pool.submit(client) for _ in range(concurrency)]:
                future.result()

    DBOS(config=config)
    DBOS.launch()
    results: list[dict[str, Any]] = []
    try:
        probe = sa.create_engine(url)
        with probe.connect() as conn:
            journal = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        probe.dispose()
        for concurrency in args.concurrency:
            run(WARMUP_EXECUTIONS, concurrency)
            cpu0, t0 = time.process_time(), time.perf_counter()
            run(args.executions, concurrency)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            results.append({"concurrency": concurrency, "seconds": elapsed, "cpu_s": cpu})
    finally:
        DBOS.destroy(destroy_registry=True)
        if engine is not None:
            engine.dispose()
    return {"journal_mode": journal, "results": results}


def measure_dbos(
    workdir: Path, mode: str, executions: int, concurrencies: tuple[int, ...]
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
        "--executions",
        str(executions),
        "--concurrency",
        *(str(c) for c in concurrencies),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=SCENARIO_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"DBOS worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    expected = "delete" if mode == "stock" else "wal"
    if str(report["journal_mode"]).lower() != expected:
        raise RuntimeError(f"DBOS SQLite journal_mode is {report['journal_mode']}, not {expected}")
    system = "dbos-stock" if mode == "stock" else "dbos"
    return [
        Result(system, mode, r["concurrency"], executions * STEPS, r["seconds"], r["cpu_s"])
        for r in report["results"]
    ]


def dbos_available() -> bool:
    return common.package_version("dbos") is not None


# --------------------------------------------------------------------------- the run


def run_all(
    args: argparse.Namespace, workdir: Path, progress: Callable[[str], None]
) -> list[Result]:
    """Per mode: raw, Hearth, DBOS, back to back, so that each ratio compares neighbours."""
    results: list[Result] = []
    with_dbos = not args.no_dbos and dbos_available()
    for mode in args.modes:
        progress(f"{mode}: raw SQLite commits for {args.raw_seconds:g} s")
        results.append(measure_raw(workdir / f"raw-{mode}.db", mode, args.raw_seconds))
        progress(f"{mode}: Hearth, {args.executions} executions x {STEPS} steps per level")
        results += asyncio.run(
            measure_hearth(workdir / f"hearth-{mode}", mode, args.executions, args.concurrency)
        )
        if with_dbos:
            progress(f"{mode}: DBOS, {args.executions} executions x {STEPS} steps per level")
            results += measure_dbos(
                workdir / f"dbos-{mode}", mode, args.executions, args.concurrency
            )
    if with_dbos and not args.no_dbos_stock:
        progress("DBOS out of the box (rollback journal, synchronous=FULL), for reference")
        results += measure_dbos(workdir / "dbos-stock", "stock", args.executions, args.concurrency)
    return results


def _find(results: list[Result], system: str, mode: str, concurrency: int) -> Result | None:
    for r in results:
        if r.system == system and r.mode == mode and r.concurrency == concurrency:
            return r
    return None


def _ratio(a: Result | None, b: Result | None) -> float | None:
    return a.per_s / b.per_s if a and b and b.per_s else None


def summarize(results: list[Result], args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for mode in args.modes:
        raw = _find(results, "raw", mode, 1)
        for concurrency in args.concurrency:
            hearth = _find(results, "hearth", mode, concurrency)
            dbos = _find(results, "dbos", mode, concurrency)
            vs_raw, vs_dbos = _ratio(hearth, raw), _ratio(hearth, dbos)
            rows.append(
                {
                    "mode": mode,
                    "concurrency": concurrency,
                    "hearth_steps_per_s": hearth.per_s if hearth else None,
                    "hearth_cpu_us_per_step": hearth.cpu_us_per_unit if hearth else None,
                    "raw_commits_per_s": raw.per_s if raw else None,
                    "raw_cpu_us_per_commit": raw.cpu_us_per_unit if raw else None,
                    "hearth_vs_raw": vs_raw,
                    "dbos_steps_per_s": dbos.per_s if dbos else None,
                    "dbos_cpu_us_per_step": dbos.cpu_us_per_unit if dbos else None,
                    "hearth_vs_dbos": vs_dbos,
                    "target_vs_raw_met": (vs_raw >= TARGET_VS_RAW)
                    if vs_raw is not None and mode == DEFAULT_MODE
                    else None,
                    "target_vs_dbos_met": (vs_dbos >= TARGET_VS_DBOS)
                    if vs_dbos is not None
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
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "sqlite": sqlite3.sqlite_version,
            "hearth": package("hearthgate"),
            "dbos": package("dbos"),
            "sqlalchemy": package("sqlalchemy"),
            "aiosqlite": package("aiosqlite"),
        },
        "parameters": {
            "executions": args.executions,
            "steps_per_execution": STEPS,
            "warmup_executions": WARMUP_EXECUTIONS,
            "concurrency": list(args.concurrency),
            "raw_seconds": args.raw_seconds,
        },
        "targets": {"hearth_vs_dbos": TARGET_VS_DBOS, "hearth_vs_raw_default_mode": TARGET_VS_RAW},
        "rows": rows,
        "dbos_stock": stock,
        "dbos_measured": any(r.system == "dbos" for r in results),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _verdict(met: bool | None) -> str:
    return "-" if met is None else ("met" if met else "MISSED")


def print_text(summary: dict[str, Any]) -> None:
    params = summary["parameters"]
    print(
        f"\n{params['executions']} executions x {params['steps_per_execution']} noop steps per "
        f"level (after {params['warmup_executions']} unmeasured); raw SQLite for "
        f"{params['raw_seconds']:g} s. Python {summary['machine']['python']}, SQLite "
        f"{summary['machine']['sqlite']}, DBOS {summary['machine']['dbos'] or 'not installed'}, "
        f"{summary['machine']['cpus']} CPUs.\n"
    )
    header = (
        f"{'mode':<7}{'conc':>5}{'Hearth st/s':>13}{'raw commit/s':>14}{'H/raw':>8}"
        f"{'DBOS st/s':>11}{'H/DBOS':>8}{'µs CPU/step H | DBOS':>23}"
        f"   >={TARGET_VS_RAW:.0%} raw   >={TARGET_VS_DBOS:g}x DBOS"
    )
    print(header)
    print("-" * len(header))
    for row in summary["rows"]:
        cpu = (
            f"{_fmt(row['hearth_cpu_us_per_step'], '.0f')} | "
            f"{_fmt(row['dbos_cpu_us_per_step'], '.0f')}"
        )
        print(
            f"{row['mode']:<7}{row['concurrency']:>5}"
            f"{_fmt(row['hearth_steps_per_s'], ',.0f'):>13}"
            f"{_fmt(row['raw_commits_per_s'], ',.0f'):>14}"
            f"{_fmt(row['hearth_vs_raw'], '.2%'):>8}"
            f"{_fmt(row['dbos_steps_per_s'], ',.0f'):>11}"
            f"{_fmt(row['hearth_vs_dbos'], '.2f'):>7}x"
            f"{cpu:>23}"
            f"   {_verdict(row['target_vs_raw_met']):>9}"
            f"   {_verdict(row['target_vs_dbos_met']):>11}"
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
        "\nThe raw ceiling is one writer committing one row at a time; the 15 % target applies "
        f"to the default mode ({DEFAULT_MODE}). CPU includes every thread of the process."
    )


# --------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--executions",
        type=int,
        default=DEFAULT_EXECUTIONS,
        help=f"measured executions per engine, mode and concurrency (default {DEFAULT_EXECUTIONS})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=list(CONCURRENCY),
        help="executions in flight (default: 1 8)",
    )
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="synchronous modes"
    )
    parser.add_argument(
        "--raw-seconds",
        type=float,
        default=DEFAULT_RAW_SECONDS,
        help=f"how long the raw SQLite loop runs (default {DEFAULT_RAW_SECONDS:g})",
    )
    parser.add_argument("--no-dbos", action="store_true", help="skip DBOS entirely")
    parser.add_argument(
        "--no-dbos-stock", action="store_true", help="skip DBOS's out-of-the-box reference run"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    # Internal: the DBOS child process.
    parser.add_argument("--dbos-worker", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--dbos-mode", default="NORMAL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.executions < 1 or any(c < 1 for c in args.concurrency):
        parser.error("--executions and --concurrency must be at least 1")
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
