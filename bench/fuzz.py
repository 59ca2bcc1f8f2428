"""Protocol fuzz against a real gateway process: every request answered exactly once, no leak.

What it sends (seeded, so a failure is reproduced with `--seed`): random JSON of every shape,
valid messages of every family with one field mutated (wrong types, huge and deeply nested
values, unicode with escaped lone surrogates, missing, duplicated and over-long ids, unknown
types), binary frames, and frames exactly at the gateway's size limit. Frames over the limit and
text frames that are not UTF-8 end their connection by design (1009, 1007), so each goes on a
short-lived connection of its own and is checked for exactly that close.

What it checks:

- every frame on a kept connection gets exactly one reply (an error or a result) carrying the id
  the gateway can read from it (none when the frame has no usable id); missing, duplicate and
  unexpected replies are counted per id;
- no kept connection closes unexpectedly and the gateway process stays alive;
- the gateway's RSS before any load, after a warm-up, and at the end: growth after the warm-up
  is the leak figure (target <= 10 MB over 100 000 frames).

`--trace` runs the gateway under tracemalloc and prints the allocation sites that grew most
between the warm-up and the end (diffed by traceback): how the growth of issue 18 was found.

Run: `.venv/bin/python bench/fuzz.py [--frames N] [--connections C] [--seed S] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import string
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common

MAX_FRAME_BYTES = 1024 * 1024  # the gateway's default `limits.max_frame_bytes`
WINDOW = 32  # requests in flight per connection (the gateway runs up to 64 at once)
REPLY_TIMEOUT_S = 60.0  # no reply for this long on a connection with requests open: stuck
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
TARGET_GROWTH_MB = 10.0
#: A workflow the fuzzer may trigger: one quick tool step, so triggers do real work.
FUZZ_WORKFLOW = """\
name: Fuzz no-op
inputs:
  note:
    type: string
    default: ""
steps:
  - id: say
    action: tool
    tool: notify
    args:
      level: info
      message: "fuzz {{ input.note | truncate(40) }}"
"""
WORKFLOW_ID = "fuzz-noop"

#: Close codes that are the right answer to a frame over the limit or not UTF-8.
OVERSIZE_CLOSE = 1009
BAD_UTF8_CLOSE = 1007


# --------------------------------------------------------------------------- frames


@dataclass
class Frame:
    """One frame to send and the id its single reply must carry (None: no usable id)."""

    data: str | bytes
    reply_id: str | None
    kind: str


class FrameMaker:
    """Seeded frames of every kind; `reply_id` is what the gateway can read back from each."""

    def __init__(self, rng: random.Random, max_frame: int) -> None:
        self.rng = rng
        self.max_frame = max_frame
        self.counter = 0
        self.recent_ids: list[str] = []
        self.execution_ids: list[str] = ["e-unknown"]
        self.schedule_ids: list[str] = ["s-unknown"]
        self.session_ids: list[str] = ["sess-unknown"]

    # -- ids and values

    def new_id(self) -> str:
        self.counter += 1
        value = f"f{self.counter}"
        self.recent_ids.append(value)
        if len(self.recent_ids) > 64:
            del self.recent_ids[:32]
        return value

    def text(self, n: int | None = None) -> str:
        """Unicode of every plane: ASCII, accents, CJK, emoji, RTL, controls, NUL."""
        rng = self.rng
        n = rng.randint(0, 40) if n is None else n
        pools = (
            string.printable,
            "éüßøñçåΩЖ",
            "漢字かなカナ한글",
            "😀🚀🧪👩‍💻🏳️‍🌈",
            "\u202e\u200b\u200d\ufeff",
            "\x00\x01\x1f\x7f",
            '"\\/{}[]',
        )
        return "".join(rng.choice(rng.choice(pools)) for _ in range(n))

    def scalar(self) -> Any:
        rng = self.rng
        return rng.choice(
            [
                None,
                True,
                False,
                rng.randint(-(2**31), 2**31),
                rng.randint(-(10**30), 10**30),
                rng.random() * 10 ** rng.randint(-10, 300),
                self.text(),
                "",
            ]
        )

    def value(self, depth: int = 0) -> Any:
        rng = self.rng
        roll = rng.random()
        if depth > 3 or roll < 0.6:
            return self.scalar()
        if roll < 0.8:
            return [self.value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {self.key(): self.value(depth + 1) for _ in range(rng.randint(0, 4))}

    def key(self) -> str:
        """A random object key; never `id`, so random JSON has no id the gateway could read."""
        key = self.text(self.rng.randint(0, 8))
        return key if key != "id" else "id_"

    def deep(self, depth: int) -> str:
        kind = self.rng.choice(("[", '{"a":'))
        close = "]" if kind == "[" else "}"
        return kind * depth + "1" + close * depth

    # -- valid messages of every family

    def valid(self, msg_id: str) -> dict[str, Any]:
        rng = self.rng
        m: dict[str, Any]
        kind = rng.choice(
            (
                "ping",
                "gateway.status",
                "workflow.list",
                "workflow.trigger",
                "workflow.trigger",
                "workflow.execution.list",
                "workflow.execution.get",
                "workflow.cancel",
                "workflow.approval",
                "approval.list",
                "schedule.list",
                "schedule.create",
                "schedule.runs",
                "schedule.trigger",
                "schedule.preview",
                "schedule.update",
                "schedule.delete",
                "chat.send",
                "chat.cancel",
                "session.list",
                "session.history",
                "session.delete",
                "usage.query",
                "tool.approval.response",
                "notification.list",
                "heartbeat.status",
                "heartbeat.alert.list",
                "models.list",
                "telegram.status",
            )
        )
        m = {"type": kind, "id": msg_id}
        if kind == "workflow.trigger":
            m["workflowId"] = rng.choice((WORKFLOW_ID, WORKFLOW_ID, "no-such-workflow"))
            m["input"] = {"note": self.text(10)}
        elif kind == "workflow.execution.list":
            m["limit"] = rng.randint(1, 20)
        elif kind in ("workflow.execution.get", "workflow.cancel"):
            m["executionId"] = rng.choice(self.execution_ids)
        elif kind == "workflow.approval":
            m.update(executionId=rng.choice(self.execution_ids), stepId="say", approved=True)
        elif kind == "schedule.create":
            m.update(name=f"fuzz {self.text(8)}", every="1h", workflowId=WORKFLOW_ID)
            m["enabled"] = False
        elif kind in ("schedule.runs", "schedule.trigger", "schedule.delete"):
            m["scheduleId"] = rng.choice(self.schedule_ids)
        elif kind == "schedule.update":
            m.update(scheduleId=rng.choice(self.schedule_ids), name=f"fuzz {self.text(8)}")
        elif kind == "schedule.preview":
            m.update(cronExpression="*/5 * * * *", count=rng.randint(1, 20))
        elif kind == "chat.send":
            m["content"] = self.text(30) or "hello"
        elif kind == "chat.cancel":
            m["requestId"] = rng.choice(self.recent_ids or ["x"])
        elif kind in ("session.history", "session.delete"):
            m["sessionId"] = rng.choice(self.session_ids)
        elif kind == "tool.approval.response":
            m.update(toolCallId=self.text(5) or "t", approved=rng.random() < 0.5)
        return m

    # -- the mix

    def frame(self) -> Frame:
        rng = self.rng
        roll = rng.random()
        if roll < 0.40:
            msg_id = self.new_id()
            return Frame(dumps(self.valid(msg_id), rng), msg_id, "valid")
        if roll < 0.75:
            return self.mutated()
        if roll < 0.88:
            return Frame(dumps(self.value(), rng), None, "random-json")
        if roll < 0.93:
            return Frame(self.garbage(), None, "not-json")
        if roll < 0.985:
            return Frame(rng.randbytes(rng.randint(0, 200)), None, "binary")
        if roll < 0.9995:
            return self.deep_frame()
        return self.at_limit()

    def garbage(self) -> str:
        text = self.text(self.rng.randint(1, 60))
        return text if text.strip()[:1] not in ("{", "[") else "x" + text

    def mutated(self) -> Frame:
        rng = self.rng
        msg_id = self.new_id()
        m = self.valid(msg_id)
        how = rng.choice(
            (
                "wrong-type",
                "huge-string",
                "huge-array",
                "unicode",
                "lone-surrogate",
                "missing-id",
                "duplicate-id",
                "id-wrong-type",
                "id-too-long",
                "unknown-type",
                "missing-type",
                "extra-field",
                "null-field",
            )
        )
        reply_id: str | None = msg_id
        fields = [k for k in m if k not in ("type", "id")]
        if how == "wrong-type":
            target = rng.choice(fields or ["type"])
            m[target] = rng.choice(([], {}, 1.5, -1, True, None, [self.value()], {"x": 1}))
            if target == "type":
                # A type that is not a string: the id is still read back.
                pass
        elif how == "huge-string":
            m[rng.choice(fields or ["extra"])] = "x" * rng.randint(10_000, 200_000)
        elif how == "huge-array":
            m[rng.choice(fields or ["extra"])] = list(range(rng.randint(1_000, 50_000)))
        elif how == "unicode":
            m[rng.choice(fields or ["extra"])] = self.text(rng.randint(1, 500))
        elif how == "lone-surrogate":
            # Escaped in JSON (a raw one cannot be sent as UTF-8 at all).
            target = rng.choice([*fields, "id"])
            m[target] = "a" + chr(rng.randint(0xD800, 0xDFFF)) + "b"
            if target == "id":
                reply_id = None
        elif how == "missing-id":
            del m["id"]
            reply_id = None
        elif how == "duplicate-id" and self.recent_ids:
            reply_id = m["id"] = rng.choice(self.recent_ids)
        elif how == "id-wrong-type":
            m["id"] = rng.choice((7, 1.5, None, True, [], {"id": "x"}))
            reply_id = None
        elif how == "id-too-long":
            m["id"] = "i" * rng.randint(129, 5000)
            reply_id = None
        elif how == "unknown-type":
            m["type"] = rng.choice(("nope", "workflow.nope", "", self.text(12), "hello.ok"))
        elif how == "missing-type":
            del m["type"]
        elif how == "extra-field":
            m[self.key() or "k"] = self.value()
        elif how == "null-field":
            m[rng.choice(fields or ["type"])] = None
        return Frame(dumps(m, rng), reply_id, f"mutated:{how}")

    def deep_frame(self) -> Frame:
        """A value nested far deeper than any parser's default recursion limit allows."""
        msg_id = self.new_id()
        depth = self.rng.choice((50, 500, 5_000, 100_000))
        head = dumps({"type": "ping", "id": msg_id}, self.rng)[:-1]
        return Frame(f'{head},"extra":{self.deep(depth)}}}', msg_id, "deep")

    def at_limit(self) -> Frame:
        """A frame of exactly the size limit: it must be read and answered, not refused."""
        msg_id = self.new_id()
        head = f'{{"type":"ping","id":"{msg_id}","pad":"'
        tail = '"}'
        pad = self.max_frame - len(head) - len(tail)
        return Frame(head + "y" * pad + tail, msg_id, "at-limit")

    def closing(self) -> tuple[bytes | str, int, str]:
        """A frame that ends its connection by design, and the close code that must follow."""
        if self.rng.random() < 0.5:
            size = self.max_frame + self.rng.choice((1, 1000, 500_000))
            return '{"type":"ping","id":"big","pad":"' + "z" * size + '"}', OVERSIZE_CLOSE, "over"
        return b'{"type":"ping","id":"\xff\xfe"}', BAD_UTF8_CLOSE, "bad-utf8"

    def learn(self, reply: dict[str, Any]) -> None:
        """Use ids from replies in later frames, so gets and deletes hit real rows too."""
        for key, pool in (
            ("executionId", self.execution_ids),
            ("sessionId", self.session_ids),
        ):
            value = reply.get(key)
            if isinstance(value, str) and value not in pool:
                pool.append(value)
                if len(pool) > 200:
                    del pool[1:100]
        value = reply.get("scheduleId")
        if reply.get("type") == "schedule.created" and isinstance(value, str):
            self.schedule_ids.append(value)
            if len(self.schedule_ids) > 200:
                del self.schedule_ids[1:100]


def dumps(value: Any, rng: random.Random) -> str:
    """JSON with non-ASCII sent raw or as escapes, as different clients do.

    Lone surrogates can only travel escaped (`\\ud800`): raw, they are not UTF-8.
    """
    text = json.dumps(value, ensure_ascii=bool(rng.getrandbits(1)), separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"))
    return text


# --------------------------------------------------------------------------- the run


@dataclass
class Tally:
    frames: int = 0
    replies: int = 0
    events: int = 0
    missing: int = 0
    duplicate: int = 0
    unexpected: int = 0
    unexpected_closes: int = 0
    closing_frames: int = 0
    closing_wrong: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    codes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)


class Session:
    """One kept connection: sends frames with a window and matches every reply to a frame."""

    def __init__(self, ws: Any, maker: FrameMaker, tally: Tally, name: str) -> None:
        self.ws = ws
        self.maker = maker
        self.tally = tally
        self.name = name
        self.expected: Counter[str | None] = Counter()
        self.received: Counter[str | None] = Counter()
        self.open = 0
        self.progress = asyncio.Event()
        self.closed: str | None = None

    async def reader(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in self.ws:
                reply = json.loads(raw)
                if "seq" in reply:
                    self.tally.events += 1
                    continue
                self.tally.replies += 1
                self.tally.codes[str(reply.get("code") or reply.get("type"))] += 1
                self.received[reply.get("id")] += 1
                self.open -= 1
                self.maker.learn(reply)
                self.progress.set()
        except ConnectionClosed as exc:
            self.closed = f"closed {exc.rcvd.code if exc.rcvd else 'without a close frame'}"
        self.closed = self.closed or "closed"
        self.progress.set()

    async def send(self, frame: Frame) -> None:
        while self.open >= WINDOW:
            await self.wait_progress()
        self.expected[frame.reply_id] += 1
        self.open += 1
        self.tally.frames += 1
        self.tally.kinds[frame.kind] += 1
        await self.ws.send(frame.data)

    async def wait_progress(self) -> None:
        if self.closed:
            raise ConnectionError(f"{self.name} {self.closed} with {self.open} requests open")
        self.progress.clear()
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            await self.progress.wait()

    async def drain(self) -> None:
        while self.open > 0:
            await self.wait_progress()

    def settle(self) -> None:
        for key in set(self.expected) | set(self.received):
            want, got = self.expected[key], self.received[key]
            if got < want:
                self.tally.missing += want - got
                self.tally.problem(f"{self.name}: {want - got} missing replies to id {key!r}")
            elif got > want and want > 0:
                self.tally.duplicate += got - want
                self.tally.problem(f"{self.name}: {got - want} extra replies to id {key!r}")
            elif got > want:
                self.tally.unexpected += got
                self.tally.problem(f"{self.name}: {got} replies to id {key!r} never sent")


async def connect(endpoint: common.Endpoint) -> Any:
    return await common.open_session(
        endpoint.url, endpoint.token, open_timeout=30, reply_timeout=30, close_timeout=10
    )


async def run_session(
    endpoint: common.Endpoint, maker: FrameMaker, tally: Tally, name: str, count: int
) -> None:
    from websockets.exceptions import ConnectionClosed

    ws = await connect(endpoint)
    session = Session(ws, maker, tally, name)
    reading = asyncio.create_task(session.reader())
    try:
        for _ in range(count):
            await session.send(maker.frame())
        await session.drain()
    except (ConnectionError, OSError, ConnectionClosed) as exc:
        tally.unexpected_closes += 1
        tally.problem(f"{name}: {type(exc).__name__}: {exc}")
    finally:
        session.settle()
        await ws.close()
        await reading


async def closing_frame(endpoint: common.Endpoint, maker: FrameMaker, tally: Tally) -> None:
    """Send one frame that must end the connection with a known close code, and check it."""
    from websockets.exceptions import ConnectionClosed

    data, code, kind = maker.closing()
    ws = await connect(endpoint)
    tally.closing_frames += 1
    tally.kinds[f"closing:{kind}"] += 1
    got: int | None = None
    try:
        if isinstance(data, bytes):
            # websockets refuses to send invalid UTF-8 as text; build the frame by hand.
            from websockets.frames import Frame as WsFrame
            from websockets.frames import Opcode

            ws.protocol.send_frame(WsFrame(Opcode.TEXT, data))
            ws.send_data()
        else:
            await ws.send(data)
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            async for raw in ws:
                if "seq" not in json.loads(raw):  # events to every connection are fine
                    tally.problem(f"closing frame {kind} was answered: {str(raw)[:200]}")
    except ConnectionClosed:
        pass
    except TimeoutError:
        tally.problem(f"closing frame {kind}: no close within {REPLY_TIMEOUT_S:.0f} s")
    rcvd = ws.protocol.close_rcvd
    got = rcvd.code if rcvd is not None else None
    if got != code:
        tally.closing_wrong += 1
        tally.problem(f"closing frame {kind}: closed with {got}, expected {code}")
    await ws.close()


async def phase(
    endpoint: common.Endpoint,
    maker: FrameMaker,
    tally: Tally,
    frames: int,
    connections: int,
    closing_every: int,
    label: str,
) -> None:
    per = [
        frames // connections + (1 if i < frames % connections else 0) for i in range(connections)
    ]
    jobs = [run_session(endpoint, maker, tally, f"{label}-c{i}", n) for i, n in enumerate(per) if n]
    jobs += [closing_frame(endpoint, maker, tally) for _ in range(frames // closing_every)]
    await asyncio.gather(*jobs)


# --------------------------------------------------------------------------- the gateway


def pymalloc_stats(path: Path) -> dict[str, int]:
    """pymalloc's own totals (arenas, bytes in used and free blocks), from its debug dump.

    RSS that grows while these stay flat is memory outside Python's small-object allocator.
    """
    import re

    sys.stderr.flush()
    saved = os.dup(2)
    with path.open("w") as out:
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    stats: dict[str, int] = {}
    for line in path.read_text().splitlines():
        found = re.match(r"#?\s*([a-z# ].*?)\s*=\s*([\d,]+)\s*$", line.strip())
        if found and ("arena" in line or "bytes in" in line):
            stats[f"(pymalloc {found.group(1).strip()})"] = int(found.group(2).replace(",", ""))
    return stats


def traced_gateway_main(data_dir: str, mode: str) -> None:
    """Child mode: `hearth serve`; each SIGUSR1 writes a heap snapshot after a full GC.

    `census` counts live objects by type (cheap, no tracing); `tracemalloc` records where
    live memory was allocated. Tracing starts at the first signal (after the warm-up), not at
    start-up: tracing every import makes start-up minutes long, and only what is allocated
    after the warm-up and still alive at the end is the growth being looked for.
    """
    import threading
    import tracemalloc
    from collections import Counter as Census

    count = 0
    trackers: list[Any] = []

    def dump(_signum: int, _frame: Any) -> None:
        nonlocal count
        gc.collect()
        path = Path(data_dir) / f"snapshot-{count}.{mode}"
        tmp = path.with_suffix(".tmp")
        if mode == "tracemalloc":
            if not tracemalloc.is_tracing():
                tracemalloc.start(25)
            tracemalloc.take_snapshot().dump(str(tmp))
        elif mode == "memray":
            # memray (in the `bench` extra, a diagnosis tool): native stacks of
            # what is allocated between the two signals and still alive at the second.
            import memray

            if not trackers:
                trackers.append(
                    memray.Tracker(str(Path(data_dir) / "memray.bin"), native_traces=True)
                )
                trackers[0].__enter__()
            else:
                trackers[0].__exit__(None, None, None)
            tmp.write_text("{}", encoding="utf-8")
        else:
            census = Census(type(o).__qualname__ for o in gc.get_objects())
            census["(allocated blocks)"] = sys.getallocatedblocks()
            census["(threads)"] = threading.active_count()
            census.update(pymalloc_stats(Path(data_dir) / f"mallocstats-{count}.txt"))
            tmp.write_text(json.dumps(census), encoding="utf-8")
        os.replace(tmp, path)
        count += 1

    signal.signal(signal.SIGUSR1, dump)
    from hearth.cli import main as hearth_main

    sys.argv = ["hearth", "serve", "--data-dir", data_dir, "--port", "0"]
    hearth_main()


def snapshot(child: common.Child, data_dir: Path, index: int, mode: str) -> Any:
    import tracemalloc

    os.kill(child.process.pid, signal.SIGUSR1)
    path = data_dir / f"snapshot-{index}.{mode}"
    deadline = time.monotonic() + 300
    while not path.exists():
        child.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {mode} snapshot within 300 s")
        time.sleep(0.2)
    if mode == "tracemalloc":
        return tracemalloc.Snapshot.load(str(path))
    if mode == "memray":
        return data_dir / "memray.bin"
    return Counter(json.loads(path.read_text(encoding="utf-8")))


def heap_growth(first: Any, last: Any, mode: str) -> list[str]:
    """The allocation sites (tracemalloc) or object types (census) that grew most."""
    lines: list[str] = []
    if mode == "memray":
        import memray

        by_stack: Counter[str] = Counter()
        threads: Counter[str] = Counter()
        with memray.FileReader(str(last)) as reader:
            for rec in reader.get_leaked_allocation_records(merge_threads=False):
                frames = rec.hybrid_stack_trace(max_stacks=14)
                where = " <- ".join(
                    f"{fn} {file.rsplit('/', 1)[-1]}:{ln}" for fn, file, ln in frames
                )
                by_stack[where] += rec.size
                threads[rec.thread_name] += rec.size
        lines.append(f"by thread: {[(t, round(n / 1e6, 2)) for t, n in threads.most_common(8)]}")
        for where, size in by_stack.most_common(12):
            lines.append(f"{size / 1e6:+.2f} MB {where}")
        return lines
    if mode == "tracemalloc":
        for stat in last.compare_to(first, "traceback")[:12]:
            lines.append(f"{stat.size_diff / 1e6:+.2f} MB {stat.count_diff:+d} blocks")
            lines.extend("    " + line for line in stat.traceback.format(limit=8))
        return lines
    diff = Counter({k: last[k] - first.get(k, 0) for k in last})
    return [f"{n:+d} {name}" for name, n in diff.most_common(25) if n > 0]


def memory_by_map(pid: int) -> dict[str, float]:
    """RSS in MB by mapping kind: `[heap]` is the main malloc arena, `[anon]` holds thread
    arenas and large allocations, the rest are files. It tells Python's heap from C's."""
    import psutil

    sizes: Counter[str] = Counter()
    for m in psutil.Process(pid).memory_maps(grouped=False):
        path = m.path or "[anon]"
        if path == "[anon]":
            start, _, end = m.addr.partition("-")
            size = int(end, 16) - int(start, 16)
            # glibc gives each thread arena a 64 MiB-aligned heap, of which the used part is
            # read-write (the rest PROT_NONE): such mappings start on a 64 MiB boundary.
            if int(start, 16) % (64 << 20) == 0 and size <= 64 << 20:
                path = "[anon: thread arenas]"
        key = path if path.startswith("[") else ("(files)" if "/" in path else path)
        sizes[key] += m.rss
    return {k: mb(v) for k, v in sizes.most_common(6)}


def prepare_data_dir(data_dir: Path) -> None:
    (data_dir / "workflows").mkdir(parents=True, exist_ok=True)
    (data_dir / "workflows" / f"{WORKFLOW_ID}.yaml").write_text(FUZZ_WORKFLOW, encoding="utf-8")


def mb(n: int) -> float:
    return round(n / 1e6, 1)


def load_line() -> str:
    return os.getloadavg().__repr__() if hasattr(os, "getloadavg") else "n/a"


async def fuzz(
    args: argparse.Namespace, workdir: Path, started: list[common.Child]
) -> dict[str, Any]:
    data_dir = workdir / "data"
    data_dir.mkdir()
    prepare_data_dir(data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    if args.malloc_arena_max:
        # The gateway leaves an operator's MALLOC_ARENA_MAX alone: glibc's default (8 per
        # core) gives the behaviour before issue 18's fix, as a baseline.
        env["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
    cmd = (
        common.script(__file__, "--serve-traced", str(data_dir), "--trace", args.trace)
        if args.trace
        else common.gateway_args(data_dir)
    )
    child = common.spawn("gateway", cmd, workdir, started, env=env)
    endpoint = await asyncio.to_thread(common.wait_for_gateway, child, data_dir, START_TIMEOUT_S)
    rng = random.Random(args.seed)
    maker = FrameMaker(rng, MAX_FRAME_BYTES)
    tally = Tally()
    await asyncio.sleep(1)
    rss_start = child.rss()
    warm = min(args.warmup, args.frames)
    began = time.perf_counter()
    await phase(endpoint, maker, tally, warm, args.connections, args.closing_every, "warm")
    rss_warm = child.rss()
    maps_warm = memory_by_map(child.process.pid)
    snaps = [snapshot(child, data_dir, 0, args.trace)] if args.trace else []
    rss_rounds: list[float] = []
    left = args.frames - warm
    rounds = max(1, args.rounds)
    for i in range(rounds):
        n = left // rounds + (1 if i < left % rounds else 0)
        await phase(endpoint, maker, tally, n, args.connections, args.closing_every, f"r{i}")
        child.check_alive()
        rss_rounds.append(mb(child.rss()))
    elapsed = time.perf_counter() - began
    rss_end = child.rss()
    maps_end = memory_by_map(child.process.pid)
    await asyncio.sleep(args.idle)
    rss_idle = child.rss()
    top: list[str] = []
    if args.trace:
        snaps.append(snapshot(child, data_dir, 1, args.trace))
        top = heap_growth(snaps[0], snaps[1], args.trace)
    crashed = child.process.poll() is not None
    cpu = child.cpu_seconds() if not crashed else float("nan")
    growth = mb(rss_end - rss_warm)
    exactly_once = not (tally.missing or tally.duplicate or tally.unexpected)
    return {
        "seed": args.seed,
        "frames": tally.frames + tally.closing_frames,
        "kept_frames": tally.frames,
        "closing_frames": tally.closing_frames,
        "closing_wrong": tally.closing_wrong,
        "replies": tally.replies,
        "events": tally.events,
        "missing": tally.missing,
        "duplicate": tally.duplicate,
        "unexpected": tally.unexpected,
        "unexpected_closes": tally.unexpected_closes,
        "crashed": crashed,
        "connections": args.connections,
        "malloc_arena_max": args.malloc_arena_max,
        "seconds": round(elapsed, 1),
        "gateway_cpu_s": round(cpu, 1),
        "rss_mb": {
            "start": mb(rss_start),
            "after_warmup": mb(rss_warm),
            "rounds": rss_rounds,
            "end": mb(rss_end),
            "idle": mb(rss_idle),
            "growth_after_warmup": growth,
            "by_map_after_warmup": maps_warm,
            "by_map_end": maps_end,
        },
        "targets": {
            "exactly_once": exactly_once,
            "no_crash_or_close": not crashed and not tally.unexpected_closes,
            "closing_frames_closed_right": not tally.closing_wrong,
            "growth_mb<=10": growth <= TARGET_GROWTH_MB,
        },
        "kinds": dict(sorted(tally.kinds.items())),
        "reply_codes": dict(tally.codes.most_common(25)),
        "problems": tally.problems,
        "trace_top": top,
        "gateway_log_tail": child.log_tail(40) if tally.problems or crashed else "",
        "load": load_line(),
        "machine": common.machine(),
    }


def print_text(s: dict[str, Any]) -> None:
    r = s["rss_mb"]
    print(f"seed {s['seed']} | load {s['load']} | {common.machine_line(s['machine'])}")
    print(
        f"frames {s['frames']} ({s['kept_frames']} on {s['connections']} kept connections, "
        f"{s['closing_frames']} closing ones) in {s['seconds']} s, "
        f"gateway CPU {s['gateway_cpu_s']} s"
    )
    print(
        f"replies {s['replies']} (+{s['events']} events) | missing {s['missing']} | duplicate "
        f"{s['duplicate']} | unexpected {s['unexpected']} | unexpected closes "
        f"{s['unexpected_closes']} | closing frames closed wrong {s['closing_wrong']} | "
        f"crashed {s['crashed']}"
    )
    print(
        f"RSS MB: start {r['start']}, after warm-up {r['after_warmup']}, rounds {r['rounds']}, "
        f"end {r['end']}, idle {r['idle']} -> growth after warm-up {r['growth_after_warmup']} MB"
    )
    print(f"  by mapping after warm-up {r['by_map_after_warmup']}")
    print(f"  by mapping at the end    {r['by_map_end']}")
    for name, ok in s["targets"].items():
        print(f"  {name}: {common.verdict(ok)}")
    for line in s["problems"]:
        print("  problem:", line)
    if s["gateway_log_tail"]:
        print("gateway log (tail):")
        print(s["gateway_log_tail"])
    if s["trace_top"]:
        print("heap growth between warm-up and end:")
        for line in s["trace_top"]:
            print(line)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=100_000, help="frames in all (100 000)")
    parser.add_argument("--connections", type=int, default=4, help="kept connections (4)")
    parser.add_argument("--warmup", type=int, default=10_000, help="frames before the RSS baseline")
    parser.add_argument("--rounds", type=int, default=5, help="RSS samples after the warm-up")
    parser.add_argument(
        "--closing-every", type=int, default=2_000, help="one over-limit/bad-UTF-8 frame per N"
    )
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run (default random)")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before the last RSS")
    parser.add_argument(
        "--trace",
        choices=("census", "tracemalloc", "memray"),
        help="what grew between warm-up and end: live objects by type, or allocation sites",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--malloc-arena-max",
        type=int,
        help="run the gateway with this MALLOC_ARENA_MAX (16 = glibc's default on 2 cores)",
    )
    parser.add_argument("--serve-traced", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**32)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_traced:
        traced_gateway_main(args.serve_traced, args.trace or "census")
        return 0
    signal.signal(signal.SIGTERM, common.exit_on_sigterm)
    if not args.json:
        print(f"fuzz seed {args.seed} (reproduce with --seed {args.seed})", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="hearth-fuzz-") as tmp,
        common.stopping(STOP_TIMEOUT_S) as started,
    ):
        summary = asyncio.run(fuzz(args, Path(tmp), started))
    common.emit(summary, args.json, print_text)
    return 0 if all(summary["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
