"""http.request reaches the public internet only, unless `[tools.http]` says otherwise.

Real HTTP servers on loopback play both the "internal service" an attacker wants to reach and
the "public site" (opened with an `allow` entry, or reached through a test resolver that
answers for made-up names). Each server records what reached it, so a refusal is checked by
its message and by the server having seen nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hearth.config import ConfigError, load_settings
from hearth.events import LocalEventBus
from hearth.netrules import NetPolicy, address_kind, parse_rule
from hearth.tools import ToolContext, ToolError, ToolRegistry, builtin_tools
from tests.conftest import NetworkGuard


@dataclass
class Recorder:
    """A tiny HTTP server: answers `body`, or redirects to `redirect_to` when it is set."""

    host: str
    body: str = "ok"
    redirect_to: Callable[[str], str] | None = None
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            if not line:
                return
            target = line.decode().split(" ")[1]
            headers: dict[str, str] = {}
            while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
                key, value = raw.decode().split(":", 1)
                headers[key.strip().lower()] = value.strip()
            self.seen.append((target, headers))
            if self.redirect_to is not None:
                head = f"HTTP/1.1 302 Found\r\nLocation: {self.redirect_to(target)}\r\n"
                writer.write((head + "Content-Length: 0\r\n\r\n").encode())
            else:
                data = self.body.encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n"
                writer.write((head + "Connection: close\r\n\r\n").encode() + data)
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def servers() -> AsyncIterator[Callable[..., Any]]:
    started: list[asyncio.Server] = []

    async def start(host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> Recorder:
        recorder = Recorder(host, **kwargs)
        server = await asyncio.start_server(recorder.handle, host, port)
        recorder.port = server.sockets[0].getsockname()[1]
        started.append(server)
        return recorder

    yield start
    for server in started:
        server.close()
        await server.wait_closed()


def registry(
    allow: list[str] | None = None, deny: list[str] | None = None, trust_env: bool = False
) -> ToolRegistry:
    policy = NetPolicy.parse(allow or [], deny or [])
    return ToolRegistry(builtin_tools(http_policy=policy, http_trust_env=trust_env))


@pytest.fixture
def ctx(tmp_path: Path) -> ToolContext:
    return ToolContext(workspace=tmp_path, bus=LocalEventBus(), source="test")


async def _get(tools: ToolRegistry, url: str, ctx: ToolContext) -> Any:
    return await tools.call("http.request", {"url": url, "timeout": 10}, ctx)


async def test_loopback_is_refused_by_default_with_a_readable_error(
    servers: Callable[..., Any], ctx: ToolContext
) -> None:
    internal = await servers()
    with pytest.raises(ToolError) as info:
        await _get(registry(), f"{internal.url}/admin", ctx)
    assert str(info.value) == (
        f"refused: 127.0.0.1 is a loopback address; "
        f'allow it with [tools.http] allow = ["127.0.0.1:{internal.port}"]'
    )
    assert internal.seen == []


async def test_odd_spellings_and_names_of_loopback_are_refused(
    servers: Callable[..., Any],
    ctx: ToolContext,
    network_guard: NetworkGuard,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The system resolver decodes these locally; no lookup leaves the machine.
    local_spellings = {"localhost", "0x7f000001", "2130706433", "127.1"}

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        assert host in local_spellings, host
        return network_guard._real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    internal = await servers()
    tools = registry()
    for host in ["localhost", "0x7f000001", "2130706433", "127.1", "[::ffff:127.0.0.1]"]:
        with pytest.raises(ToolError, match=r"^refused: .*127\.0\.0\.1.* is a loopback address"):
            await _get(tools, f"http://{host}:{internal.port}/", ctx)
    assert internal.seen == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
        ("http://[fd00:ec2::254]/", "a cloud metadata address"),
        ("http://10.1.2.3/", "a private address"),
        ("http://172.16.0.9/", "a private address"),
        ("http://192.168.1.1/", "a private address"),
        ("http://[fd12:3456::1]/", "a private (ULA) address"),
        ("http://169.254.1.1/", "a link-local address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://100.64.0.1/", "a CGNAT (shared) address"),
        ("http://224.0.0.1/", "a multicast address"),
        ("http://0.0.0.0:8420/", "an unspecified address"),
        ("http://[::]:8420/", "an unspecified address"),
        ("http://[::1]:8420/", "a loopback address"),
        ("http://[64:ff9b::7f00:1]/", "a loopback address"),
    ],
)
async def test_non_public_addresses_are_refused_before_any_connection(
    url: str, kind: str, ctx: ToolContext
) -> None:
    with pytest.raises(ToolError, match=f"^refused: .* is {re.escape(kind)}; allow it with"):
        await _get(registry(), url, ctx)


def test_public_addresses_are_not_classified() -> None:
    for text in ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "100.128.0.1"]:
        assert address_kind(ipaddress.ip_address(text)) is None, text


async def test_allow_opens_exact_host_port_and_networks_and_deny_wins(
    servers: Callable[..., Any], ctx: ToolContext
) -> None:
    service = await servers(body="home assistant")
    other = await servers(body="other")
    by_port = registry(allow=[f"127.0.0.1:{service.port}"])
    assert (await _get(by_port, service.url, ctx))["body"] == "home assistant"
    with pytest.raises(ToolError, match="is a loopback address"):
        await _get(by_port, other.url, ctx)
    by_network = registry(allow=["127.0.0.0/8"])
    assert (await _get(by_network, other.url, ctx))["body"] == "other"
    denied = registry(allow=["127.0.0.0/8"], deny=[f"127.0.0.1:{other.port}"])
    with pytest.raises(ToolError) as info:
        await _get(denied, other.url, ctx)
    assert str(info.value) == (
        f"refused: 127.0.0.1 is denied by [tools.http] deny entry '127.0.0.1:{other.port}'"
    )
    assert (await _get(denied, service.url, ctx))["body"] == "home assistant"
    assert len(other.seen) == 1


async def test_every_redirect_hop_is_checked(servers: Callable[..., Any], ctx: ToolContext) -> None:
    internal = await servers(body="secret")
    front = await servers(redirect_to=lambda _t: f"{internal.url}/secret")
    tools = registry(allow=[f"127.0.0.1:{front.port}"])
    with pytest.raises(ToolError, match=r"^refused: 127\.0\.0\.1 is a loopback address"):
        await _get(tools, front.url, ctx)
    assert len(front.seen) == 1
    assert internal.seen == []


async def test_redirects_are_capped_at_five(servers: Callable[..., Any], ctx: ToolContext) -> None:
    loop_server = await servers(redirect_to=lambda target: f"{target}x")
    tools = registry(allow=[f"127.0.0.1:{loop_server.port}"])
    with pytest.raises(ToolError, match="stopped after 5 redirects"):
        await _get(tools, f"{loop_server.url}/r", ctx)
    assert [t for t, _h in loop_server.seen] == [f"/r{'x' * n}" for n in range(6)]
    ends = await servers(body="done")
    loop_server.redirect_to = lambda target: ends.url if len(target) > 5 else f"{target}x"
    both = registry(allow=[f"127.0.0.1:{loop_server.port}", f"127.0.0.1:{ends.port}"])
    assert (await _get(both, f"{loop_server.url}/r", ctx))["body"] == "done"


async def test_the_connection_goes_to_the_checked_address_not_a_rebound_one(
    servers: Callable[..., Any],
    ctx: ToolContext,
    network_guard: NetworkGuard,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebinding resolver: every answer after the first one is 127.0.0.1."""
    trusted = await servers(host="127.0.0.2", body="allowed service")
    internal = await servers(host="127.0.0.1", port=trusted.port, body="secret")
    answers: dict[str, list[str]] = {"rebind.test": ["127.0.0.2"], "evil.test": ["127.0.0.1"]}

    def resolver(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        queue = answers[str(host)]
        address = queue.pop(0) if queue else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    tools = registry(allow=["127.0.0.2"])
    result = await _get(tools, f"http://rebind.test:{trusted.port}/", ctx)
    assert result["body"] == "allowed service"
    assert trusted.seen[0][1]["host"] == f"rebind.test:{trusted.port}"
    with pytest.raises(ToolError, match=r"^refused: evil\.test \(127\.0\.0\.1\) is a loopback"):
        await _get(tools, f"http://evil.test:{trusted.port}/", ctx)
    assert internal.seen == []


async def test_environment_proxies_are_ignored_unless_trusted(
    servers: Callable[..., Any], ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = await servers(body="via proxy")
    target = await servers(body="direct")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    allow = [f"127.0.0.1:{target.port}"]
    assert (await _get(registry(allow=allow), target.url, ctx))["body"] == "direct"
    assert proxy.seen == []
    trusting = registry(allow=allow, trust_env=True)
    assert (await _get(trusting, target.url, ctx))["body"] == "via proxy"
    assert len(proxy.seen) == 1
    # Through a proxy the target is still judged: loopback stays refused.
    with pytest.raises(ToolError, match="is a loopback address"):
        await _get(registry(trust_env=True), target.url, ctx)
    assert len(proxy.seen) == 1


def test_rules_parse_and_bad_entries_name_themselves(tmp_path: Path) -> None:
    assert parse_rule("127.0.0.1:8123").port == 8123
    assert parse_rule("[::1]:80").port == 80
    assert parse_rule("HomeAssistant.local.").host == "homeassistant.local"
    assert str(parse_rule("10.0.0.0/24").network) == "10.0.0.0/24"
    (tmp_path / "config.toml").write_text('[tools.http]\nallow = ["10.0.0.0/33"]\n')
    with pytest.raises(ConfigError, match=r"tools\.http\.allow.*'10\.0\.0\.0/33' is not a network"):
        load_settings(data_dir=tmp_path)
    (tmp_path / "config.toml").write_text('[tools.http]\ndeny = ["nas.local:http"]\n')
    with pytest.raises(ConfigError, match=r"tools\.http\.deny.*port must be a number"):
        load_settings(data_dir=tmp_path)
