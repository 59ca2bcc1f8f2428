"""Chat streaming: a fast model's deltas through the gateway vs the same agent consumed directly.

What it measures: a fake model streams 2 000 small text deltas (`"tok "`) as fast as it can.
For each reply we time the first delta and the delta rate seen by

- **direct**: a pydantic-ai `Agent` in this process, consumed with an `event_stream_handler` of
  the same shape as `ChatService._stream`'s (text `PartStartEvent` / `PartDeltaEvent`);
- **gateway**: a WebSocket client of a Hearth gateway that sends `chat.send` and reads
  `chat.stream.delta` frames until `chat.stream.end`.

Why this shape:

- Both sides use the *same model*: the fake OpenAI-compatible server of the test suite
  (`tests/support/fake_openai.py`, standard mode, `Text(...)` with 2 000 chunks), configured as
  a provider (`[providers.local] kind = "openai"`, `[models] default = "local:fake-model"`) and
  resolved through `hearth.models.ModelFactory` on both sides, so both drive pydantic-ai's
  `OpenAIChatModel` and the `openai` SDK over real HTTP. The direct agent gets the gateway's
  instructions and the same tool definitions, so the model receives the same request; the
  benchmark checks that the request bodies are identical. The direct agent is built once, as a
  program using pydantic-ai would; the gateway builds one per `chat.send` (that is its cost).
- Three processes, so nobody under test shares an event loop with a load generator: the fake
  model server (a child process; it serves both sides), the gateway (a child process built
  and logged exactly as `hearth serve` builds it, SQLite in a temporary data directory), and
  this process, which runs the direct agent and the WebSocket client (raw `websockets` + `json`,
  so the client's own parsing costs as little as possible). The machine has 2 cores: during a
  gateway run the fake server, the gateway and the client share them, during a direct run the
  fake server and the agent do. CPU time of each process per run is reported. The fake model
  child freezes its start-up heap (`gc.freeze()`): it imports this file's modules, and a full
  collection of them once stalled a reply's first chunk by 80 ms, which is no model's latency.
- Direct and gateway runs alternate (after unmeasured warm-up runs of each), so both see the same
  minutes of machine noise. The order flips every pair (direct, gateway, gateway, direct, ...),
  so half the gateway replies are sent the moment the previous one ended and half after a
  direct run (about 0.4 s of quiet on the connection); the gateway's TTFD is shown for both.
  Every gateway run starts a new session (no `sessionId`), so neither side sends any history.
- Deltas are coalesced by the gateway (`ChatConfig.coalesce_s`, 5 ms), so throughput is compared
  in characters, not frames; "deltas/s" below is characters/s divided by the delta size.
  Throughput of one reply = characters after the first delta / (last delta - first delta).
- How long each delta waits inside the gateway: the gateway child wraps `_Deltas` (the
  coalescer) to record when each original delta reaches it and when it is published, using
  `time.monotonic()` (CLOCK_MONOTONIC, one clock for every process on the machine); the client
  records when each frame arrives. Matching by character offset gives, per delta, coalescing
  wait (reached the coalescer -> published) and total gateway wait (reached the coalescer ->
  frame received by the client). `--no-probe` runs the gateway unwrapped.

Targets (issue 19): added time-to-first-delta p50 <= 3 ms; gateway throughput >= 90 % of
direct; no delta waits more than 20 ms (the longest wait of each run is printed, so "in every
run" can be read off one invocation with --runs 10). The 1-minute load average is printed.

Run: `.venv/bin/python bench/chat_stream.py [--runs N] [--warmup N] [--deltas N] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
from pydantic_ai import Agent, RunContext, Tool
from pydantic_ai.messages import (
    AgentStreamEvent,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from websockets.asyncio.client import ClientConnection

import common
from common import ROOT, Child
from hearth.chat import service as chat_service
from hearth.chat.service import DEFAULT_INSTRUCTIONS, wire_name
from hearth.config import ProviderSettings
from hearth.models import ModelFactory
from hearth.tools import ToolRegistry, builtin_tools

PROMPT = "Count for me, as fast as you can."
DELTA_TEXT = "tok "
TARGET_ADDED_TTFD_MS = 3.0  # gateway p50 time to first delta minus direct p50 (issue 19)
TARGET_THROUGHPUT_RATIO = 0.9  # gateway chars/s >= 0.9x direct chars/s (issue 19)
TARGET_MAX_WAIT_MS = 20.0  # no delta waits longer than this inside the gateway, in any run
START_TIMEOUT_S = 60.0  # a child process must be ready within this
RUN_TIMEOUT_S = 60.0  # one reply longer than this means something is stuck
STOP_TIMEOUT_S = 15.0  # SIGTERM grace before SIGKILL
LOG_TAIL_LINES = 30  # of a child's log, shown when something fails


def _clean_env() -> dict[str, str]:
    """The children's environment: no HEARTH_* settings leaking in from the caller's shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}


# --------------------------------------------------------------------------- child: fake model


async def _serve_fake(info_file: Path, deltas: int) -> None:
    """The test suite's fake OpenAI server answering every request with `deltas` chunks."""
    sys.path.insert(0, str(ROOT))  # the fake lives in the test suite, not in the package
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from tests.support.fake_openai import FakeOpenAI, Text

    stop = common.stop_signal()
    async with FakeOpenAI() as fake:
        fake.script_forever(Text(DELTA_TEXT * deltas, chunks=[DELTA_TEXT] * deltas))

        async def requests(request: Request) -> JSONResponse:
            """Every chat completions body received so far (to check both sides sent the same)."""
            return JSONResponse(fake.requests)

        fake.app.add_route("/bench/requests", requests, methods=["GET"])
        # This child imports the benchmark's modules (pydantic-ai, Hearth); a full collection
        # of that heap took 80 ms before a reply's first chunk. From here on only the replies'
        # own garbage is collected, as in a lean model server.
        gc.collect()
        gc.freeze()
        common.write_json_atomic(info_file, {"base_url": fake.base_url})
        await stop


# --------------------------------------------------------------------------- child: gateway


def _install_probe(probe: dict[str, dict[str, list[list[float]]]]) -> None:
    """Record when each delta reaches the coalescer and when each frame's text is published.

    Replaces `hearth.chat.service._Deltas` (looked up when each stream starts) with a subclass
    that appends `[time.monotonic(), characters]` before doing exactly what the original does.
    """
    base = chat_service._Deltas

    class ProbedDeltas(base):  # type: ignore[valid-type, misc]
        def add(self, text: str) -> None:
            if text:
                entry = probe.setdefault(self._request_id, {"adds": [], "flushes": []})
                entry["adds"].append([time.monotonic(), len(text)])
            super().add(text)

        def flush(self) -> None:
            pending = sum(len(t) for t in self._buffer)
            super().flush()
            if pending:
                entry = probe.setdefault(self._request_id, {"adds": [], "flushes": []})
                entry["flushes"].append([time.monotonic(), pending])

    chat_service._Deltas = ProbedDeltas  # type: ignore[misc]


def _serve_gateway(data_dir: Path, probe_file: Path | None) -> None:
    """Build and serve the gateway as `hearth serve` does; write the probe's records at exit."""
    # Imported here so that the fake model child does not carry the whole gateway.
    from hearth.app import Hearth
    from hearth.config import load_settings
    from hearth.gateway.logs import configure_logging

    settings = load_settings(data_dir=data_dir, port=0)
    hearth = Hearth(settings)
    token = settings.token_path.read_text(encoding="utf-8").strip()
    configure_logging(settings.log_format, settings.log_level, lambda: [token])
    probe: dict[str, dict[str, list[list[float]]]] = {}
    if probe_file is not None:
        _install_probe(probe)
    try:
        asyncio.run(hearth.serve())
    finally:
        if probe_file is not None:
            common.write_json_atomic(probe_file, probe)


# --------------------------------------------------------------------------- child processes


def _spawn(name: str, args: list[str], workdir: Path, started: list[Child]) -> Child:
    """Start this script in a child mode, without the caller's HEARTH_* settings."""
    return common.spawn(
        name,
        common.script(__file__, *args),
        workdir,
        started,
        env=_clean_env(),
        tail_lines=LOG_TAIL_LINES,
    )


@dataclass
class Setup:
    fake: Child
    gateway: Child
    base_url: str
    ws_url: str
    token: str
    probe_file: Path | None


@contextlib.contextmanager
def children(workdir: Path, deltas: int, probe: bool) -> Iterator[Setup]:
    """The fake model server and a gateway configured to use it, always stopped at the end."""
    with common.stopping(STOP_TIMEOUT_S) as started:
        info_file = workdir / "fake.json"
        fake_args = ["--serve-fake", str(info_file), "--deltas", str(deltas)]
        fake = _spawn("fake-model", fake_args, workdir, started)
        base_url = str(
            json.loads(common.wait_for_file(fake, info_file, START_TIMEOUT_S))["base_url"]
        )
        data_dir = workdir / "gateway-data"
        data_dir.mkdir()
        (data_dir / "config.toml").write_text(
            '[models]\ndefault = "local:fake-model"\n\n'
            f'[providers.local]\nkind = "openai"\nbase_url = "{base_url}"\n',
            encoding="utf-8",
        )
        probe_file = workdir / "probe.json" if probe else None
        args = ["--serve-gateway", str(data_dir)]
        if probe_file is not None:
            args += ["--probe-file", str(probe_file)]
        gateway = _spawn("gateway", args, workdir, started)
        endpoint = common.wait_for_gateway(gateway, data_dir, START_TIMEOUT_S)
        yield Setup(fake, gateway, base_url, endpoint.url, endpoint.token, probe_file)


# --------------------------------------------------------------------------- the two sides


@dataclass
class Run:
    """One reply, either side. Times are `time.monotonic()` seconds."""

    side: str
    sent: float
    ended: float
    arrivals: list[tuple[float, int]]  # (time, characters): deltas (direct) or frames (gateway)
    cpu_self: float  # CPU seconds of this process during the run
    cpu_gateway: float
    cpu_fake: float
    request_id: str = ""
    reply_at: float | None = None  # gateway: when chat.stream.start arrived
    back_to_back: bool = False  # gateway: sent right after the previous gateway reply ended

    @property
    def characters(self) -> int:
        return sum(n for _, n in self.arrivals)

    @property
    def ttfd_s(self) -> float:
        return self.arrivals[0][0] - self.sent

    @property
    def chars_per_s(self) -> float:
        span = self.arrivals[-1][0] - self.arrivals[0][0]
        return (self.characters - self.arrivals[0][1]) / span if span > 0 else float("nan")


def chat_tools() -> list[Tool[None]]:
    """The tool definitions `ChatService._tools_for` offers with the default policy.

    The functions never run (the fake model calls no tools); they exist so that the direct
    agent sends the model the same request as the gateway does.
    """
    offered: list[Tool[None]] = []
    for tool in ToolRegistry(builtin_tools(shell_enabled=False)):

        async def call(ctx: RunContext[None], **kwargs: Any) -> Any:
            raise RuntimeError("the benchmark model calls no tools")

        offered.append(
            Tool.from_schema(
                call,
                name=wire_name(tool.name),
                description=tool.description,
                json_schema=tool.json_schema(),
                takes_ctx=True,
            )
        )
    return offered


async def direct_run(agent: Agent[None, str], setup: Setup) -> Run:
    """`agent.run` with an event stream handler shaped like `ChatService._stream`'s."""
    arrivals: list[tuple[float, int]] = []

    async def on_events(ctx: RunContext[None], events: AsyncIterable[AgentStreamEvent]) -> None:
        async for event in events:
            text = ""
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                text = event.part.content
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                text = event.delta.content_delta
            if text:
                arrivals.append((time.monotonic(), len(text)))

    cpu_gateway, cpu_fake = setup.gateway.cpu_seconds(), setup.fake.cpu_seconds()
    cpu_self = time.process_time()
    sent = time.monotonic()
    async with asyncio.timeout(RUN_TIMEOUT_S):
        await agent.run(PROMPT, event_stream_handler=on_events)
    ended = time.monotonic()
    return Run(
        side="direct",
        sent=sent,
        ended=ended,
        arrivals=arrivals,
        cpu_self=time.process_time() - cpu_self,
        cpu_gateway=setup.gateway.cpu_seconds() - cpu_gateway,
        cpu_fake=setup.fake.cpu_seconds() - cpu_fake,
    )


async def open_gateway(setup: Setup) -> ClientConnection:
    return await common.open_session(setup.ws_url, setup.token, open_timeout=10, reply_timeout=10)


async def gateway_run(ws: ClientConnection, index: int, setup: Setup) -> Run:
    """`chat.send` in a new session; frames are timed as they come off the socket."""
    msg_id = f"send-{index}"
    request_id: str | None = None
    reply_at: float | None = None
    frames: list[tuple[float, str, int]] = []  # (time, requestId, characters)
    ended: float | None = None
    end_for: str | None = None
    cpu_gateway, cpu_fake = setup.gateway.cpu_seconds(), setup.fake.cpu_seconds()
    cpu_self = time.process_time()
    sent = time.monotonic()
    await ws.send(json.dumps({"type": "chat.send", "id": msg_id, "content": PROMPT}))
    async with asyncio.timeout(RUN_TIMEOUT_S):
        while request_id is None or end_for != request_id:
            raw = await ws.recv()
            now = time.monotonic()
            frame = json.loads(raw)
            kind = frame.get("type")
            if frame.get("id") == msg_id:
                if kind != "chat.stream.start":
                    raise RuntimeError(f"chat.send refused: {frame}")
                request_id, reply_at = str(frame["requestId"]), now
            elif kind == "chat.stream.delta":
                frames.append((now, str(frame["requestId"]), len(frame["delta"])))
            elif kind == "chat.stream.end":
                if frame.get("status") != "completed":
                    raise RuntimeError(f"the stream did not complete: {frame}")
                ended, end_for = now, str(frame["requestId"])
            elif kind == "error":
                raise RuntimeError(f"the gateway reported an error: {frame}")
    assert ended is not None
    assert request_id is not None
    return Run(
        side="gateway",
        sent=sent,
        ended=ended,
        arrivals=[(t, n) for t, rid, n in frames if rid == request_id],
        cpu_self=time.process_time() - cpu_self,
        cpu_gateway=setup.gateway.cpu_seconds() - cpu_gateway,
        cpu_fake=setup.fake.cpu_seconds() - cpu_fake,
        request_id=request_id,
        reply_at=reply_at,
    )


async def measure(setup: Setup, runs: int, warmup: int, deltas: int) -> list[Run]:
    """Warm-up runs of both sides, then `runs` of each, alternating which goes first."""
    factory = ModelFactory(
        "local:fake-model", {"local": ProviderSettings(kind="openai", base_url=setup.base_url)}
    )
    agent: Agent[None, str] = Agent(
        factory.resolve().model, instructions=DEFAULT_INSTRUCTIONS, tools=chat_tools()
    )
    ws = await open_gateway(setup)
    measured: list[Run] = []
    previous = ""
    try:
        for index in range(warmup + runs):
            if index < warmup:
                print(f"  warm-up {index + 1}/{warmup}", file=sys.stderr, flush=True)
            else:
                print(f"  run {index + 1 - warmup}/{runs}", file=sys.stderr, flush=True)
            pair: list[Run] = []
            for side in ("direct", "gateway") if index % 2 == 0 else ("gateway", "direct"):
                run = (
                    await direct_run(agent, setup)
                    if side == "direct"
                    else await gateway_run(ws, index, setup)
                )
                run.back_to_back = side == previous == "gateway"
                previous = side
                expected = deltas * len(DELTA_TEXT)
                if run.characters != expected:
                    raise RuntimeError(f"{side} got {run.characters} characters, not {expected}")
                pair.append(run)
            if index >= warmup:
                measured.extend(pair)
    finally:
        await ws.close()
        await factory.aclose()
    return measured


# --------------------------------------------------------------------------- analysis


@dataclass
class Waits:
    """Per-delta waits inside the gateway (ms), from the probe and the client's arrival times."""

    deltas: int = 0
    coalesce_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    longest_per_run_ms: list[float] = field(default_factory=list)  # coalescer -> client, max
    first_model_delta_ms: list[float] = field(default_factory=list)  # send -> coalescer
    first_published_after_ms: list[float] = field(default_factory=list)  # coalescer -> bus
    first_frame_after_ms: list[float] = field(default_factory=list)  # coalescer -> client
    gateway_agent_chars_per_s: list[float] = field(default_factory=list)


def _delivery_times(pieces: list[tuple[float, int]], ends: list[int]) -> list[float]:
    """For each cumulative character offset in `ends`, when the piece holding it came."""
    out: list[float] = []
    position = 0
    covered = 0
    for end in ends:
        while covered < end:
            covered += pieces[position][1]
            position += 1
        out.append(pieces[position - 1][0])
    return out


def analyse_waits(runs: list[Run], probe: dict[str, Any]) -> Waits:
    waits = Waits()
    for run in runs:
        if run.side != "gateway":
            continue
        record = probe.get(run.request_id)
        if record is None:
            raise RuntimeError(f"the probe saw nothing of request {run.request_id}")
        adds = [(float(t), int(n)) for t, n in record["adds"]]
        flushes = [(float(t), int(n)) for t, n in record["flushes"]]
        ends: list[int] = []
        total = 0
        for _, n in adds:
            total += n
            ends.append(total)
        published = _delivery_times(flushes, ends)
        received = _delivery_times(run.arrivals, ends)
        longest = 0.0
        for (added, _), pub, got in zip(adds, published, received, strict=True):
            waits.coalesce_ms.append((pub - added) * 1000)
            waits.total_ms.append((got - added) * 1000)
            longest = max(longest, (got - added) * 1000)
        waits.longest_per_run_ms.append(longest)
        waits.deltas += len(adds)
        waits.first_model_delta_ms.append((adds[0][0] - run.sent) * 1000)
        waits.first_published_after_ms.append((flushes[0][0] - adds[0][0]) * 1000)
        waits.first_frame_after_ms.append((run.arrivals[0][0] - adds[0][0]) * 1000)
        span = adds[-1][0] - adds[0][0]
        waits.gateway_agent_chars_per_s.append((total - adds[0][1]) / span)
    return waits


def _pct(values: list[float], q: float) -> float:
    return common.percentile(sorted(values), q)


def _side(runs: list[Run], side: str, deltas: int) -> dict[str, Any]:
    mine = [r for r in runs if r.side == side]
    chars = [r.chars_per_s for r in mine]
    return {
        "runs": len(mine),
        "ttfd_ms_p50": _pct([r.ttfd_s * 1000 for r in mine], 0.5),
        "ttfd_ms_min": min(r.ttfd_s * 1000 for r in mine),
        "ttfd_ms_max": max(r.ttfd_s * 1000 for r in mine),
        "chars_per_s_p50": _pct(chars, 0.5),
        "deltas_per_s_p50": _pct(chars, 0.5) / len(DELTA_TEXT),
        "total_ms_p50": _pct([(r.ended - r.sent) * 1000 for r in mine], 0.5),
        "frames_per_reply_p50": _pct([float(len(r.arrivals)) for r in mine], 0.5),
        "reply_ms_p50": _pct([(r.reply_at - r.sent) * 1000 for r in mine if r.reply_at], 0.5),
        "ttfd_ms_p50_after_pause": _pct([r.ttfd_s * 1000 for r in mine if not r.back_to_back], 0.5),
        "ttfd_ms_p50_back_to_back": _pct([r.ttfd_s * 1000 for r in mine if r.back_to_back], 0.5),
        "cpu_ms_per_reply": {
            "this_process": _pct([r.cpu_self * 1000 for r in mine], 0.5),
            "gateway": _pct([r.cpu_gateway * 1000 for r in mine], 0.5),
            "fake_model": _pct([r.cpu_fake * 1000 for r in mine], 0.5),
        },
        "deltas": deltas,
    }


def compare_requests(bodies: list[dict[str, Any]], runs: list[Run], warmup: int) -> str:
    """'identical' when every direct and gateway request had the same body (bar the stream id)."""
    order: list[str] = []
    for index in range(warmup + len(runs) // 2):
        order += ["direct", "gateway"] if index % 2 == 0 else ["gateway", "direct"]
    if len(bodies) != len(order):
        return f"expected {len(order)} model requests, the fake model saw {len(bodies)}"
    seen: dict[str, set[str]] = {"direct": set(), "gateway": set()}
    for side, body in zip(order, bodies, strict=True):
        seen[side].add(json.dumps(body, sort_keys=True))
    if seen["direct"] == seen["gateway"] and len(seen["direct"]) == 1:
        return "identical"
    direct = json.loads(next(iter(seen["direct"])))
    gateway = json.loads(next(iter(seen["gateway"])))
    keys = sorted(k for k in {*direct, *gateway} if direct.get(k) != gateway.get(k))
    return f"differ in {', '.join(keys) or '(repeated bodies)'}"


def summarize(
    runs: list[Run], waits: Waits | None, requests: str, args: argparse.Namespace
) -> dict[str, Any]:
    direct = _side(runs, "direct", args.deltas)
    gateway = _side(runs, "gateway", args.deltas)
    added_ttfd = gateway["ttfd_ms_p50"] - direct["ttfd_ms_p50"]
    ratio = gateway["chars_per_s_p50"] / direct["chars_per_s_p50"]
    targets: dict[str, Any] = {
        "added_ttfd_ms_p50": {
            "target": TARGET_ADDED_TTFD_MS,
            "value": added_ttfd,
            "met": added_ttfd <= TARGET_ADDED_TTFD_MS,
        },
        "throughput_ratio": {
            "target": TARGET_THROUGHPUT_RATIO,
            "value": ratio,
            "met": ratio >= TARGET_THROUGHPUT_RATIO,
        },
    }
    wait_summary: dict[str, Any] | None = None
    if waits is not None:
        max_wait = max(waits.total_ms)
        targets["max_delta_wait_ms"] = {
            "target": TARGET_MAX_WAIT_MS,
            "value": max_wait,
            "met": max_wait <= TARGET_MAX_WAIT_MS,
        }
        wait_summary = {
            "deltas": waits.deltas,
            "coalesce_ms": {q: _pct(waits.coalesce_ms, p) for q, p in _QUANTILES},
            "total_ms": {q: _pct(waits.total_ms, p) for q, p in _QUANTILES},
            "longest_per_run_ms": waits.longest_per_run_ms,
            "runs_within_max_wait": sum(w <= TARGET_MAX_WAIT_MS for w in waits.longest_per_run_ms),
            "first_model_delta_ms_p50": _pct(waits.first_model_delta_ms, 0.5),
            "first_published_after_ms_p50": _pct(waits.first_published_after_ms, 0.5),
            "first_frame_after_ms_p50": _pct(waits.first_frame_after_ms, 0.5),
            "gateway_agent_chars_per_s_p50": _pct(waits.gateway_agent_chars_per_s, 0.5),
        }
    return {
        "benchmark": "chat_stream",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine(
            pydantic_ai=version("pydantic-ai-slim"),
            openai=version("openai"),
            websockets=version("websockets"),
            uvicorn=version("uvicorn"),
            load_average=os.getloadavg(),
        ),
        "deltas": args.deltas,
        "delta_text": DELTA_TEXT,
        "runs": args.runs,
        "warmup": args.warmup,
        "requests": requests,
        "direct": direct,
        "gateway": gateway,
        "gateway_waits": wait_summary,
        "targets": targets,
        "per_run": [
            {
                "side": r.side,
                "ttfd_ms": r.ttfd_s * 1000,
                "chars_per_s": r.chars_per_s,
                "total_ms": (r.ended - r.sent) * 1000,
                "pieces": len(r.arrivals),
                "back_to_back": r.back_to_back,
            }
            for r in runs
        ],
    }


_QUANTILES = (("p50", 0.5), ("p99", 0.99), ("max", 1.0))


def print_text(summary: dict[str, Any]) -> None:
    machine = summary["machine"]
    direct, gateway = summary["direct"], summary["gateway"]
    print(
        f"Chat streaming: {summary['deltas']} deltas of {summary['delta_text']!r} per reply, "
        f"{summary['runs']} replies per side after {summary['warmup']} warm-up each"
    )
    print(
        common.machine_line(machine, ("pydantic-ai", "pydantic_ai"), ("openai", "openai"))
        + f", load average {machine['load_average'][0]:.2f}"
    )
    print(f"model requests of both sides: {summary['requests']}")
    print()
    print(
        f"{'side':<8} {'TTFD p50':>9} {'min':>7} {'max':>7} {'chars/s':>9} {'deltas/s':>9} "
        f"{'total p50':>10} {'pieces':>7} {'CPU ms/reply: self':>19} {'gateway':>8} {'fake':>6}"
    )
    for name, side in (("direct", direct), ("gateway", gateway)):
        cpu = side["cpu_ms_per_reply"]
        print(
            f"{name:<8} {side['ttfd_ms_p50']:>6.2f} ms {side['ttfd_ms_min']:>7.2f} "
            f"{side['ttfd_ms_max']:>7.2f} {side['chars_per_s_p50']:>9.0f} "
            f"{side['deltas_per_s_p50']:>9.0f} {side['total_ms_p50']:>7.1f} ms "
            f"{side['frames_per_reply_p50']:>7.0f} {cpu['this_process']:>19.1f} "
            f"{cpu['gateway']:>8.1f} {cpu['fake_model']:>6.1f}"
        )
    targets = summary["targets"]
    added, ratio = targets["added_ttfd_ms_p50"], targets["throughput_ratio"]
    print(
        f"gateway - direct: TTFD p50 +{added['value']:.2f} ms; throughput "
        f"{ratio['value']:.2f}x direct; chat.stream.start after {gateway['reply_ms_p50']:.2f} ms"
    )
    print(
        f"gateway TTFD p50 after a direct run: {gateway['ttfd_ms_p50_after_pause']:.2f} ms, "
        f"right after the previous gateway reply: {gateway['ttfd_ms_p50_back_to_back']:.2f} ms"
    )
    waits = summary["gateway_waits"]
    if waits is not None:
        print()
        print(f"inside the gateway ({waits['deltas']} deltas):")
        labels = {"coalesce_ms": "coalescer -> published", "total_ms": "coalescer -> client"}
        for key, label in labels.items():
            values = waits[key]
            print(
                f"  {label:<24} p50 {values['p50']:6.2f} ms  p99 {values['p99']:6.2f} ms  "
                f"max {values['max']:6.2f} ms"
            )
        print(
            f"  first delta: chat.send -> coalescer {waits['first_model_delta_ms_p50']:.2f} ms "
            f"(direct TTFD {direct['ttfd_ms_p50']:.2f} ms), coalescer -> published "
            f"{waits['first_published_after_ms_p50']:.2f} ms, -> client "
            f"{waits['first_frame_after_ms_p50']:.2f} ms (p50)"
        )
        print(
            f"  the gateway's agent consumed {waits['gateway_agent_chars_per_s_p50']:.0f} chars/s "
            f"(direct {direct['chars_per_s_p50']:.0f})"
        )
        longest = ", ".join(f"{w:.1f}" for w in waits["longest_per_run_ms"])
        print(
            f"  longest delta wait per run (ms): {longest}; runs within "
            f"{TARGET_MAX_WAIT_MS:g} ms: {waits['runs_within_max_wait']} of "
            f"{len(waits['longest_per_run_ms'])}"
        )
    print()
    for key, text, unit in (
        ("added_ttfd_ms_p50", "added time to first delta p50 <=", " ms"),
        ("throughput_ratio", "gateway throughput >= direct x", ""),
        ("max_delta_wait_ms", "longest wait of a delta in the gateway <=", " ms"),
    ):
        if key in targets:
            target = targets[key]
            print(
                f"target: {text} {target['target']:g}{unit}: {target['value']:.2f}{unit} -> "
                f"{common.verdict(target['met'])}"
            )


# --------------------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="replies per side (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured replies per side")
    parser.add_argument("--deltas", type=int, default=2000, help="deltas per reply (2000)")
    parser.add_argument("--no-probe", action="store_true", help="run the gateway unwrapped")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve-fake", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--probe-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.deltas < 2:
        parser.error("--runs must be >= 1, --warmup >= 0, --deltas >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_fake is not None:
        asyncio.run(_serve_fake(args.serve_fake, args.deltas))
        return 0
    if args.serve_gateway is not None:
        _serve_gateway(args.serve_gateway, args.probe_file)
        return 0
    signal.signal(signal.SIGTERM, common.exit_on_sigterm)
    with (
        tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp,
        children(Path(tmp), args.deltas, not args.no_probe) as setup,
    ):
        try:
            runs = asyncio.run(measure(setup, args.runs, args.warmup, args.deltas))
            bodies = httpx.get(
                setup.base_url.removesuffix("/v1") + "/bench/requests", trust_env=False
            ).json()
        except Exception:
            for child in (setup.fake, setup.gateway):
                print(f"--- {child.name} log ---\n{child.log_tail()}", file=sys.stderr)
            raise
        # The probe's records are written when the gateway stops.
        common.stop(setup.gateway, STOP_TIMEOUT_S)
        waits = None
        if setup.probe_file is not None:
            probe = json.loads(setup.probe_file.read_text(encoding="utf-8"))
            waits = analyse_waits(runs, probe)
    summary = summarize(runs, waits, compare_requests(bodies, runs, args.warmup), args)
    common.emit(summary, args.json, print_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
