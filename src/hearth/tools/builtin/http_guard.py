"""The connection layer of `http.request`: resolve once, check, connect to what was checked.

Checking a URL's host and then letting the HTTP library resolve it again leaves a gap a
rebinding DNS server walks through (public address for the check, 127.0.0.1 for the connect).
So the check lives in the network backend itself: every TCP connection httpx opens, for the
first request and for every redirect hop, resolves the name here, judges each address with the
`NetPolicy`, and connects to the address that passed. TLS still uses the URL's host name for
SNI and certificate checks, and the `Host` header is untouched, because httpcore takes both
from the request, not from the address we connect to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing

import httpcore
import httpx

from hearth.netrules import IPAddress, NetPolicy
from hearth.tools.base import ToolError


class AddressRefusedError(ToolError):
    """The policy refused an address; the message says which, why, and how to allow it."""


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself), in resolver order.

    The system resolver also decodes the odd spellings (`0x7f000001`, `2130706433`, `127.1`),
    so those are judged by the address they really mean.
    """
    try:
        return [ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))]
    except ValueError:
        pass  # a name (or an odd spelling of an address): ask the resolver
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc.strerror or exc}") from None
    seen: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in seen:
            seen.append(address)
    return seen


async def checked_addresses(policy: NetPolicy, host: str, port: int) -> list[IPAddress]:
    """The addresses of `host` the policy lets us reach; AddressRefusedError when none."""
    addresses = await resolve(host, port)
    allowed = [a for a in addresses if policy.refusal(host, a, port) is None]
    if not allowed:
        reason = policy.refusal(host, addresses[0], port) if addresses else None
        raise AddressRefusedError(reason or f"refused: {host} resolves to no address")
    return allowed


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """An httpcore backend that only ever connects to addresses the policy allowed."""

    def __init__(self, policy: NetPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last: Exception | None = None
        for address in await checked_addresses(self._policy, host, port):
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefusedError("refused: http.request does not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (pooling, HTTP/1.1, TLS) over the `GuardedBackend`.

    httpx takes no backend argument, so the pool is built here with the same SSL context
    httpx would use; `trust_env=False` so no proxy can take over the connection.
    """

    def __init__(self, policy: NetPolicy) -> None:
        super().__init__(trust_env=False)
        ssl_context = httpx.create_ssl_context(trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=GuardedBackend(policy)
        )
