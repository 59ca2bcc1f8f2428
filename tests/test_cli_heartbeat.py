"""`hearth init` and `hearth heartbeat …` as a person uses them: real processes end to end.

The gateway runs as `hearth serve` in a child process and talks to the fake OpenAI server,
which runs in this test's event loop; every command runs as its own `python -m hearth` process
(started with asyncio, so the fake server keeps answering while a command waits).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.heartbeat.checklist import EXAMPLE
from hearth.protocol.messages.heartbeat import HeartbeatStatus, HeartbeatStatusResult
from tests.support.fake_openai import FakeOpenAI, HttpError
from tests.support.gateway import GatewayProcess, start_gateway_process
from tests.support.heartbeat import fake_answer, model_config_toml, write_checklist

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TABLE_LINES = re.compile(r"[\u2500-\u257f]")
TIMEOUT_S = 120
MARKUP_ITEM = "[bold]Disk[/bold] on the NAS full?"


@dataclass
class Result:
    code: int
    out: str
    err: str


def flat(text: str) -> str:
    """Without colour codes and table lines, whitespace collapsed."""
    return " ".join(TABLE_LINES.sub(" ", ANSI.sub("", text)).split())


async def hearth(data_dir: Path, *args: str, cwd: Path | None = None) -> Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(HEARTH_DATA_DIR=str(data_dir), COLUMNS="200")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hearth",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    result = Result(process.returncode or 0, out.decode(), err.decode())
    assert "Traceback" not in result.out + result.err, result
    return result


def ok(result: Result) -> str:
    assert result.code == 0, result
    return flat(result.out)


async def heartbeat_status(gateway: GatewayProcess) -> HeartbeatStatusResult:
    async with GatewayClient(gateway.url, gateway.token) as client:
        return await client.request(HeartbeatStatus(id="s"), HeartbeatStatusResult)


async def test_init_writes_an_example_and_never_overwrites(data_dir: Path) -> None:
    path = data_dir / "HEARTBEAT.md"
    first = ok(await hearth(data_dir, "init"))
    assert path.read_text(encoding="utf-8") == EXAMPLE
    assert f"wrote an example checklist to {path}" in first
    assert "[models] default" in first  # no model configured yet: say how
    assert "hearth serve" in first
    assert "hearth heartbeat configure" in first

    path.write_text("- [ ] mine\n", encoding="utf-8")
    second = ok(await hearth(data_dir, "init"))
    assert "already exists; left as it is" in second
    assert path.read_text(encoding="utf-8") == "- [ ] mine\n"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def test_configure_run_status_and_alerts(data_dir: Path, fake: FakeOpenAI) -> None:
    write_checklist(data_dir / "HEARTBEAT.md", [MARKUP_ITEM, "Backup ran?"])
    # The test moves the checklist outside the data directory later, which must be allowed.
    config = model_config_toml(fake) + "\n[heartbeat]\nallow_outside = true\n"
    (data_dir / "config.toml").write_text(config)
    fake.script_forever(fake_answer(lambda item: "[red]95 %[/red]" if "NAS" in item else None))
    gateway = start_gateway_process(data_dir)
    try:
        before = ok(await hearth(data_dir, "heartbeat", "status"))
        assert "not configured" in before

        configured = ok(
            await hearth(
                data_dir,
                "heartbeat",
                "configure",
                "--interval",
                "45m",
                "--tz",
                "Asia/Tokyo",
                "--active-hours",
                "09:00-18:00",
                "--days",
                "1-5",
            )
        )
        assert re.search(r"heartbeat configured \(schedule [0-9a-f-]{36}\); next run", configured)
        current = await heartbeat_status(gateway)
        assert (current.interval, current.timezone, current.enabled) == (45, "Asia/Tokyo", True)
        assert current.active_hours is not None
        assert current.active_hours.days_of_week == [1, 2, 3, 4, 5]

        shown = ok(await hearth(data_dir, "heartbeat", "status"))
        assert "enabled" in shown
        assert "every 45m in Asia/Tokyo" in shown
        assert "active 09:00-18:00 on days 1,2,3,4,5" in shown

        ran = ok(await hearth(data_dir, "heartbeat", "run"))
        assert ": ok" in ran
        assert f"needs you {MARKUP_ITEM} [red]95 %[/red]" in ran  # printed, not interpreted
        assert "fine Backup ran?" in ran
        assert "alert sent" in ran

        listed = ok(await hearth(data_dir, "heartbeat", "alerts"))
        assert f"{MARKUP_ITEM} — [red]95 %[/red]" in listed
        assert "Backup ran?" not in listed

        # A relative --path is the person's current directory, not the gateway's.
        moved = data_dir.parent / "elsewhere" / "CHECKS.md"
        write_checklist(moved, ["Anything?"])
        ok(
            await hearth(
                data_dir,
                "heartbeat",
                "configure",
                "--path",
                "elsewhere/CHECKS.md",
                "--disable",
                cwd=data_dir.parent,
            )
        )
        current = await heartbeat_status(gateway)
        assert (current.heartbeat_path, current.enabled) == (str(moved), False)
        assert (current.interval, current.active_hours) == (30, None)  # back to the defaults
        assert "paused" in ok(await hearth(data_dir, "heartbeat", "status"))

        refused = await hearth(data_dir, "heartbeat", "configure", "--tz", "Mars/Olympus")
        assert refused.code != 0
        [line] = ANSI.sub("", refused.err).strip().splitlines()
        assert "Mars/Olympus" in line

        fake.script(HttpError(400, "model [b]not[/b] loaded"), HttpError(400, "still not"))
        failed = await hearth(data_dir, "heartbeat", "run")
        assert failed.code == 1
        assert ": error" in flat(failed.out)
        assert "still not" in flat(failed.out)
    finally:
        assert gateway.stop() == 0, gateway.log()
