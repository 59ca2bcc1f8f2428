"""config.toml reloads without a restart: SIGHUP, `hearth reload`, and edits of the file."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hearth.client import GatewayClient, GatewayError
from hearth.config import load_settings
from hearth.live_config import plan_reload
from hearth.protocol import ErrorCode
from hearth.protocol.messages.chat import ChatSend, ChatStreamStart
from hearth.protocol.messages.config import (
    ConfigReload,
    ConfigReloadResult,
    ModelsList,
    ModelsListResult,
)
from tests.support.cli import run_cli
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import GatewayProcess, in_process_gateway, start_gateway_process

NO_WATCH = {"HEARTH_WATCH_CONFIG": "false"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def wait_for_log(gw: GatewayProcess, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in gw.log():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{text!r} not logged:\n{gw.log()}")
        time.sleep(0.05)


def test_sighup_applies_models_and_names_restart_settings(data_dir: Path) -> None:
    gw = start_gateway_process(data_dir, env=NO_WATCH)
    try:
        before = run_cli(["models"], data_dir=data_dir, columns="200")
        assert before.returncode == 0, before.stderr
        assert "default model: not set (set default in the [models] table" in before.stdout
        assert "no gateway is running" not in before.stderr
        port = gw.runtime()["port"]
        (data_dir / "config.toml").write_text(
            f'database_url = "sqlite+aiosqlite:///{data_dir}/other.db"\n'
            '[models]\ndefault = "local:m1"\n'
            '[providers.local]\nbase_url = "http://127.0.0.1:9/v1"\n'
        )
        # The file now says m1, but the gateway has not read it: `hearth models` asks the
        # gateway, not the file.
        unchanged = run_cli(["models"], data_dir=data_dir, columns="200")
        assert "default model: not set" in unchanged.stdout
        gw.process.send_signal(signal.SIGHUP)
        wait_for_log(gw, "reloaded")
        log = gw.log()
        assert "applied models.default, providers.local" in log
        assert "needs a restart of the gateway: database_url" in log
        after = run_cli(["models"], data_dir=data_dir, columns="200")
        assert after.returncode == 0, after.stderr
        assert "default model: local:m1" in after.stdout
        assert "http://127.0.0.1:9/v1" in after.stdout
        # Still on the database it started with: that waits for a restart.
        status = run_cli(["status"], data_dir=data_dir)
        assert status.returncode == 0, status.stderr
        assert gw.runtime()["port"] == port
        assert not (data_dir / "other.db").exists()
    finally:
        assert gw.stop() == 0, gw.log()


def test_hearth_reload_reports_changes_and_refuses_a_bad_file(data_dir: Path) -> None:
    config = data_dir / "config.toml"
    config.write_text("[limits]\nhello_timeout_s = 10\n")
    gw = start_gateway_process(data_dir, env=NO_WATCH)
    try:
        nothing = run_cli(["reload"], data_dir=data_dir)
        assert nothing.returncode == 0, nothing.stderr
        assert nothing.stdout.strip() == f"reloaded {config}: nothing changed"

        config.write_text(
            'host = "127.0.0.2"\n[limits]\nhello_timeout_s = 5\n'
            '[tools]\npolicy = { "file.write" = "auto" }\n'
        )
        changed = run_cli(["reload"], data_dir=data_dir)
        assert changed.returncode == 0, changed.stderr
        lines = changed.stdout.splitlines()
        assert lines[0] == f"reloaded {config}"
        assert lines[1] == 'applied: limits.hello_timeout_s, tools.policy."file.write"'
        assert lines[2].startswith("host changed: restart the gateway to apply")

        config.write_text("[limits\nhello_timeout_s = 1\n")
        bad = run_cli(["reload"], data_dir=data_dir)
        assert bad.returncode == 1
        assert "Traceback" not in bad.stderr
        text = " ".join(bad.stderr.split())
        assert "CONFIG_INVALID" in text
        assert "invalid TOML" in text
        assert "the gateway keeps its running settings" in text
        assert "config reload (config.reload) failed; running settings kept" in gw.log()

        config.write_text("[limits]\nhello_timeout_s = 10\n")
        back = run_cli(["reload"], data_dir=data_dir)
        # The refused file changed nothing: going back to the first values undoes only the
        # reload that was applied (hello_timeout_s 5 → 10, the policy removed).
        assert back.stdout.splitlines()[1] == (
            'applied: limits.hello_timeout_s, tools.policy."file.write"'
        )
    finally:
        assert gw.stop() == 0, gw.log()


async def test_editing_config_toml_applies_the_new_model_to_chat(
    data_dir: Path, fake: FakeOpenAI
) -> None:
    async with in_process_gateway(data_dir) as gw:
        client = await gw.client()
        with pytest.raises(GatewayError) as refused:
            await client.request(ChatSend(id=client.next_id(), content="hi"), ChatStreamStart)
        assert refused.value.code == ErrorCode.MODEL_NOT_CONFIGURED
        (data_dir / "config.toml").write_text(
            '[models]\ndefault = "local:fake-model"\n'
            f'[providers.local]\nbase_url = "{fake.base_url}"\n'
        )
        listed = await wait_for_default(client, "local:fake-model")
        local = next(p for p in listed.providers if p.name == "local")
        assert local.base_url == fake.base_url
        started = await client.request(ChatSend(id=client.next_id(), content="hi"), ChatStreamStart)
        assert started.model == "local:fake-model"
        await fake.wait_for_calls(1)
        probed = await client.request(ModelsList(id=client.next_id(), probe=True), ModelsListResult)
        assert next(p for p in probed.providers if p.name == "local").status == "answers"


async def wait_for_default(client: GatewayClient, wanted: str) -> ModelsListResult:
    async with asyncio.timeout(30):
        while True:
            listed = await client.request(ModelsList(id=client.next_id()), ModelsListResult)
            if listed.default == wanted:
                return listed
            await asyncio.sleep(0.05)


async def test_config_reload_message_with_bad_value_keeps_running_settings(
    data_dir: Path,
) -> None:
    async with in_process_gateway(data_dir, watch_config=False) as gw:
        client = await gw.client()
        (data_dir / "config.toml").write_text("[heartbeat]\ndefer_times = -1\n")
        with pytest.raises(GatewayError) as bad:
            await client.request(ConfigReload(id=client.next_id()), ConfigReloadResult)
        assert bad.value.code == ErrorCode.CONFIG_INVALID
        assert "bad setting heartbeat.defer_times" in bad.value.message
        assert bad.value.details == {"path": str(data_dir / "config.toml")}
        assert gw.hearth.heartbeat.config.defer_times == 2
        (data_dir / "config.toml").write_text("[heartbeat]\ndefer_times = 5\n")
        ok = await client.request(ConfigReload(id=client.next_id()), ConfigReloadResult)
        assert ok.applied == ["heartbeat.defer_times"]
        assert ok.restart_required == []
        assert gw.hearth.heartbeat.config.defer_times == 5
        assert gw.hearth.heartbeat_runner.config.defer_times == 5


def test_plan_keeps_restart_settings_at_their_running_values(tmp_path: Path) -> None:
    running = load_settings(data_dir=tmp_path, port=0)
    (tmp_path / "config.toml").write_text(
        'host = "127.0.0.2"\n[database]\npool_size = 9\n[limits]\nmax_frame_bytes = 4096\n'
        "hello_timeout_s = 3\n[schedules]\nhistory_max = 7\n"
    )
    loaded = load_settings(data_dir=tmp_path, port=0)
    effective, outcome = plan_reload(running, loaded)
    assert outcome.applied == ["limits.hello_timeout_s", "schedules.history_max"]
    assert outcome.needs_restart == ["database.pool_size", "host", "limits.max_frame_bytes"]
    assert effective.host == "127.0.0.1"
    assert effective.database.pool_size == running.database.pool_size
    assert effective.limits.max_frame_bytes == running.limits.max_frame_bytes
    assert effective.limits.hello_timeout_s == 3
    assert effective.schedules.history_max == 7
    assert effective.port == 0  # the flag still wins over the file


def test_models_without_a_gateway_reads_the_file_and_says_so(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text('[models]\ndefault = "ollama:llama3.2"\n')
    result = run_cli(["models"], data_dir=data_dir, columns="200")
    assert result.returncode == 0, result.stderr
    assert "default model: ollama:llama3.2" in result.stdout
    assert f"no gateway is running: this is what {data_dir / 'config.toml'} says" in (
        " ".join(result.stderr.split())
    )
