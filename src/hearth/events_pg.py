"""An event bus that also carries events between gateway nodes sharing PostgreSQL.

Each node delivers its own events locally at once (same as `LocalEventBus`) and sends a copy
with `pg_notify`; every node LISTENs and delivers copies from *other* nodes to its local
subscribers. So a client connected to node B sees the status of an execution node A runs, and an
approval request raised on A reaches a phone connected to B.

NOTIFY payloads are limited to 8000 bytes: a larger event is shrunk by dropping optional bulky
fields (step outputs, tool arguments); if it is still too large it stays local and is logged.

Events are shared only while there is someone to share them with. Every node says `hello` on
the channel when its LISTEN connection opens and `here` every `peer_beat_s`, and answers a
`hello` at once; a node forwards events while it has heard another node within three beats, and
for three beats after its own (re)connection, before it can know who else is there. A gateway
alone on its database (the common PostgreSQL deployment) therefore sends no NOTIFY per event:
on a 1-in-flight workflow that was a fifth of each step's CPU and a second transaction per
step on the server. A node that joins is heard by the others within one round trip of its
`hello`, while it is still starting and before it accepts its first client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import make_url

try:
    import asyncpg
except ImportError:  # pragma: no cover - the postgres extra is not installed
    asyncpg = None

from hearth.events import DomainEvent, LocalEventBus, Subscription

log = logging.getLogger("hearth.events")

CHANNEL = "hearth_events"
MAX_PAYLOAD = 7900
#: Optional fields removed, in this order, until an event fits in one NOTIFY.
BULKY_KEYS = ("output", "args", "details", "stepResults", "checks")
#: Notifications are delivered in the order they are sent, within one statement too.
_NOTIFY_ALL = (
    "SELECT pg_notify($1, p) FROM unnest($2::text[]) WITH ORDINALITY AS u(p, n) ORDER BY n"
)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    return (
        make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def _strip(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_strip(v, key) for v in value]
    return value


def encode_for_notify(node_id: str, event: DomainEvent) -> str | None:
    """The NOTIFY payload for `event`, shrunk if needed; None when it cannot fit."""
    data = event.data
    for key in (None, *BULKY_KEYS):
        if key is not None:
            data = _strip(data, key)
        payload = json.dumps(
            {"node": node_id, "topic": event.topic, "data": data, "at": event.at.isoformat()},
            default=str,
            separators=(",", ":"),
        )
        if len(payload.encode()) <= MAX_PAYLOAD:
            return payload
    return None


def peer_payload(node_id: str, kind: str) -> str:
    """A presence message: `hello` when a node starts listening, `here` on every beat."""
    return json.dumps({"node": node_id, "peer": kind}, separators=(",", ":"))


class PostgresEventBus:
    def __init__(self, database_url: str, node_id: str, *, peer_beat_s: float = 2.0) -> None:
        if asyncpg is None:
            raise RuntimeError("PostgreSQL support needs: pip install 'hearthgate[postgres]'")
        self._dsn = asyncpg_dsn(database_url)
        self.node_id = node_id
        self._beat_s = peer_beat_s
        #: Other nodes by id: when each was last heard on the channel (monotonic).
        self._peers: dict[str, float] = {}
        #: Forward regardless of peers until then: just after a (re)connection.
        self._forward_until = 0.0
        #: How this node's own payloads begin (see `encode_for_notify`): they come back over
        #: LISTEN too, and are dropped without being parsed.
        self._own_prefix = json.dumps({"node": node_id}, separators=(",", ":"))[:-1] + ","
        self._local = LocalEventBus()
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
        self._listener: asyncpg.Connection | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        #: Times the LISTEN connection was re-established (`hearth_bus_reconnects_total`).
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        conn = self._listener
        return self._connected.is_set() and conn is not None and not conn.is_closed()

    async def start(self) -> None:
        await self._connect()
        self._tasks = [
            asyncio.create_task(self._sender(), name="pg-bus-sender"),
            asyncio.create_task(self._watchdog(), name="pg-bus-watchdog"),
            asyncio.create_task(self._beat(), name="pg-bus-beat"),
        ]

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        await conn.add_listener(CHANNEL, self._on_notify)
        self._listener = conn
        # Beats may have been missed while disconnected: share everything until they are
        # heard again, and ask the others to say they are there.
        self._forward_until = time.monotonic() + 3 * self._beat_s
        self._send_control("hello")
        self._connected.set()

    @property
    def peers(self) -> list[str]:
        """Other nodes heard on the channel within three beats."""
        cutoff = time.monotonic() - 3 * self._beat_s
        return sorted(node for node, seen in self._peers.items() if seen >= cutoff)

    def _forwarding(self) -> bool:
        now = time.monotonic()
        if now < self._forward_until:
            return True
        cutoff = now - 3 * self._beat_s
        return any(seen >= cutoff for seen in self._peers.values())

    def _send_control(self, kind: str) -> None:
        try:
            self._outbox.put_nowait(peer_payload(self.node_id, kind))
        except asyncio.QueueFull:
            log.warning("event outbox full; presence message %r not sent", kind)

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._beat_s)
            self._send_control("here")
            # Nodes gone for a while are forgotten (ids are new on every start).
            cutoff = time.monotonic() - 30 * self._beat_s
            for node in [n for n, seen in self._peers.items() if seen < cutoff]:
                del self._peers[node]

    async def _watchdog(self) -> None:
        """Reconnect the LISTEN connection when PostgreSQL drops it."""
        delay = 1.0
        while True:
            await asyncio.sleep(1.0)
            conn = self._listener
            if conn is not None and not conn.is_closed():
                delay = 1.0
                continue
            self._connected.clear()
            try:
                await self._connect()
                self.reconnects += 1
                log.info("event bus reconnected to PostgreSQL")
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("event bus cannot reach PostgreSQL (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _sender(self) -> None:
        """Forward queued events, all that are waiting in one statement (one round trip)."""
        while True:
            payloads = [await self._outbox.get()]
            while not self._outbox.empty():
                payloads.append(self._outbox.get_nowait())
            await self._connected.wait()
            conn = self._listener
            try:
                assert conn is not None
                await conn.execute(_NOTIFY_ALL, CHANNEL, payloads)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("could not forward %d events to other nodes: %s", len(payloads), exc)

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(self._own_prefix):
            return
        try:
            message = json.loads(payload)
            if message["node"] == self.node_id:
                return
            if "peer" in message:
                self._heard(str(message["node"]), message["peer"])
                return
            event = DomainEvent(
                message["topic"], message["data"], datetime.fromisoformat(message["at"])
            )
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed event from another node: %s", exc)
            return
        self._local.publish(event)

    def _heard(self, node: str, kind: object) -> None:
        new = node not in self._peers
        self._peers[node] = time.monotonic()
        if new:
            log.info("event bus: node %s is on the channel; sharing events with it", node)
        if kind == "hello":
            self._send_control("here")  # so the new node knows at once that we are here

    def publish(self, event: DomainEvent) -> None:
        self._local.publish(event)
        if not self._forwarding():
            return
        payload = encode_for_notify(self.node_id, event)
        if payload is None:
            log.warning("event %s is too large to share with other nodes", event.topic)
            return
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            log.warning("event outbox full; %s not shared with other nodes", event.topic)

    def subscribe(
        self,
        *prefixes: str,
        maxsize: int = 1000,
        accept: Callable[[DomainEvent], bool] | None = None,
    ) -> Subscription:
        return self._local.subscribe(*prefixes, maxsize=maxsize, accept=accept)

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._local.close()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
