"""The heartbeat: one model call per run, alerts only when needed, never silent, never spam.

The runner tests drive `HeartbeatRunner` directly on both backends with a pydantic-ai
`FunctionModel` that counts its calls. The gateway tests go through a real gateway, real
clients and the real OpenAI provider code against the fake OpenAI-compatible server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from hearth.client import ConnectionLostError, GatewayClient, GatewayError
from hearth.events import DomainEvent, LocalEventBus
from hearth.heartbeat import ChecklistError, parse_checklist, read_checklist
from hearth.heartbeat.checklist import EXAMPLE
from hearth.heartbeat.runner import HeartbeatConfig, HeartbeatRunner, RunOutcome
from hearth.models import ModelFactory
from hearth.protocol import ErrorCode
from hearth.protocol.messages.chat import ChatCancel, ChatCancelled, ChatSend, ChatStreamStart
from hearth.protocol.messages.heartbeat import (
    HeartbeatAlert,
    HeartbeatAlertList,
    HeartbeatAlertListResult,
    HeartbeatConfigure,
    HeartbeatConfigured,
    HeartbeatRun,
    HeartbeatRunResult,
    HeartbeatStatus,
    HeartbeatStatusResult,
)
from hearth.protocol.messages.schedules import (
    ActiveHoursSpec,
    ScheduleList,
    ScheduleListResult,
    ScheduleTrigger,
    ScheduleTriggered,
    ScheduleUpdate,
    ScheduleUpdated,
)
from hearth.store import Database
from hearth.store.heartbeat import HeartbeatRepository
from hearth.tools import ToolRegistry, builtin_tools
from tests.support.fake_openai import Delay, FakeOpenAI, JsonContent, Text
from tests.support.gateway import RunningGateway, in_process_gateway, start_gateway_process
from tests.support.heartbeat import (
    CountingModel,
    fake_answer,
    items_in,
    model_config_toml,
    model_settings,
    write_checklist,
)
from tests.support.schedules import runs, wait_runs

# -- the checklist file -----------------------------------------------------------------------


def test_checklist_sorts_open_done_and_context(tmp_path: Path) -> None:
    text = (
        "---\ninterval: 45\ntimezone: Europe/Berlin\nmodel: local:small\nenabled: false\n"
        "activeHours: {start: '08:00', end: '20:00', daysOfWeek: [1, 2, 3]}\n---\n"
        "# My checks\nThe NAS is at 10.0.0.5.\n\n"
        "- [ ] Disk on the NAS above 90 %?\n* [X] Renew passport\n  - [x] nested done\n"
        "+ [ ]   Backup ran last night?  \n- [ ]\n- not a checkbox\n"
    )
    checklist = parse_checklist(text, tmp_path / "HEARTBEAT.md")
    assert checklist.open_items == ["Disk on the NAS above 90 %?", "Backup ran last night?"]
    assert checklist.done_items == ["Renew passport", "nested done"]
    assert checklist.context == "# My checks\nThe NAS is at 10.0.0.5.\n\n- not a checkbox"
    assert checklist.interval == timedelta(minutes=45)
    assert (checklist.timezone, checklist.model, checklist.enabled) == (
        "Europe/Berlin",
        "local:small",
        False,
    )
    assert checklist.active_hours == {"start": "08:00", "end": "20:00", "daysOfWeek": [1, 2, 3]}
    assert parse_checklist("---\ninterval: 1h30m\n---\n", Path("x")).interval == timedelta(
        minutes=90
    )
    assert parse_checklist("no front matter\n- [ ] a", Path("x")).open_items == ["a"]


@pytest.mark.parametrize(
    ("front", "key", "fragment"),
    [
        ("interval: soon", "interval", "soon"),
        ("interval: 0", "interval", "positive"),
        ("interval: true", "interval", "True"),
        ("intervall: 30", "intervall", "unknown key"),
        ("timezone: Mars/Olympus", "timezone", "Mars/Olympus"),
        ("activeHours: {start: 9am, end: '18:00'}", "activeHours.start", "9am"),
        (
            "activeHours: {start: '09:00', end: '18:00', daysOfWeek: [8]}",
            "activeHours.daysOfWeek",
            "1..7",
        ),
        ("enabled: maybe", "enabled", "true or false"),
        ("model: 3", "model", "provider:model"),
    ],
)
def test_front_matter_errors_name_the_file_and_key(
    tmp_path: Path, front: str, key: str, fragment: str
) -> None:
    path = tmp_path / "HEARTBEAT.md"
    with pytest.raises(ChecklistError) as error:
        parse_checklist(f"---\n{front}\n---\n- [ ] x\n", path)
    assert error.value.key == key
    assert str(error.value).startswith(f"{path}: {key}: ")
    assert fragment in str(error.value)


def test_unsafe_yaml_and_broken_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "HEARTBEAT.md"
    with pytest.raises(ChecklistError, match="not valid YAML"):
        parse_checklist("---\nmodel: !!python/object/apply:os.system ['true']\n---\n", path)
    with pytest.raises(ChecklistError, match="line 3"):
        parse_checklist("---\ninterval: 30\ntimezone: a: b\n---\n", path)
    with pytest.raises(ChecklistError, match="never ends"):
        parse_checklist("---\ninterval: 30\n- [ ] x\n", path)
    with pytest.raises(ChecklistError, match="no such file") as missing:
        read_checklist(path)
    assert str(path) in str(missing.value)
    path.write_bytes(b"- [ ] \xff\xfe")
    with pytest.raises(ChecklistError, match="not UTF-8"):
        read_checklist(path)
    with pytest.raises(ChecklistError, match="directory"):
        read_checklist(tmp_path)


def test_the_example_checklist_parses(tmp_path: Path) -> None:
    checklist = parse_checklist(EXAMPLE, tmp_path / "HEARTBEAT.md")
    assert len(checklist.open_items) == 2
    assert len(checklist.done_items) == 1
    assert checklist.interval == timedelta(minutes=30)


# -- the runner, on both backends ----------------------------------------------------------------


class RecordingBus(LocalEventBus):
    """The local bus, also keeping what was published (the runner publishes synchronously)."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[DomainEvent] = []

    def publish(self, event: DomainEvent) -> None:
        self.published.append(event)
        super().publish(event)


@dataclass
class Harness:
    db: Database
    bus: RecordingBus
    repo: HeartbeatRepository
    model: CountingModel
    runner: HeartbeatRunner
    path: Path

    async def run(self) -> RunOutcome:
        record = self.runner.new_run(self.path, trigger="manual")
        await self.repo.add_run(record)
        return await self.runner.run(record.id, self.path, "Europe/Berlin")

    def sent(self) -> list[DomainEvent]:
        """Alerts published since the last call."""
        found = [e for e in self.bus.published if e.topic == "heartbeat.alert"]
        self.bus.published.clear()
        return found


@pytest.fixture
async def harness(tmp_path: Path, database_url: str) -> AsyncIterator[Harness]:
    db = Database.from_url(database_url)
    bus = RecordingBus()
    try:
        await db.upgrade()
        repo = HeartbeatRepository(db)
        model = CountingModel()
        workspace = tmp_path / "workspace"
        workspace.mkdir()
        runner = HeartbeatRunner(
            repo=repo,
            bus=bus,
            models=model.resolve,
            tools=ToolRegistry(builtin_tools()),
            workspace=workspace,
            chat_busy=lambda: False,
            config=HeartbeatConfig(timeout_s=30),
        )
        yield Harness(db, bus, repo, model, runner, tmp_path / "HEARTBEAT.md")
    finally:
        await bus.aclose()
        await db.dispose()


@pytest.mark.parametrize("count", [1, 5, 20])
async def test_one_model_call_per_run_whatever_the_number_of_items(
    harness: Harness, count: int
) -> None:
    items = [f"Item number {n} looks fine?" for n in range(1, count + 1)]
    write_checklist(harness.path, items, context="Some context for the model.")
    outcome = await harness.run()
    assert harness.model.calls == 1
    assert items_in(harness.model.prompts[0]) == items
    assert "Some context for the model." in harness.model.prompts[0]
    assert (outcome.status, outcome.reason, outcome.alerted) == ("ok", None, False)
    assert [c.description for c in outcome.checks] == items
    assert harness.sent() == []
    stored = await harness.repo.get_run(outcome.run_id)
    assert stored is not None
    assert (stored.status, stored.open_items, stored.model) == ("ok", count, "test:counting")
    assert stored.input_tokens > 0


async def test_an_empty_list_is_skipped_without_a_model_call(harness: Harness) -> None:
    write_checklist(harness.path, [], done=["Renew passport"], context="Only context here.")
    outcome = await harness.run()
    assert (outcome.status, outcome.reason) == ("skipped", "empty")
    assert harness.model.calls == 0
    assert harness.sent() == []


async def test_done_items_never_reach_the_model_or_an_alert(harness: Harness) -> None:
    write_checklist(harness.path, ["Disk above 90 %?"], done=["Renew passport"])

    async def also_the_done_one(items: list[str]) -> Any:
        # A model that "remembers" a done item and claims it needs action.
        checks = [{"description": i, "actionNeeded": True, "details": "91 %"} for i in items]
        checks.append({"description": "renew  PASSPORT", "actionNeeded": True})
        return {"checks": checks}

    harness.model.answer = also_the_done_one
    outcome = await harness.run()
    assert "passport" not in harness.model.prompts[0].lower()
    assert outcome.alerted
    assert [c.description for c in outcome.checks] == ["Disk above 90 %?"]
    [event] = harness.sent()
    assert [c["description"] for c in event.data["checks"]] == ["Disk above 90 %?"]


async def test_the_same_alert_is_sent_once_per_window(harness: Harness) -> None:
    write_checklist(harness.path, ["Disk full?", "Backup failed?", "Cert expiring?"])
    needs = {"disk full?"}
    harness.model.decide = lambda item: "yes" if item.lower() in needs else None

    first = await harness.run()
    assert first.alerted
    assert len(harness.sent()) == 1

    # Same set, worded differently by the model: still the same alert.
    async def shouting(items: list[str]) -> Any:
        return {
            "checks": [
                {"description": "  DISK   full? ", "actionNeeded": True, "details": "still"},
                *({"description": i, "actionNeeded": False} for i in items[1:]),
            ]
        }

    harness.model.answer = shouting
    second = await harness.run()
    harness.model.answer = None
    assert (second.status, second.alerted) == ("ok", False)
    assert second.reason is not None
    assert second.reason.startswith("suppressed")
    assert harness.sent() == []

    needs = {"disk full?", "backup failed?"}  # a different set is a new alert
    assert (await harness.run()).alerted
    assert len(harness.sent()) == 1

    needs = {"disk full?"}
    assert not (await harness.run()).alerted  # sent within the window (first run)
    with time_machine.travel(datetime.now(UTC) + timedelta(hours=6, minutes=1), tick=True):
        later = await harness.run()
    assert later.alerted
    assert len(harness.sent()) == 1

    sent = await harness.repo.alerts(100)
    everything = await harness.repo.alerts(100, include_suppressed=True)
    assert len(sent) == 3
    assert len(everything) == 5
    assert {a.status for a in everything} == {"sent", "suppressed"}


async def test_errors_are_never_all_clear_and_failing_is_said_once(harness: Harness) -> None:
    write_checklist(harness.path, ["Disk full?"])
    harness.runner.config = HeartbeatConfig(timeout_s=0.2, failing_after=3)
    never = asyncio.Event()

    async def broken(items: list[str]) -> Any:
        raise RuntimeError("the model server fell over")

    async def garbage(items: list[str]) -> Any:
        return {"checks": "not a list"}

    async def silent(items: list[str]) -> Any:
        await never.wait()  # never answers: the run's time limit ends it

    async def nothing(items: list[str]) -> Any:
        return {"checks": []}

    outcomes = []
    for answer in (broken, garbage):
        harness.model.answer = answer
        outcomes.append(await harness.run())
    write_checklist(harness.path, [])  # a skipped run neither breaks nor extends the streak
    assert (await harness.run()).status == "skipped"
    write_checklist(harness.path, ["Disk full?"])
    assert harness.sent() == []
    harness.model.answer = silent
    outcomes.append(await harness.run())
    assert [o.status for o in outcomes] == ["error", "error", "error"]
    assert not any(o.alerted for o in outcomes)
    assert "fell over" in (outcomes[0].reason or "")
    assert "does not parse" in (outcomes[1].reason or "")
    assert "checks" in (outcomes[1].reason or "")
    assert "did not answer within 0.2 s" in (outcomes[2].reason or "")
    [failing] = harness.sent()
    assert failing.data["kind"] == "failing"
    assert "last 3 runs" in failing.data["message"]
    assert "did not answer" in failing.data["message"]

    harness.model.answer = nothing  # an empty answer is an error too, not "all clear"
    fourth = await harness.run()
    assert fourth.status == "error"
    assert "none of the 1 open items" in (fourth.reason or "")
    harness.path.unlink()  # and so is a missing file
    fifth = await harness.run()
    assert fifth.status == "error"
    assert str(harness.path) in (fifth.reason or "")
    assert harness.sent() == []  # no second "failing" alert
    assert await harness.repo.consecutive_errors() == 5

    write_checklist(harness.path, ["Disk full?"])
    harness.model.answer = None
    assert (await harness.run()).status == "ok"
    assert await harness.repo.consecutive_errors() == 0
    harness.model.answer = broken
    for _ in range(3):
        assert (await harness.run()).status == "error"
    [again] = harness.sent()
    assert again.data["kind"] == "failing"
    kinds = [a.kind for a in await harness.repo.alerts(100)]
    assert kinds == ["failing", "failing"]


async def test_model_not_configured_is_an_error_run(harness: Harness) -> None:
    write_checklist(harness.path, ["x?"], front="model: nowhere:model")
    harness.runner.models = ModelFactory(None, {}).resolve
    outcome = await harness.run()
    assert outcome.status == "error"
    assert "nowhere:model" in (outcome.reason or "")


# -- through the gateway ------------------------------------------------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def hb_gateway(
    data_dir: Path, database_url: str, fake: FakeOpenAI
) -> AsyncIterator[RunningGateway]:
    async with in_process_gateway(data_dir, database_url, **model_settings(fake)) as gw:
        yield gw


async def configure(client: GatewayClient, **fields: Any) -> str:
    reply = await client.request(
        HeartbeatConfigure(id=client.next_id(), **fields), HeartbeatConfigured
    )
    return reply.schedule_id


async def run_now(client: GatewayClient) -> HeartbeatRunResult:
    return await client.request(HeartbeatRun(id=client.next_id()), HeartbeatRunResult)


async def status(client: GatewayClient) -> HeartbeatStatusResult:
    return await client.request(HeartbeatStatus(id=client.next_id()), HeartbeatStatusResult)


async def alert_list(client: GatewayClient) -> HeartbeatAlertListResult:
    return await client.request(
        HeartbeatAlertList(id=client.next_id(), limit=10), HeartbeatAlertListResult
    )


async def test_an_alert_reaches_every_connection(
    hb_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    write_checklist(hb_gateway.data_dir / "HEARTBEAT.md", ["Disk full?", "Backup ran?"])
    fake.script_forever(fake_answer(lambda item: "91 % used" if "Disk" in item else None))
    laptop = await hb_gateway.client()
    phone = await hb_gateway.client()
    await configure(laptop)
    result = await run_now(laptop)
    assert (result.status, result.alerted) == ("ok", True)
    assert [(c.description, c.action_needed) for c in result.checks] == [
        ("Disk full?", True),
        ("Backup ran?", False),
    ]
    for client in (laptop, phone):
        event = await client.next_event("heartbeat.alert")
        assert isinstance(event, HeartbeatAlert)
        assert [(c.description, c.details) for c in event.checks] == [("Disk full?", "91 % used")]
        assert (event.kind, event.alert_id) == ("checks", result.alert_id)
    assert fake.calls == 1
    listed = await alert_list(phone)
    assert [a.alert_id for a in listed.alerts] == [result.alert_id]
    current = await status(phone)
    assert current.last_run is not None
    assert (current.last_run.status, current.last_run.alerted) == ("ok", True)


async def test_configure_twice_keeps_one_schedule(
    hb_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    path = write_checklist(
        hb_gateway.data_dir / "HEARTBEAT.md", ["x?"], front="interval: 45m\ntimezone: Asia/Tokyo"
    )
    client = await hb_gateway.client()
    first = await configure(client, heartbeat_path="HEARTBEAT.md", interval=10)
    second = await configure(
        client,
        heartbeat_path=str(path),
        timezone="America/New_York",
        active_hours=ActiveHoursSpec(start="08:00", end="20:00"),
    )
    assert first == second
    listing = await client.request(ScheduleList(id="l"), ScheduleListResult)
    [item] = [s for s in listing.schedules if s.target == "heartbeat"]
    assert len(listing.schedules) == 1
    # Left out the second time, the interval falls back to the file's front matter.
    assert (item.id, item.every, item.timezone) == (first, "45m", "America/New_York")
    assert item.active_hours is not None
    current = await status(client)
    assert (current.interval, current.timezone, current.enabled) == (45, "America/New_York", True)
    assert current.heartbeat_path == str(path)

    await configure(client, enabled=False, interval="1h30m")
    current = await status(client)
    assert (current.enabled, current.interval, current.timezone) == (False, 90, "Asia/Tokyo")
    assert current.next_run is None
    assert current.active_hours is None

    for fields, field in (
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"interval": "soon"}, "interval"),
        ({"interval": 0}, "interval"),
        ({"heartbeat_path": "missing.md"}, "heartbeatPath"),
        (
            {"active_hours": ActiveHoursSpec(start="9am", end="18:00")},
            "activeHours.start",
        ),
    ):
        with pytest.raises(GatewayError) as refused:
            await configure(client, **fields)
        assert refused.value.code == ErrorCode.INVALID_HEARTBEAT
        assert refused.value.details == {"field": field}
    listing = await client.request(ScheduleList(id="l2"), ScheduleListResult)
    assert [s.id for s in listing.schedules] == [first]
    assert fake.calls == 0


async def test_front_matter_edits_apply_at_the_next_run(
    hb_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    path = write_checklist(hb_gateway.data_dir / "HEARTBEAT.md", ["x?"], front="interval: 45")
    fake.script_forever(fake_answer())
    client = await hb_gateway.client()
    await configure(client, timezone="Europe/Paris")
    write_checklist(path, ["x?"], front="interval: 20\ntimezone: Asia/Tokyo")
    assert (await run_now(client)).status == "ok"
    current = await status(client)
    # The interval follows the file; the zone was given explicitly and stays.
    assert (current.interval, current.timezone) == (20, "Europe/Paris")


async def test_a_streaming_chat_defers_the_run_then_it_runs_anyway(
    data_dir: Path, database_url: str, fake: FakeOpenAI
) -> None:
    write_checklist(data_dir / "HEARTBEAT.md", ["Disk full?"])
    fake.script(Delay(60, then=Text("too late")))
    fake.script_forever(fake_answer())
    settings = model_settings(fake, heartbeat={"defer_s": 0.2, "defer_times": 2})
    async with in_process_gateway(data_dir, database_url, **settings) as gw:
        client = await gw.client()
        chat = await client.request(ChatSend(id="c", content="hello"), ChatStreamStart)
        await fake.wait_for_calls(1)
        result = await run_now(client)
        assert (result.status, result.deferred) == ("ok", 2)
        assert gw.hearth.chat.busy()  # it ran although the chat still streams
        assert fake.calls == 2
        await client.request(ChatCancel(id="x", request_id=chat.request_id), ChatCancelled)


async def test_the_end_of_a_chat_wakes_a_deferred_run(
    data_dir: Path, database_url: str, fake: FakeOpenAI
) -> None:
    write_checklist(data_dir / "HEARTBEAT.md", ["Disk full?"])
    fake.script(Delay(60, then=Text("too late")))
    fake.script_forever(fake_answer())
    # Deferrals far longer than the test's own time limit: only the chat's end lets it run.
    settings = model_settings(fake, heartbeat={"defer_s": 3600, "defer_times": 1})
    async with in_process_gateway(data_dir, database_url, **settings) as gw:
        client = await gw.client()
        chat = await client.request(ChatSend(id="c", content="hello"), ChatStreamStart)
        await fake.wait_for_calls(1)
        running = asyncio.create_task(run_now(client))
        async with asyncio.timeout(30):
            while (current := await status(client)).last_run is None:
                await asyncio.sleep(0.05)
        assert current.last_run is not None
        assert current.last_run.status == "running"
        assert fake.calls == 1  # waiting for the chat, not asking the model
        await client.request(ChatCancel(id="x", request_id=chat.request_id), ChatCancelled)
        result = await running
        assert result.status == "ok"
        assert result.deferred in (0, 1)
        assert not gw.hearth.chat.busy()
        assert fake.calls == 2


async def test_active_hours_are_judged_in_the_heartbeat_zone(
    hb_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    write_checklist(hb_gateway.data_dir / "HEARTBEAT.md", ["Disk full?"])
    fake.script_forever(fake_answer())
    client = await hb_gateway.client()
    zone = "Asia/Kathmandu"  # UTC+05:45: a window read in UTC would be off by hours
    local = datetime.now(ZoneInfo(zone))
    outside = ActiveHoursSpec(
        start=(local + timedelta(hours=2)).strftime("%H:%M"),
        end=(local + timedelta(hours=3)).strftime("%H:%M"),
    )
    schedule_id = await configure(client, interval="1s", timezone=zone, active_hours=outside)
    history = await wait_runs(client, schedule_id, 2, status={"skipped"})
    assert {r.reason for r in history} == {"outside_active_hours"}
    assert fake.calls == 0
    assert (await status(client)).last_run is None

    manual = await run_now(client)  # a manual run ignores active hours
    assert manual.status == "ok"
    assert fake.calls == 1

    inside = ActiveHoursSpec(
        start=(local - timedelta(hours=1)).strftime("%H:%M"),
        end=(local + timedelta(hours=1)).strftime("%H:%M"),
    )
    await configure(client, interval="1s", timezone=zone, active_hours=inside)
    history = await wait_runs(client, schedule_id, 1, status={"ok"})
    assert "ok" in {r.status for r in history}
    assert fake.calls >= 2


async def test_scheduled_runs_record_their_outcome_in_the_schedule_history(
    data_dir: Path, database_url: str, fake: FakeOpenAI
) -> None:
    path = write_checklist(data_dir / "HEARTBEAT.md", [])
    settings = model_settings(fake, schedules={"max_consecutive_failures": 2})
    async with in_process_gateway(data_dir, database_url, **settings) as gw:
        client = await gw.client()
        schedule_id = await configure(client, interval="1s")
        skipped = await wait_runs(client, schedule_id, 1, status={"skipped"})
        assert next(r.reason for r in skipped if r.status == "skipped") == "empty"
        path.unlink()
        failed = await wait_runs(client, schedule_id, 3, status={"failed"})
        reasons = {r.reason for r in failed if r.status == "failed"}
        assert all(str(path) in (reason or "") for reason in reasons)
        # The heartbeat says itself that it is failing ...
        alert = await client.next_event("heartbeat.alert", timeout_s=30)
        assert isinstance(alert, HeartbeatAlert)
        assert alert.kind == "failing"
        assert str(path) in (alert.message or "")
        # ... and, unlike a workflow schedule, is never disabled by its failures.
        listing = await client.request(ScheduleList(id="l"), ScheduleListResult)
        [item] = listing.schedules
        assert (item.state, item.enabled) == ("active", True)
        assert item.consecutive_failures >= 3
        assert all(r.execution_id for r in await runs(client, schedule_id))
        assert fake.calls == 0


async def test_schedule_trigger_and_pause_work_on_the_heartbeat(
    hb_gateway: RunningGateway, fake: FakeOpenAI
) -> None:
    write_checklist(hb_gateway.data_dir / "HEARTBEAT.md", ["Disk full?"])
    fake.script_forever(fake_answer())
    client = await hb_gateway.client()
    schedule_id = await configure(client, interval="1h")
    triggered = await client.request(
        ScheduleTrigger(id="t", schedule_id=schedule_id), ScheduleTriggered
    )
    [run] = await wait_runs(client, schedule_id, 1, status={"ok"})
    assert (run.reason, run.execution_id) == ("manual", triggered.execution_id)
    current = await status(client)
    assert current.last_run is not None
    assert (current.last_run.run_id, current.last_run.status) == (triggered.execution_id, "ok")
    await client.request(
        ScheduleUpdate(id="p", schedule_id=schedule_id, enabled=False), ScheduleUpdated
    )
    assert not (await status(client)).enabled


async def test_llamacpp_structured_output_falls_back_to_prompted_json(data_dir: Path) -> None:
    write_checklist(data_dir / "HEARTBEAT.md", ["Disk full?", "Backup ran?"])
    async with FakeOpenAI(mode="llamacpp") as fake:
        fake.script(
            JsonContent(
                {
                    "checks": [
                        {"description": "Disk full?", "actionNeeded": True, "details": "95 %"},
                        {"description": "Backup ran?", "actionNeeded": False},
                    ]
                }
            )
        )
        async with in_process_gateway(data_dir, **model_settings(fake)) as gw:
            client = await gw.client()
            result = await run_now(client)
        assert (result.status, result.alerted) == ("ok", True)
        assert [c.action_needed for c in result.checks] == [True, False]
        # The forced output tool was refused, then the prompted-JSON form answered.
        assert (fake.rejected, fake.calls) == (1, 2)
        assert fake.requests[0].get("tool_choice") == "required"
        assert fake.requests[1].get("tool_choice") != "required"
        assert "Disk full?" in str(fake.requests[1]["messages"])
        # The read-only tools are offered on both attempts.
        for request in fake.requests:
            names = {t["function"]["name"] for t in request.get("tools", [])}
            assert {"file_read", "http_request"} <= names
            assert "file_write" not in names


async def test_configuration_and_alerts_survive_sigkill(data_dir: Path, database_url: str) -> None:
    write_checklist(data_dir / "HEARTBEAT.md", ["Disk full?"])
    sqlite = database_url.startswith("sqlite")
    args = () if sqlite else ("--database-url", database_url)
    async with FakeOpenAI() as fake:
        fake.script_forever(fake_answer(lambda item: "95 %"))
        (data_dir / "config.toml").write_text(model_config_toml(fake))
        first = start_gateway_process(data_dir, *args)
        try:
            client = GatewayClient(first.url, first.token)
            await client.connect()
            schedule_id = await configure(client, interval="2h", timezone="Europe/Oslo")
            alerted = await run_now(client)
            assert alerted.alerted
            # Kill it in the middle of a run: the model does not answer before the kill.
            fake.script(Delay(60))
            cut_off = asyncio.create_task(run_now(client))
            await fake.wait_for_calls(2)
        finally:
            first.kill()
        with pytest.raises(ConnectionLostError):
            await cut_off
        await client.close()

        second = start_gateway_process(data_dir, *args)
        try:
            client = GatewayClient(second.url, second.token)
            await client.connect()
            current = await status(client)
            assert (current.schedule_id, current.interval, current.timezone) == (
                schedule_id,
                120,
                "Europe/Oslo",
            )
            assert current.last_run is not None
            if sqlite:
                # The only process on this database: the cut-off run is closed at start-up.
                assert current.last_run.status == "error"
                assert "interrupted" in (current.last_run.reason or "")
            else:
                # Another node could still be running it; it is closed once it is overdue.
                assert current.last_run.status == "running"
            listed = await alert_list(client)
            assert [a.alert_id for a in listed.alerts] == [alerted.alert_id]
            # The history still dedupes: the same alert is not sent again.
            again = await run_now(client)
            assert (again.status, again.alerted) == ("ok", False)
            await client.close()
        finally:
            assert second.stop() == 0, second.log()
