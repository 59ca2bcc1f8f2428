"""SIGKILL soak: a workflow mix while gateways are killed at random moments; nothing is lost.

The mix, all against real gateway processes (`python -m hearth serve`):

- `soak-pay`: an idempotent GET with retries, then an approval-gated, non-idempotent POST
  (a payment, to a ledger service run by this script), then a noop;
- `soak-flaky`: a `file.read` that fails unless the file exists (retried, then the execution
  fails with its reason), a 1 s wait, a non-idempotent POST;
- `soak-tick`: a POST and a short wait, fired by a schedule every second.

Each cycle it triggers a few executions from a fresh connection, answers pending approvals
(gates and `interrupted` questions, approve or deny at random) from another fresh connection,
lets the gateway work for a random moment, SIGKILLs it (with `--nodes 2` on PostgreSQL: one
of the two at random, the other keeps serving) and starts it again.

At the end the schedule is disabled, a final load runs on the last life of the gateway, every
pending approval is answered until nothing waits, and every execution is accounted for:

- lost: an execution whose `workflow.triggered` reply was received but which no longer exists;
- stuck: one neither completed, failed (with a reason) nor waiting for a person at the end;
- failed without a reason;
- side effects repeated without asking: a POST seen by the ledger more often than once plus
  the number of `interrupted` approvals this script approved for that step;
- schedule ticks fired twice;
- idle RSS of the last gateway after the load ended, against its idle RSS at its start.

Run: `.venv/bin/python bench/soak.py [--kills N] [--backend sqlite|postgres --nodes 2]
[--seed S] [--json]`. PostgreSQL needs `--database-url` or HEARTH_TEST_DATABASE_URL (a
throwaway database is created there and dropped at the end).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
DRAIN_TIMEOUT_S = 180.0
TERMINAL = {"completed", "failed", "cancelled"}
TARGET_RSS_MB = 5.0

CONFIG = """\
[workflows]
lease_s = 2
recovery_interval_s = 0.3

[tools.http]
allow = ["127.0.0.1"]
"""

WORKFLOWS = {
    "soak-pay": """\
        name: Soak pay
        steps:
          - id: look
            action: tool
            tool: http.request
            args: {{method: GET, url: "{url}/look/{{{{ execution.id }}}}"}}
            retry: {{attempts: 3, backoff: 100ms}}
          - id: pay
            action: tool
            tool: http.request
            approval_required: true
            args:
              method: POST
              url: "{url}/effect/{{{{ execution.id }}}}/pay"
              json: {{amount: 5}}
          - {{id: done, action: noop}}
        """,
    "soak-flaky": """\
        name: Soak flaky
        steps:
          - id: read
            action: tool
            tool: file.read
            args: {{path: maybe.txt}}
            retry: {{attempts: 3, backoff: 200ms}}
          - {{id: nap, action: wait, duration: 1s}}
          - id: post
            action: tool
            tool: http.request
            args: {{method: POST, url: "{url}/effect/{{{{ execution.id }}}}/post", json: {{n: 1}}}}
        """,
    "soak-tick": """\
        name: Soak tick
        steps:
          - id: tick
            action: tool
            tool: http.request
            args: {{method: POST, url: "{url}/effect/{{{{ execution.id }}}}/tick"}}
          - {{id: nap, action: wait, duration: 500ms}}
        """,
}


# --------------------------------------------------------------------------- the ledger


class Ledger:
    """The external service the workflows call: it counts every POST (the side effects).

    It answers after a random short delay, so kills land inside tool calls as well as between
    them.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.effects: Counter[str] = Counter()
        self.keys: dict[str, list[str | None]] = {}
        self.reads = 0
        self._server: asyncio.Server | None = None
        self.url = ""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            lines = head.split("\r\n")
            method, path = lines[0].split()[:2]
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (x.partition(":") for x in lines[1:] if x)
            }
            await reader.readexactly(int(headers.get("content-length", "0")))
            if method == "POST":
                self.effects[path] += 1
                self.keys.setdefault(path, []).append(headers.get("idempotency-key"))
            else:
                self.reads += 1
            await asyncio.sleep(self.rng.random() * 0.3)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)


# --------------------------------------------------------------------------- the gateways


@dataclass
class Node:
    """One gateway's data directory and its current process (a new one after each kill)."""

    name: str
    data_dir: Path
    workdir: Path
    database_url: str | None
    started: list[common.Child]
    child: common.Child | None = None
    lives: int = 0

    def start(self) -> None:
        args = common.gateway_args(self.data_dir)
        if self.database_url:
            args += ["--database-url", self.database_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        self.lives += 1
        self.child = common.spawn(
            f"{self.name}-{self.lives}", args, self.workdir, self.started, env=env
        )

    def wait_ready(self) -> common.Endpoint:
        """Until this life has written runtime.json (the last life's file stays after a kill)."""
        child = self.child
        assert child is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            child.check_alive()
            with contextlib.suppress(OSError, ValueError, KeyError):
                runtime = json.loads((self.data_dir / "runtime.json").read_text())
                if runtime["pid"] == child.process.pid:
                    return common.gateway_endpoint(self.data_dir)
            time.sleep(0.05)
        raise RuntimeError(
            f"{child.name} not ready within {START_TIMEOUT_S:.0f} s:\n{child.log_tail()}"
        )

    def kill(self) -> None:
        child = self.child
        assert child is not None
        child.check_alive()  # it must have been alive to be killed: a crash is a finding
        child.process.send_signal(signal.SIGKILL)
        child.process.wait(STOP_TIMEOUT_S)

    def http_url(self) -> str:
        runtime = json.loads((self.data_dir / "runtime.json").read_text())
        return str(runtime["url"])

    def token(self) -> str:
        return (self.data_dir / "gateway.token").read_text().strip()


async def client_for(node: Node) -> Any:
    from hearth.client import GatewayClient

    await asyncio.to_thread(node.wait_ready)
    client = GatewayClient(node.http_url(), node.token(), client_name="hearth-soak")
    await client.connect()
    return client


# --------------------------------------------------------------------------- the run


@dataclass
class Book:
    """What the script knows happened: triggered executions and the approvals it gave."""

    triggered: dict[str, str] = field(default_factory=dict)  # execution id -> workflow
    trigger_errors: Counter[str] = field(default_factory=Counter)
    approvals: Counter[str] = field(default_factory=Counter)  # kind:answer -> count
    reruns_allowed: Counter[str] = field(default_factory=Counter)  # "exec/step" -> approved
    schedule_id: str | None = None


async def trigger_some(node: Node, rng: random.Random, book: Book, count: int) -> None:
    from hearth.client import GatewayError
    from hearth.protocol.messages.workflows import WorkflowTrigger, WorkflowTriggered

    client = await client_for(node)
    try:
        for _ in range(count):
            workflow = rng.choice(("soak-pay", "soak-pay", "soak-flaky"))
            try:
                reply = await client.request(
                    WorkflowTrigger(id=client.next_id(), workflow_id=workflow),
                    WorkflowTriggered,
                )
            except GatewayError as exc:
                book.trigger_errors[f"{exc.code}: {exc}"[:200]] += 1
                continue
            book.triggered[reply.execution_id] = workflow
    finally:
        await client.close()


async def answer_pending(
    node: Node, rng: random.Random, book: Book, approve_all: bool = False
) -> int:
    """Answer every pending workflow approval from a fresh connection; how many were pending."""
    from hearth.client import GatewayError
    from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
    from hearth.protocol.messages.workflows import WorkflowApproval, WorkflowApprovalResolved

    client = await client_for(node)
    try:
        pending = await client.request(ApprovalList(id=client.next_id()), ApprovalListResult)
        for item in pending.approvals:
            if item.execution_id is None or item.step_id is None:
                continue
            approve = approve_all or rng.random() < (0.5 if item.kind == "interrupted" else 0.8)
            try:
                await client.request(
                    WorkflowApproval(
                        id=client.next_id(),
                        execution_id=item.execution_id,
                        step_id=item.step_id,
                        approved=approve,
                        comment=None if approve else "soak: denied",
                    ),
                    WorkflowApprovalResolved,
                )
            except GatewayError as exc:
                # Another node or an expiry answered first: not ours to count.
                book.approvals[f"refused:{exc.code}"] += 1
                continue
            book.approvals[f"{item.kind}:{'approved' if approve else 'denied'}"] += 1
            if approve and item.kind == "interrupted":
                book.reruns_allowed[f"{item.execution_id}/{item.step_id}"] += 1
        return len(pending.approvals)
    finally:
        await client.close()


async def create_schedule(node: Node, book: Book) -> None:
    from hearth.protocol.messages.schedules import ScheduleCreate, ScheduleCreated

    client = await client_for(node)
    try:
        reply = await client.request(
            ScheduleCreate(
                id=client.next_id(), name="soak tick", every="1s", workflow_id="soak-tick"
            ),
            ScheduleCreated,
        )
        book.schedule_id = reply.schedule_id
    finally:
        await client.close()


async def disable_schedule(node: Node, book: Book) -> None:
    from hearth.protocol.messages.schedules import ScheduleUpdate, ScheduleUpdated

    assert book.schedule_id is not None
    client = await client_for(node)
    try:
        await client.request(
            ScheduleUpdate(id=client.next_id(), schedule_id=book.schedule_id, enabled=False),
            ScheduleUpdated,
        )
    finally:
        await client.close()


async def executions(node: Node) -> dict[str, Any]:
    """Every execution the database holds, by id (per workflow and status, under the limit)."""
    from hearth.protocol.messages.workflows import (
        WorkflowExecutionList,
        WorkflowExecutionListResult,
    )

    found: dict[str, Any] = {}
    client = await client_for(node)
    try:
        for workflow in WORKFLOWS:
            for status in ("running", "paused", "completed", "failed", "cancelled"):
                reply = await client.request(
                    WorkflowExecutionList(
                        id=client.next_id(), workflow_id=workflow, status=status, limit=1000
                    ),
                    WorkflowExecutionListResult,
                )
                if len(reply.executions) >= 1000:
                    raise RuntimeError(f"more than 1000 {status} {workflow} executions")
                for item in reply.executions:
                    found[item.id] = item
    finally:
        await client.close()
    return found


async def schedule_runs(node: Node, book: Book) -> list[Any]:
    from hearth.protocol.messages.schedules import ScheduleRuns, ScheduleRunsResult

    assert book.schedule_id is not None
    client = await client_for(node)
    try:
        reply = await client.request(
            ScheduleRuns(id=client.next_id(), schedule_id=book.schedule_id, limit=1000),
            ScheduleRunsResult,
        )
        return list(reply.runs)
    finally:
        await client.close()


async def drain(node: Node, rng: random.Random, book: Book) -> dict[str, Any]:
    """Answer approvals until no execution runs or waits; what is left after the deadline."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while True:
        await answer_pending(node, rng, book, approve_all=True)
        found = await executions(node)
        open_ = [e for e in found.values() if e.status not in TERMINAL]
        if not open_ or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


def _quiet_logs() -> None:
    import logging

    logging.getLogger("hearth").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)


async def soak(
    args: argparse.Namespace, workdir: Path, started: list[common.Child]
) -> dict[str, Any]:
    _quiet_logs()
    rng = random.Random(args.seed)
    ledger = Ledger(random.Random(args.seed + 1))
    await ledger.start()
    database_url = args.database_url if args.backend == "postgres" else None
    nodes = []
    for i in range(args.nodes):
        data_dir = workdir / f"node{i}"
        (data_dir / "workspace").mkdir(parents=True)
        (data_dir / "config.toml").write_text(CONFIG)
        for name, text in WORKFLOWS.items():
            (data_dir / "workflows").mkdir(exist_ok=True)
            (data_dir / "workflows" / f"{name}.yaml").write_text(
                textwrap.dedent(text.format(url=ledger.url))
            )
        nodes.append(Node(f"gateway{i}", data_dir, workdir, database_url, started))
    book = Book()
    began = time.perf_counter()
    try:
        for node in nodes:
            node.start()
        await create_schedule(nodes[0], book)
        crashes = 0
        for kill in range(args.kills):
            victim = rng.choice(nodes)
            others = [n for n in nodes if n is not victim] or [victim]
            for node in nodes:
                maybe = node.data_dir / "workspace" / "maybe.txt"
                if rng.random() < 0.5:
                    maybe.write_text("here")
                else:
                    maybe.unlink(missing_ok=True)
            await trigger_some(rng.choice(nodes), rng, book, rng.randint(1, args.per_cycle))
            await answer_pending(rng.choice(others), rng, book)
            await asyncio.sleep(rng.uniform(0, args.max_pause))
            try:
                victim.kill()
            except RuntimeError as exc:
                crashes += 1
                print(f"kill {kill}: the gateway had already died: {exc}", file=sys.stderr)
            victim.start()
            if not args.json:
                print(
                    f"\rkill {kill + 1}/{args.kills}, executions {len(book.triggered)}, "
                    f"effects {sum(ledger.effects.values())}",
                    end="",
                    flush=True,
                )
        if not args.json:
            print()
        await disable_schedule(nodes[0], book)
        # The last life: idle RSS before and after a final load on every node. "Before" is
        # after a small warm-up load, so that what every process builds once (lazily imported
        # modules, compiled templates and validators) is not counted as growth.
        await trigger_some(nodes[0], rng, book, max(1, args.final_load // 5))
        await drain(nodes[0], rng, book)
        await asyncio.sleep(args.settle)
        rss_start = {n.name: n.child.rss() for n in nodes if n.child}
        await trigger_some(nodes[0], rng, book, args.final_load)
        found = await drain(nodes[0], rng, book)
        await asyncio.sleep(args.settle)
        rss_idle = {n.name: n.child.rss() for n in nodes if n.child}
        runs = await schedule_runs(nodes[0], book)
        for node in nodes:
            if node.child is not None and node.child.process.poll() is not None:
                crashes += 1
    finally:
        await ledger.stop()
    elapsed = time.perf_counter() - began

    statuses = Counter(e.status for e in found.values())
    lost = sorted(set(book.triggered) - set(found))
    stuck = [
        e.id
        for e in found.values()
        if e.status not in TERMINAL and not (e.status == "paused" and e.waiting_for == "approval")
    ]
    waiting = [e.id for e in found.values() if e.status == "paused" and e.waiting_for == "approval"]
    no_reason = [e.id for e in found.values() if e.status == "failed" and not e.error]
    repeated: dict[str, int] = {}
    repeated_keys: dict[str, list[str | None]] = {}
    asked = 0
    for path, count in ledger.effects.items():
        parts = path.strip("/").split("/")  # effect/<execution>/<step>
        key = f"{parts[1]}/{parts[2]}" if len(parts) == 3 else path
        allowed = 1 + book.reruns_allowed[key]
        if count > 1:
            asked += min(count, allowed) - 1
        if count > allowed:
            repeated[path] = count
            # The Idempotency-Keys tell a re-run of the same attempt from a new attempt.
            repeated_keys[path] = ledger.keys.get(path, [])
    ticks = [r.scheduled_for for r in runs if r.status != "missed"]
    double_ticks = len(ticks) - len(set(ticks))
    failure_reasons = Counter(
        (e.error or "")[:90] for e in found.values() if e.status == "failed"
    ).most_common(6)
    rss_growth = {name: round((rss_idle[name] - rss_start[name]) / 1e6, 1) for name in rss_start}
    return {
        "seed": args.seed,
        "backend": args.backend,
        "nodes": args.nodes,
        "kills": args.kills,
        "crashes": crashes,
        "seconds": round(elapsed, 1),
        "executions": len(found),
        "triggered_by_script": len(book.triggered),
        "statuses": dict(statuses),
        "lost": len(lost),
        "stuck": len(stuck),
        "waiting_for_a_person": len(waiting),
        "failed_without_reason": len(no_reason),
        "failure_reasons": failure_reasons,
        "side_effects": sum(ledger.effects.values()),
        "reruns_after_asking": asked,
        "repeated_without_asking": len(repeated),
        "schedule_runs": len(ticks),
        "schedule_ticks_fired_twice": double_ticks,
        "approvals": dict(book.approvals),
        "trigger_errors": dict(book.trigger_errors),
        "rss_mb": {
            "start": {k: round(v / 1e6, 1) for k, v in rss_start.items()},
            "idle_after_load": {k: round(v / 1e6, 1) for k, v in rss_idle.items()},
            "growth": rss_growth,
        },
        "examples": {
            "lost": lost[:5],
            "stuck": stuck[:5],
            "repeated": dict(list(repeated.items())[:5]),
        },
        "targets": {
            "0 lost": not lost,
            "0 stuck": not stuck,
            "0 failed without a reason": not no_reason,
            "0 repeated without asking": not repeated,
            "0 ticks fired twice": double_ticks == 0,
            "0 crashes": crashes == 0,
            "idle RSS within 5 MB": all(g <= TARGET_RSS_MB for g in rss_growth.values()),
        },
        "load": str(os.getloadavg()),
        "machine": common.machine(),
    }


def print_text(s: dict[str, Any]) -> None:
    print(f"seed {s['seed']} | load {s['load']} | {common.machine_line(s['machine'])}")
    print(
        f"{s['backend']}, {s['nodes']} node(s): {s['kills']} SIGKILLs in {s['seconds']} s, "
        f"{s['crashes']} crashes"
    )
    print(
        f"executions {s['executions']} ({s['triggered_by_script']} triggered by the script, "
        f"the rest by the schedule): {s['statuses']}"
    )
    print(
        f"lost {s['lost']} | stuck {s['stuck']} | waiting for a person {s['waiting_for_a_person']}"
        f" | failed without a reason {s['failed_without_reason']}"
    )
    print(
        f"side effects {s['side_effects']}: re-run after an approved `interrupted` question "
        f"{s['reruns_after_asking']}, repeated without asking {s['repeated_without_asking']}"
    )
    print(
        f"schedule runs {s['schedule_runs']}, ticks fired twice {s['schedule_ticks_fired_twice']}"
    )
    print(f"approvals answered: {s['approvals']}")
    if s["trigger_errors"]:
        print(f"trigger errors: {s['trigger_errors']}")
    print(f"failure reasons: {s['failure_reasons']}")
    r = s["rss_mb"]
    print(f"RSS MB: idle at start {r['start']}, idle after the load {r['idle_after_load']}")
    for name, ok in s["targets"].items():
        print(f"  {name}: {common.verdict(ok)}")
    if any(s["examples"].values()):
        print(f"examples: {s['examples']}")


async def _postgres(base: str) -> tuple[str, str]:
    import asyncpg
    from sqlalchemy.engine import make_url

    name = f"hearth_soak_{secrets.token_hex(5)}"
    dsn = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return make_url(base).set(database=name).render_as_string(hide_password=False), dsn


async def _drop(dsn: str, url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await admin.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--kills", type=int, default=100, help="SIGKILLs (100)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--nodes", type=int, default=1, help="gateway processes (PostgreSQL)")
    parser.add_argument("--database-url", default=os.environ.get("HEARTH_TEST_DATABASE_URL"))
    parser.add_argument("--per-cycle", type=int, default=4, help="most triggers per cycle")
    parser.add_argument("--max-pause", type=float, default=2.0, help="longest run before a kill")
    parser.add_argument("--final-load", type=int, default=100, help="triggers in the last life")
    parser.add_argument("--settle", type=float, default=3.0, help="idle seconds before RSS")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    if args.nodes > 1 and args.backend != "postgres":
        parser.error("--nodes above 1 needs --backend postgres (SQLite has one gateway)")
    if args.backend == "postgres" and not args.database_url:
        parser.error("--backend postgres needs --database-url or HEARTH_TEST_DATABASE_URL")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, common.exit_on_sigterm)
    if not args.json:
        print(f"soak seed {args.seed} (reproduce with --seed {args.seed})", flush=True)
    admin_dsn = None
    if args.backend == "postgres":
        args.database_url, admin_dsn = asyncio.run(_postgres(args.database_url))
    try:
        with (
            tempfile.TemporaryDirectory(prefix="hearth-soak-") as tmp,
            common.stopping(STOP_TIMEOUT_S) as started,
        ):
            summary = asyncio.run(soak(args, Path(tmp), started))
    finally:
        if admin_dsn is not None:
            asyncio.run(_drop(admin_dsn, args.database_url))
    common.emit(summary, args.json, print_text)
    return 0 if all(summary["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
