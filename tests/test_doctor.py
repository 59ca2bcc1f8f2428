"""`hearth doctor` against a real gateway, a fake model server and a real data directory."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_telegram import FakeTelegram
from tests.support.gateway import start_gateway_process
from tests.support.heartbeat import model_config_toml
from tests.support.workflows import write_workflow

pytestmark = pytest.mark.slow


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def doctor(data_dir: Path, *args: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env["HEARTH_DATA_DIR"] = str(data_dir)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hearth",
        "doctor",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode()


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"]}


async def test_healthy_install_then_a_broken_workflow_fails_with_its_fix(
    data_dir: Path, fake: FakeOpenAI
) -> None:
    (data_dir / "config.toml").write_text(model_config_toml(fake))
    write_workflow(data_dir, "fine", "name: Fine\nsteps:\n  - {id: a, action: noop}\n")
    gateway = start_gateway_process(data_dir)
    try:
        code, out = await doctor(data_dir, "--json")
        assert code == 0, out
        report = json.loads(out)
        checks = by_name(report)
        assert report["ok"] is True
        for name in ("config", "database", "integrity", "gateway", "workflows"):
            assert checks[name]["status"] == "ok", checks[name]
        assert checks["provider local"] == {
            "name": "provider local",
            "status": "ok",
            "detail": "answers, lists fake-model",
            "fix": None,
        }
        assert checks["heartbeat"]["status"] == "warn"  # not configured yet: a hint, not a fault

        write_workflow(data_dir, "broken", "name: Broken\nsteps:\n  - {id: a, action: tool}\n")
        code, out = await doctor(data_dir)
        assert code == 1, out
        line = next(x for x in out.splitlines() if "workflows" in x)
        assert line.startswith("FAIL")
        assert "1 of 2 invalid; broken:" in line
        assert "fix: hearth workflow validate FILE" in out
    finally:
        gateway.stop()


async def test_unreachable_provider_and_stopped_gateway(data_dir: Path, fake: FakeOpenAI) -> None:
    (data_dir / "config.toml").write_text(
        '[models]\ndefault = "local:m"\n\n[providers.local]\nkind = "openai"\n'
        'base_url = "http://127.0.0.1:9/v1"\n'
    )
    code, out = await doctor(data_dir, "--json")
    assert code == 1
    checks = by_name(json.loads(out))
    assert checks["provider local"]["status"] == "fail"
    assert "unreachable" in checks["provider local"]["detail"]
    assert checks["gateway"]["status"] == "warn"
    assert checks["gateway"]["fix"] == "start it: hearth serve"


async def test_a_bad_config_is_the_one_failure_reported(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text("prot = 1\n")
    code, out = await doctor(data_dir)
    assert code == 1
    assert out.startswith("FAIL  config  bad setting prot: unknown setting")
    assert "fix: correct that key in config.toml" in out


async def test_loose_modes_are_named_with_the_chmod_that_fixes_them(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text("port = 8421\n")
    data_dir.chmod(0o755)
    (data_dir / "config.toml").chmod(0o644)
    _, out = await doctor(data_dir, "--json")
    check = by_name(json.loads(out))["data dir"]
    assert check["status"] == "warn"
    assert check["detail"] == f"readable by other users: {data_dir} is 755, config.toml is 644"
    assert check["fix"].startswith(f"chmod 700 {data_dir}")

    data_dir.chmod(0o700)
    (data_dir / "config.toml").chmod(0o600)
    _, out = await doctor(data_dir, "--json")
    assert by_name(json.loads(out))["data dir"]["status"] == "ok"


async def test_telegram_polling_and_a_409_conflict(data_dir: Path) -> None:
    async with FakeTelegram() as bot:
        (data_dir / "config.toml").write_text(
            f'[telegram]\nenabled = true\napi_base_url = "{bot.base_url}"\n'
            "stall_after_s = 2\npoll_timeout_s = 1\n"
        )
        # Not waited for here: its start asks the fake bot, which answers from this loop.
        gateway = start_gateway_process(
            data_dir, env={"HEARTH_TELEGRAM__TOKEN": bot.token}, wait=False
        )
        try:
            await asyncio.to_thread(gateway.wait_ready)
            telegram = None
            for _ in range(60):
                _, out = await doctor(data_dir, "--json")
                telegram = by_name(json.loads(out)).get("telegram")
                if telegram and telegram["status"] == "ok":
                    break
                await asyncio.sleep(0.5)
            assert telegram is not None, out
            assert telegram["status"] == "ok", (telegram, gateway.log()[-3000:])
            assert "polling on this node" in telegram["detail"]

            bot.conflict = True
            async with asyncio.timeout(60):
                while True:
                    code, out = await doctor(data_dir, "--json")
                    telegram = by_name(json.loads(out))["telegram"]
                    if telegram["status"] == "fail":
                        break
                    await asyncio.sleep(0.5)
            assert code == 1
            assert "409" in telegram["detail"]
            assert "409" in telegram["fix"]
        finally:
            bot.conflict = False
            gateway.stop()
