"""The web dashboard in a real Chromium against a real gateway and the fake model server.

One browser and one gateway serve the whole module (starting them is most of the cost); each
test makes the data it needs, so the tests also pass when xdist splits the module. Every test
saves screenshots of what it showed (DASHBOARD_SCREENSHOTS=docs/img refreshes the committed ones)
and fails on any console error, which includes Content-Security-Policy violations.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from hearth.client import GatewayClient
from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult, ApprovalResolved
from hearth.protocol.messages.notifications import NotificationList, NotificationListResult
from hearth.protocol.messages.schedules import ScheduleCreate, ScheduleCreated
from hearth.protocol.messages.workflows import WorkflowApproval, WorkflowApprovalResolved
from tests.support.browser import (
    DESKTOP,
    PHONE,
    chromium,
    gateway_on_port,
    login,
    open_page,
    port_of,
    require_chromium,
    screenshot,
    screenshot_dir,
    wait_online,
)
from tests.support.fake_openai import FakeOpenAI, Text, ToolCall, tool_results
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.schedules import FAILING, create, wait_runs
from tests.support.workflows import reload, trigger, wait_status, write_workflow

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

GATED = """
    name: Release
    description: Asks before it ships
    steps:
      - id: ask
        action: noop
        approval_required: true
        approval_prompt: "Ship the release?"
"""

GREET = """
    name: Greet
    description: Says hello with a notification
    inputs:
      who: {type: string, required: true, description: whom to greet}
      times: {type: integer, default: 1}
    steps:
      - id: prepare
        action: noop
      - id: tell
        action: tool
        tool: notify
        args: {message: "Hello {{ input.who }} x{{ input.times }}", level: info}
"""

QUICK = """
    name: Quick
    steps:
      - id: only
        action: noop
"""


def expect(target: Any) -> Any:
    from playwright.async_api import expect as pw_expect

    return pw_expect(target)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Any]:
    require_chromium()
    async with chromium() as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def gw(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI
) -> AsyncIterator[RunningGateway]:
    data_dir = tmp_path_factory.mktemp("dash") / "data"
    data_dir.mkdir()
    for name, text in (("release", GATED), ("greet", GREET), ("quick", QUICK)):
        write_workflow(data_dir, name, text)
    settings = {
        "providers": {"local": {"kind": "openai", "base_url": fake.base_url}},
        "models": {"default": "local:fake-model"},
    }
    async with in_process_gateway(data_dir, None, **settings) as running:
        yield running


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot_dir(tmp_path_factory.mktemp("screenshots"))


async def watcher(gw: RunningGateway, name: str) -> GatewayClient:
    client = await gw.client(client_name=name)
    await reload(client)
    return client


async def test_login_moves_the_token_out_of_the_address_and_asks_without_one(
    browser: Any, gw: RunningGateway, shots: Path
) -> None:
    context, page, watch = await open_page(browser)
    response = await page.goto(f"{gw.url}/#token={gw.token}")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "http" not in csp
    await page.wait_for_selector("nav a[aria-current='page']")
    await wait_online(page)
    assert "token" not in page.url
    assert await page.evaluate("sessionStorage.getItem('hearth.token')") == gw.token
    await expect(page.get_by_text("Database")).to_be_visible()
    await screenshot(page, shots, "overview")

    fresh, other, _other_watch = await open_page(browser, PHONE)
    await other.goto(f"{gw.url}/")
    await other.get_by_label("Gateway token").fill("not-the-token")
    await screenshot(other, shots, "login")
    await other.get_by_role("button", name="Log in").click()
    await expect(other.get_by_role("alert")).to_contain_text("refused the token")
    await other.get_by_role("button", name="Enter another token").click()
    await other.get_by_label("Gateway token").fill(gw.token)
    await other.keyboard.press("Enter")
    await wait_online(other)
    await expect(other.get_by_text("Database")).to_be_visible()
    await screenshot(other, shots, "overview")
    # The refused token is the one console error expected: the socket closed with 4401.
    assert watch.errors == []
    await context.close()
    await fresh.close()


async def test_approving_in_the_inbox_reaches_other_clients_and_their_answers_show_live(
    browser: Any, gw: RunningGateway, shots: Path
) -> None:
    client = await watcher(gw, "phone-script")
    ours = await trigger(client, "release")
    theirs = await trigger(client, "release")
    for execution_id in (ours, theirs):
        await wait_status(client, execution_id, {"paused"})
    context, page, watch = await open_page(browser)
    await login(page, gw.url, gw.token, "approvals")
    mine = page.locator("li.approval", has=page.locator(f"a[href='#/executions/{ours}']"))
    other = page.locator("li.approval", has=page.locator(f"a[href='#/executions/{theirs}']"))
    await expect(mine).to_contain_text("Ship the release?")
    await expect(other).to_be_visible()
    await screenshot(page, shots, "approvals")

    await mine.get_by_label("Comment (optional)").fill("ship it")
    await mine.get_by_role("button", name="Approve").click()
    event = await client.next_event("approval.resolved")
    assert isinstance(event, ApprovalResolved)
    assert (event.execution_id, event.step_id, event.status) == (ours, "ask", "approved")
    assert event.answered_by is not None
    assert event.answered_by.client == "hearth-dashboard"
    assert event.comment == "ship it"
    await wait_status(client, ours, {"completed"})
    await expect(mine).to_have_count(0)

    await client.request(
        WorkflowApproval(
            id="deny", execution_id=theirs, step_id="ask", approved=False, comment="not today"
        ),
        WorkflowApprovalResolved,
    )
    await expect(other).to_have_count(0)
    await expect(page.get_by_test_id("answered-elsewhere")).to_contain_text(
        "denied by phone-script (ws): not today"
    )
    await page.set_viewport_size(PHONE)
    await screenshot(page, shots, "approvals")
    # The execution's timeline says who answered its gate, and how.
    await page.set_viewport_size(DESKTOP)
    await page.evaluate("r => { location.hash = r }", f"#/executions/{ours}")
    timeline = page.get_by_test_id("timeline")
    await expect(timeline).to_contain_text("hearth-dashboard (ws)")
    await expect(timeline).to_contain_text("ship it")
    await page.evaluate("r => { location.hash = r }", f"#/executions/{theirs}")
    await expect(page.get_by_test_id("execution-status")).to_contain_text("cancelled")
    await expect(page.get_by_test_id("timeline")).to_contain_text("phone-script")
    assert watch.errors == []
    await context.close()


def _hour(h: int) -> str:
    return f"{h % 24:02d}:00"


async def test_a_schedule_made_with_a_preview_fires_and_shows_in_the_list(
    browser: Any, gw: RunningGateway, shots: Path
) -> None:
    await watcher(gw, "reloader")
    context, page, watch = await open_page(browser)
    await login(page, gw.url, gw.token, "schedules")
    await page.get_by_role("button", name="New schedule").click()
    form = page.get_by_role("form", name="New schedule")
    await form.get_by_label("Name").fill("every two seconds")
    await form.get_by_label("Workflow").select_option("quick")
    await form.get_by_label("Time zone").fill("UTC")
    # Hourly ticks with a window from two to four hours ahead: the preview shows the first
    # tick skipped for active hours and later ones firing.
    await form.get_by_label("Cron expression").fill("0 * * * *")
    await form.get_by_label("Only during active hours").check()
    now = datetime.now(UTC)
    await form.get_by_label("From").fill(_hour(now.hour + 2))
    await form.get_by_label("To").fill(_hour(now.hour + 4))
    preview = page.get_by_test_id("preview")
    await expect(preview.locator("li")).to_have_count(5)
    await expect(preview.locator("li.skipped").first).to_contain_text("outside active hours")
    assert await preview.locator("li:not(.skipped)").count() >= 1
    await expect(preview).to_contain_text("every hour at minute 0, UTC")
    await screenshot(page, shots, "schedule-form")

    await form.get_by_label("Only during active hours").uncheck()
    await form.get_by_label("every (30m, 2h)").check()
    await form.get_by_label("Interval").fill("2s")
    await expect(preview.locator("li:not(.skipped)")).to_have_count(5)
    await form.get_by_role("button", name="Create schedule").click()
    item = page.locator("li.schedule[data-schedule='every two seconds']")
    await expect(item).to_contain_text("every 2s, UTC")
    await expect(item.get_by_test_id("last-run")).to_contain_text("ok", timeout=20_000)
    await item.get_by_role("button", name="History").click()
    await expect(item.locator(".history tbody tr").first).to_contain_text("ok")
    await item.get_by_role("button", name="Pause").click()
    await expect(item.locator(".badge-paused")).to_be_visible()
    await screenshot(page, shots, "schedules")
    await page.set_viewport_size(PHONE)
    await screenshot(page, shots, "schedules")
    assert watch.errors == []
    await context.close()


async def test_a_workflow_triggered_from_its_form_shows_its_timeline(
    browser: Any, gw: RunningGateway, shots: Path
) -> None:
    client = await watcher(gw, "reader")
    context, page, watch = await open_page(browser)
    await login(page, gw.url, gw.token, "workflows")
    card = page.locator("li.workflow[data-workflow='greet']")
    await card.get_by_role("button", name="Run…").click()
    await card.get_by_label("who").fill("Ada")
    await card.get_by_label("times").fill("3")
    await screenshot(page, shots, "workflows")
    await card.get_by_role("button", name="Run Greet").click()
    await expect(page.get_by_test_id("execution-status")).to_contain_text("completed")
    timeline = page.get_by_test_id("timeline")
    await expect(timeline.locator("li.step")).to_have_count(2)
    await expect(timeline.locator("li.step").nth(0)).to_contain_text("prepare")
    await expect(timeline.locator("li.step").nth(1)).to_contain_text("tell")
    execution_id = page.url.rsplit("/", 1)[-1]
    await screenshot(page, shots, "execution")
    notes = await client.request(
        NotificationList(id="n", execution_id=execution_id), NotificationListResult
    )
    assert [n.message for n in notes.notifications] == ["Hello Ada x3"]

    await page.evaluate("location.hash = '#/executions'")
    await page.get_by_label("Workflow").select_option("greet")
    await page.get_by_label("Status").select_option("completed")
    rows = page.get_by_test_id("executions").locator("tbody tr")
    await expect(rows.first).to_contain_text("greet")
    await page.get_by_label("Status").select_option("failed")
    await expect(rows).to_have_count(0)
    assert watch.errors == []
    await context.close()


def write_then_answer(body: dict[str, Any]) -> Any:
    if body["messages"][-1]["role"] == "tool":
        return Text("**Done**: the note says " + str(tool_results(body)[-1]["content"])[:80])
    return ToolCall(
        "file_write", {"path": "note.txt", "content": "hi", "mode": "overwrite"}, id="call-1"
    )


async def test_a_streamed_chat_reply_with_an_inline_tool_approval(
    browser: Any, gw: RunningGateway, fake: FakeOpenAI, shots: Path
) -> None:
    fake.script_forever(write_then_answer)
    context, page, watch = await open_page(browser)
    await login(page, gw.url, gw.token, "chat")
    await page.get_by_label("Message").fill("write a note")
    await page.get_by_label("Message").press("Enter")
    approve = page.get_by_role("group", name="Approve file.write?")
    await expect(approve).to_be_visible()
    await screenshot(page, shots, "chat-approval")
    await approve.get_by_role("button", name="Allow", exact=True).click()
    reply = page.locator(".msg.assistant[data-status='completed']")
    await expect(reply.locator(".markdown strong")).to_have_text("Done")
    await expect(reply.get_by_test_id("usage")).to_contain_text("tokens")
    assert (gw.data_dir / "workspace" / "note.txt").read_text() == "hi"
    await expect(page.locator(".sessions li")).not_to_have_count(0)
    await screenshot(page, shots, "chat")
    await page.set_viewport_size(PHONE)
    await screenshot(page, shots, "chat")
    assert watch.errors == []
    await context.close()


async def test_every_page_renders_at_phone_and_desktop_width(
    browser: Any, gw: RunningGateway, shots: Path
) -> None:
    client = await watcher(gw, "seeder")
    await trigger(client, "greet", {"who": "Grace"})
    waiting = await trigger(client, "release")
    await wait_status(client, waiting, {"paused"})
    await client.request(
        ScheduleCreate(
            id="s",
            name="weekday digest",
            cron_expression="30 8 * * 1-5",
            timezone="Europe/Berlin",
            workflow_id="quick",
        ),
        ScheduleCreated,
    )
    pages = ["", "approvals", "executions", "workflows", "schedules", "heartbeat", "notifications"]
    for viewport in (DESKTOP, PHONE):
        context, page, watch = await open_page(browser, viewport)
        await login(page, gw.url, gw.token)
        for route in pages:
            await page.evaluate("r => { location.hash = r }", f"#/{route}")
            await expect(page.locator("main h2").first).to_be_visible()
            await page.wait_for_load_state("networkidle")
            if route == "schedules":
                await expect(page.locator("[data-schedule='weekday digest']")).to_contain_text(
                    "at 08:30 on weekdays, Europe/Berlin"
                )
            await screenshot(page, shots, route or "overview")
        if viewport is PHONE:
            # The navigation folds into a menu that opens from the keyboard.
            menu = page.get_by_role("button", name="Menu")
            await menu.focus()
            await page.keyboard.press("Enter")
            await expect(page.locator("#nav")).to_be_visible()
            await page.get_by_role("link", name="Heartbeat").click()
            await expect(page.locator("#nav")).to_be_hidden()
        await page.emulate_media(color_scheme="dark")
        await page.evaluate("location.hash = '#/'")
        await screenshot(page, shots, "overview-dark")
        assert watch.errors == []
        await context.close()


async def test_the_page_survives_a_gateway_restart(
    browser: Any, tmp_path: Path, shots: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    context, page, watch = await open_page(browser)
    async with gateway_on_port(data_dir) as (_, url, token):
        await login(page, url, token)
        await expect(page.get_by_text("Uptime")).to_be_visible()
    offline = page.get_by_test_id("offline")
    await expect(offline).to_contain_text("Offline")
    await screenshot(page, shots, "offline")
    async with gateway_on_port(data_dir, port_of(url)) as (_, again, _token):
        assert again == url
        await expect(offline).to_have_count(0, timeout=20_000)
        await expect(page.get_by_text("Uptime")).to_be_visible()
        # Requests work again on the new connection.
        await page.evaluate("location.hash = '#/workflows'")
        await expect(page.get_by_role("button", name="Reload files")).to_be_enabled()
    # Connection refusals while the gateway was down are logged by Chromium as errors.
    unexpected = [e for e in watch.errors if "WebSocket" not in e]
    assert unexpected == []
    await context.close()


async def test_answers_reach_the_page_without_polling(browser: Any, gw: RunningGateway) -> None:
    """The pending count in the navigation follows approvals made elsewhere."""
    client = await watcher(gw, "counter")
    context, page, _ = await open_page(browser)
    await login(page, gw.url, gw.token)
    badge = page.locator("nav a[href='#/approvals'] .count")
    # Other tests in the module leave approvals pending. Read their number from the gateway and
    # wait until the page shows it, so the page's first load cannot be mistaken for the event.
    pending = await client.request(ApprovalList(id="p"), ApprovalListResult)
    before = len(pending.approvals)
    if before:
        await expect(badge).to_have_text(str(before))
    else:
        await expect(badge).to_have_count(0)
    execution_id = await trigger(client, "release")
    await expect(badge).to_have_text(str(before + 1))
    await client.request(
        WorkflowApproval(id="a", execution_id=execution_id, step_id="ask", approved=True),
        WorkflowApprovalResolved,
    )
    if before:
        await expect(badge).to_have_text(str(before))
    else:
        await expect(badge).to_have_count(0)
    await asyncio.sleep(0)
    await context.close()


async def test_the_overview_lists_the_failing_schedules_the_gateway_names(
    browser: Any, gw: RunningGateway
) -> None:
    """The overview asks for `failing: true`: a broken schedule shows, a healthy one does not."""
    write_workflow(gw.data_dir, "broken", FAILING)
    client = await watcher(gw, "failing")
    broken = await create(
        client, name="nightly backup", every="1s", workflow_id="broken", max_runs=1
    )
    await create(client, name="healthy sync", every="1h", workflow_id="quick", enabled=False)
    await wait_runs(client, broken, 1, status={"failed"})
    context, page, watch = await open_page(browser)
    await login(page, gw.url, gw.token)
    failing = page.locator(
        "section.card", has=page.get_by_role("heading", name="Failing schedules")
    )
    await expect(failing).to_contain_text("nightly backup")
    await expect(failing).to_contain_text("1 failures in a row")
    await expect(failing).not_to_contain_text("healthy sync")
    assert watch.errors == []
    await context.close()
