"""Heartbeat cost: one model call for a whole checklist vs one call per item (the original design).

What it measures, for one run over a checklist of 10 open items (plus a paragraph of context,
as a real HEARTBEAT.md has):

- **batched** (Hearth): `HeartbeatRunner.run`, exactly as a scheduled tick runs it: the file is
  read, one structured model call asks about every open item, the outcome is recorded in a
  SQLite database in a temporary directory;
- **per item** (baseline, the original design): the same model asked about each item on its
  own, with `hearth.models.run_model` and the *same* instructions, context, output schema and
  read-only tools, i.e. what the runner would send for a checklist of that one item.

Both sides talk to the same model: the test suite's fake OpenAI-compatible server
(`tests/support/fake_openai.py`), through pydantic-ai's `OpenAIChatModel` and the `openai` SDK
over real HTTP on loopback, answering each request with a structured answer for the items it
was asked about. Both run in the same process run, one after the other, twice: against the
fake in its standard mode, and in its llama.cpp-like mode (the forced output tool is refused
with HTTP 400, so every call is retried as prompted JSON, as with a local llama.cpp server).

Figures (all deterministic: no wall-clock time is measured):

- **model calls**: agent runs (one `run_model` call each) and the HTTP requests they made;
- **prompt tokens**: `usage.prompt_tokens` as the model server reported it (the fake estimates
  four characters a token over the message text: instructions, prompt, and in prompted mode
  the schema), summed over the requests it answered;
- **prompt + tools tokens**: the prompt tokens plus the same estimate over the tool definitions
  (`tools`: the read-only tools and, in tool mode, the output tool) of every request sent: a
  server reads those as part of the prompt, so the target is judged on this figure;
- **request tokens**: the same estimate over the whole request body the server received,
  tool and output-tool definitions included, rejected requests included: what a real server
  has to read before it can answer (or refuse).

Target (issue 6): 1 call, and prompt + tools tokens <= 30 % of the per-item design (with one
item there is nothing to batch: the ratio is then 100 % by construction and not judged).

Run: `.venv/bin/python bench/heartbeat_cost.py [--items N ...] [--json]` (several N: one table
each, e.g. `--items 1 3 5 10`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic_ai.usage import RunUsage

from hearth.config import ProviderSettings
from hearth.events import LocalEventBus
from hearth.heartbeat.checklist import Checklist, read_checklist
from hearth.heartbeat.runner import (
    INSTRUCTIONS,
    OUTPUT_SCHEMA,
    HeartbeatConfig,
    HeartbeatRunner,
    build_prompt,
)
from hearth.models import ModelFactory, ResolvedModel, run_model
from hearth.store import Database
from hearth.store.heartbeat import HeartbeatRepository
from hearth.tools import ToolRegistry, builtin_tools

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake model server lives in the test suite

from tests.support.fake_openai import (  # noqa: E402
    FakeOpenAI,
    JsonContent,
    Mode,
    ToolCall,
    estimate_tokens,
    last_user_text,
    tool_names,
)
from tests.support.heartbeat import items_in, report, write_checklist  # noqa: E402

ZONE = "Europe/Berlin"
TARGET_CALLS = 1
TARGET_TOKEN_RATIO = 0.30
CONTEXT = (
    "I run a small home network: a Synology NAS (nas.local), a Raspberry Pi with Home\n"
    "Assistant, and a VPS for my blog. Status files land in the workspace every hour.\n"
    "Only tell me about things I need to act on today."
)
ITEMS = [
    "Does workspace/nas/df.txt show any volume above 90 % full?",
    "Did last night's backup succeed according to workspace/backup/last.log?",
    "Are any certificates in workspace/certs.txt expiring within 14 days?",
    "Is the blog at https://blog.example answering with HTTP 200?",
    "Does workspace/ups.txt say the UPS battery needs replacing?",
    "Any failed systemd units listed in workspace/pi/units.txt?",
    "Is the router firmware in workspace/router.txt older than 90 days?",
    "Has the smoke detector battery warning appeared in workspace/ha/alerts.txt?",
    "Are there more than 5 unread invoices in workspace/mail/invoices.txt?",
    "Did the VPS report more than 80 % memory use in workspace/vps/mem.txt?",
]


def needs_action(item: str) -> str | None:
    """The fake model's verdict: two items need the person (so an alert is part of the run)."""
    if "backup" in item or "certificates" in item:
        return "found a problem"
    return None


def answer(body: dict[str, Any]) -> Any:
    """Answer for the items this request asks about, in whichever form it expects."""
    checks = report(items_in(last_user_text(body)), needs_action)
    if "final_result" in tool_names(body):
        return ToolCall("final_result", checks)
    return JsonContent(checks)


@dataclass
class Cost:
    mode: str
    design: str
    agent_runs: int
    http_requests: int
    rejected: int
    prompt_tokens: int
    tool_tokens: int
    request_tokens: int

    @property
    def prompt_with_tools(self) -> int:
        return self.prompt_tokens + self.tool_tokens


def request_tokens(bodies: list[dict[str, Any]]) -> int:
    return sum(estimate_tokens(json.dumps(body, separators=(",", ":"))) for body in bodies)


def tool_tokens(bodies: list[dict[str, Any]]) -> int:
    """The tool definitions' share of the requests, estimated like the prompt."""
    return sum(
        estimate_tokens(json.dumps(body["tools"], separators=(",", ":")))
        for body in bodies
        if body.get("tools")
    )


async def batched(
    fake: FakeOpenAI, runner: HeartbeatRunner, repo: HeartbeatRepository, path: Path, items: int
) -> Cost:
    start_requests, start_rejected = fake.calls, fake.rejected
    record = runner.new_run(path, trigger="schedule")
    await repo.add_run(record)
    outcome = await runner.run(record.id, path, ZONE)
    if outcome.status != "ok" or len(outcome.checks) != items:
        raise SystemExit(f"the batched run did not check every item: {outcome}")
    stored = await repo.get_run(record.id)
    assert stored is not None
    bodies = fake.requests[start_requests:]
    return Cost(
        fake.mode,
        "batched (1 call)",
        1,
        len(bodies),
        fake.rejected - start_rejected,
        stored.input_tokens,
        tool_tokens(bodies),
        request_tokens(bodies),
    )


async def per_item(
    fake: FakeOpenAI, runner: HeartbeatRunner, resolved: ResolvedModel, checklist: Checklist
) -> Cost:
    start_requests, start_rejected = fake.calls, fake.rejected
    usage = RunUsage()
    for n, item in enumerate(checklist.open_items):
        single = Checklist(path=checklist.path, open_items=[item], context=checklist.context)
        prompt = build_prompt(single, datetime.now(UTC), ZoneInfo(ZONE))
        output = await run_model(
            resolved,
            prompt,
            output_schema=OUTPUT_SCHEMA,
            instructions=INSTRUCTIONS,
            tools=runner.read_only_tools(f"baseline-{n}"),
            usage=usage,
        )
        if len(output.get("checks", [])) != 1:
            raise SystemExit(f"the per-item call for {item!r} answered {output!r}")
    bodies = fake.requests[start_requests:]
    return Cost(
        fake.mode,
        "per item (original)",
        len(checklist.open_items),
        len(bodies),
        fake.rejected - start_rejected,
        usage.input_tokens,
        tool_tokens(bodies),
        request_tokens(bodies),
    )


async def measure(mode: Mode, items: list[str], workdir: Path) -> list[Cost]:
    path = write_checklist(workdir / mode / "HEARTBEAT.md", items, context=CONTEXT)
    db = Database.from_url(f"sqlite+aiosqlite:///{workdir / mode / 'hearth.db'}")
    bus = LocalEventBus()
    async with FakeOpenAI(mode=mode) as fake:
        fake.script_forever(answer)
        models = ModelFactory(
            "local:fake-model",
            {"local": ProviderSettings(kind="openai", base_url=fake.base_url)},
        )
        try:
            await db.upgrade()
            repo = HeartbeatRepository(db)
            workspace = workdir / mode / "workspace"
            workspace.mkdir()
            runner = HeartbeatRunner(
                repo=repo,
                bus=bus,
                models=models.resolve,
                tools=ToolRegistry(builtin_tools()),
                workspace=workspace,
                chat_busy=lambda: False,
                config=HeartbeatConfig(),
            )
            checklist = read_checklist(path)
            one = await batched(fake, runner, repo, path, len(items))
            each = await per_item(fake, runner, models.resolve(None), checklist)
            return [one, each]
        finally:
            await models.aclose()
            await bus.aclose()
            await db.dispose()


def print_table(results: list[Cost], items: int) -> bool:
    print(f"Heartbeat cost for one run over {items} open items (fake OpenAI-compatible model)")
    print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}\n")
    header = (
        f"{'server mode':<11} {'design':<20} {'calls':>5} {'HTTP req':>8} {'rejected':>8} "
        f"{'prompt tok':>10} {'+tools tok':>10} {'request tok':>11}"
    )
    print(header)
    print("-" * len(header))
    met = True
    for one, each in zip(results[::2], results[1::2], strict=True):
        for cost in (one, each):
            print(
                f"{cost.mode:<11} {cost.design:<20} {cost.agent_runs:>5} {cost.http_requests:>8} "
                f"{cost.rejected:>8} {cost.prompt_tokens:>10} {cost.prompt_with_tools:>10} "
                f"{cost.request_tokens:>11}"
            )
        prompt_ratio = one.prompt_tokens / each.prompt_tokens
        tools_ratio = one.prompt_with_tools / each.prompt_with_tools
        request_ratio = one.request_tokens / each.request_tokens
        judged = items > 1
        ok = one.agent_runs == TARGET_CALLS and (tools_ratio <= TARGET_TOKEN_RATIO or not judged)
        met = met and ok
        verdict = ("target met" if ok else "TARGET MISSED") if judged else "(1 item: not judged)"
        print(
            f"{'':<11} {'batched / per item':<20} {one.agent_runs / each.agent_runs:>5.2f} "
            f"{one.http_requests / each.http_requests:>8.2f} {'':>8} "
            f"{prompt_ratio:>10.1%} {tools_ratio:>10.1%} {request_ratio:>11.1%}   {verdict}"
        )
        print()
    print(
        f"target: {TARGET_CALLS} call per run and prompt + tools tokens <= "
        f"{TARGET_TOKEN_RATIO:.0%} of the per-item design"
    )
    return met


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--items",
        type=int,
        nargs="+",
        default=[len(ITEMS)],
        help=f"open items, 1 to {len(ITEMS)}; several numbers make one table each",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    bad = [n for n in args.items if not 1 <= n <= len(ITEMS)]
    if bad:
        parser.error(f"--items must be between 1 and {len(ITEMS)}, got {bad[0]}")
    met = True
    figures: dict[int, list[Cost]] = {}
    for count in args.items:
        items = ITEMS[:count]
        with tempfile.TemporaryDirectory(prefix="hearth-bench-heartbeat-") as tmp:
            results: list[Cost] = []
            for mode in ("standard", "llamacpp"):
                results += await measure(mode, items, Path(tmp) / str(count))
        figures[count] = results
        if not args.json:
            met = print_table(results, len(items)) and met
            print()
    if args.json:
        print(
            json.dumps(
                {
                    str(n): [{**asdict(r), "prompt_with_tools": r.prompt_with_tools} for r in rs]
                    for n, rs in figures.items()
                },
                indent=2,
            )
        )
        return 0
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
