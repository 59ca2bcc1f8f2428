"""The gateway as a person runs it: a real `hearth serve` process and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hearth.client import GatewayClient, GatewayError
from hearth.protocol import Ping, Pong
from tests.support.gateway import start_gateway_process


def hearth_cli(
    *args: str, data_dir: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    if data_dir is not None:
        env["HEARTH_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "hearth", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    text = " ".join(result.stderr.split())
    for fragment in fragments:
        assert fragment in text, result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_stop_exits_zero_and_removes_runtime_json(data_dir: Path, sig: int) -> None:
    gw = start_gateway_process(data_dir)
    runtime = gw.runtime()
    assert runtime["pid"] == gw.process.pid
    assert set(runtime) == {"pid", "host", "port", "url", "startedAt"}
    token_path = data_dir / "gateway.token"
    assert token_path.stat().st_mode & 0o777 == 0o600
    assert len(gw.token) >= 40
    assert gw.stop(sig) == 0, gw.log()
    assert not gw.runtime_path.exists()


def test_status_and_healthz_against_running_process(data_dir: Path) -> None:
    gw = start_gateway_process(data_dir)
    try:
        health = httpx.get(gw.url + "/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json() == {"status": "ok"}
        result = hearth_cli("status", data_dir=data_dir)
        assert result.returncode == 0, result.stderr
        assert "running" in result.stdout
        assert "sqlite" in result.stdout
        as_json = hearth_cli("status", "--json", data_dir=data_dir)
        assert json.loads(as_json.stdout)["type"] == "gateway.status.result"
        schema_http = httpx.get(gw.url + "/protocol.schema.json", timeout=10).json()
        schema_cli = json.loads(hearth_cli("protocol", "schema").stdout)
        assert schema_http == schema_cli
        assert schema_cli["protocol"] == 1
        assert {"client", "server"} <= set(schema_cli)
    finally:
        assert gw.stop() == 0


def test_status_when_gateway_not_running(data_dir: Path) -> None:
    result = hearth_cli("status", data_dir=data_dir)
    assert_one_line_error(result, "not running", "hearth serve")


def test_status_with_stale_runtime_file(data_dir: Path) -> None:
    gw = start_gateway_process(data_dir)
    gw.kill()  # SIGKILL leaves runtime.json behind
    assert gw.runtime_path.exists()
    result = hearth_cli("status", data_dir=data_dir)
    assert_one_line_error(result, "not running", "hearth serve")


def test_port_in_use_names_the_port(data_dir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = hearth_cli("serve", "--port", str(port), data_dir=data_dir)
    assert_one_line_error(result, f"port {port}", "already in use")


def test_non_loopback_host_needs_allow_remote(data_dir: Path) -> None:
    result = hearth_cli("serve", "--host", "0.0.0.0", "--port", "0", data_dir=data_dir)
    assert_one_line_error(result, "refusing to listen on 0.0.0.0", "--allow-remote")
    assert result.returncode == 2


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        ("prot = 8420\n", ["prot", "unknown setting", "config.toml"]),
        ('allow_remote = "perhaps"\n', ["allow_remote", "boolean", "config.toml"]),
        ("[limits]\nhello_timeout_s = -1\n", ["limits.hello_timeout_s", "greater than 0"]),
        ("[database]\nsqlite_synchronous = 'SOMETIMES'\n", ["database.sqlite_synchronous"]),
        ("port = [\n", ["invalid TOML", "config.toml"]),
    ],
)
def test_bad_config_file_stops_start_up_with_one_line(
    data_dir: Path, config: str, fragments: list[str]
) -> None:
    (data_dir / "config.toml").write_text(config)
    result = hearth_cli("serve", "--port", "0", data_dir=data_dir)
    assert_one_line_error(result, *fragments)
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_environment_value_names_the_variable(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(HEARTH_DATA_DIR=str(data_dir), HEARTH_PORT="many")
    result = subprocess.run(
        [sys.executable, "-m", "hearth", "serve"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert_one_line_error(result, "port", "HEARTH_PORT")


def test_flag_beats_environment_beats_file(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text('log_format = "json"\nhost = "127.0.0.2"\n')
    gw = start_gateway_process(data_dir, "--host", "127.0.0.1", env={"HEARTH_LOG_FORMAT": "text"})
    try:
        assert gw.runtime()["host"] == "127.0.0.1"
        first = gw.log().splitlines()[-1]
        assert not first.startswith("{")  # text, from the environment, not json from the file
    finally:
        gw.stop()


def test_token_show_and_rotate(data_dir: Path) -> None:
    missing = hearth_cli("token", "show", data_dir=data_dir)
    assert_one_line_error(missing, "no token", "hearth serve")
    rotated = hearth_cli("token", "rotate", data_dir=data_dir)
    assert rotated.returncode == 0
    shown = hearth_cli("token", "show", data_dir=data_dir)
    assert shown.stdout.strip() == (data_dir / "gateway.token").read_text().strip()
    assert (data_dir / "gateway.token").stat().st_mode & 0o777 == 0o600


def test_db_upgrade_creates_schema(data_dir: Path) -> None:
    result = hearth_cli("db", "upgrade", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "revision" in result.stdout
    assert (data_dir / "hearth.db").exists()


def test_unsupported_database_url_is_refused(data_dir: Path) -> None:
    result = hearth_cli("serve", "--port", "0", "--database-url", "mysql://x/y", data_dir=data_dir)
    assert_one_line_error(result, "unsupported database")


def test_help_lists_every_command() -> None:
    result = hearth_cli("--help")
    for command in ("serve", "status", "protocol", "db", "token"):
        assert command in result.stdout
    assert hearth_cli("token", "--help").returncode == 0


def test_json_logs_carry_connection_id_and_never_the_token(data_dir: Path) -> None:
    gw = start_gateway_process(data_dir, "--log-format", "json")
    try:

        async def talk() -> None:
            async with GatewayClient(gw.url, gw.token) as client:
                await client.request(Ping(id="p"), Pong)
            bad = GatewayClient(gw.url, gw.token + "x")
            with pytest.raises(GatewayError):
                await bad.connect()

        asyncio.run(talk())
    finally:
        gw.stop()
    lines = [line for line in gw.log().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert records, gw.log()
    authed = [r for r in records if "authenticated" in r["message"]]
    assert authed
    assert authed[0]["connectionId"].startswith("c-")
    assert gw.token not in gw.log()


def test_python_dash_m_matches_console_script() -> None:
    result = hearth_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("hearth ")
