"""Notifications are stored, listed and bounded; the live event carries the stored id.

The repository tests run on both backends against real databases. The gateway tests run a
workflow with a `notify` step on a real gateway and read the notification back over the
protocol, also after the gateway was SIGKILLed and started again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.notifications import (
    Notification,
    NotificationList,
    NotificationListResult,
)
from hearth.store import Database
from hearth.store.notifications import NotificationRepository
from tests.support.gateway import RunningGateway, start_gateway_process
from tests.support.wire import RawPeer
from tests.support.workflows import reload, trigger, wait_status, write_workflow

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

DIGEST = """
    name: Digest
    inputs:
      text: {type: string, default: "3 items need you"}
    steps:
      - id: collect
        action: noop
      - id: tell
        action: tool
        tool: notify
        args: {message: "{{ input.text }}", level: warning}
"""


async def _repo(url: str, **kwargs: object) -> tuple[Database, NotificationRepository]:
    db = Database.from_url(url)
    await db.upgrade()
    return db, NotificationRepository(db, **kwargs)  # type: ignore[arg-type]


async def test_stored_newest_first_with_filters(database_url: str) -> None:
    db, repo = await _repo(database_url)
    try:
        ids = []
        for n in range(5):
            new_id, new = await repo.add(
                message=f"note {n}",
                level="info" if n % 2 else "error",
                created_at=T0 + timedelta(minutes=n),
                source="workflow:digest",
                execution_id="exec-a" if n < 3 else "exec-b",
                step_id="tell",
            )
            assert new
            ids.append(new_id)
        assert ids == sorted(ids)

        everything = await repo.recent()
        assert [r.message for r in everything] == [f"note {n}" for n in (4, 3, 2, 1, 0)]
        assert everything[0].created_at == T0 + timedelta(minutes=4)
        assert (everything[4].level, everything[4].execution_id) == ("error", "exec-a")
        assert [r.message for r in await repo.recent(limit=2)] == ["note 4", "note 3"]
        since = await repo.recent(since=T0 + timedelta(minutes=3))
        assert [r.message for r in since] == ["note 4", "note 3"]
        only_a = await repo.recent(execution_id="exec-a")
        assert [r.message for r in only_a] == ["note 2", "note 1", "note 0"]
    finally:
        await db.dispose()


async def test_the_same_step_run_is_stored_once(database_url: str) -> None:
    db, repo = await _repo(database_url)
    try:
        first = await repo.add(message="hi", level="info", created_at=T0, dedupe_key="e:2")
        again = await repo.add(message="hi", level="info", created_at=T0, dedupe_key="e:2")
        other = await repo.add(message="hi", level="info", created_at=T0, dedupe_key="e:3")
        assert (first[1], again[1], other[1]) == (True, False, True)
        assert again[0] == first[0] != other[0]
        assert len(await repo.recent()) == 2
    finally:
        await db.dispose()


async def test_retention_by_count_and_age(database_url: str) -> None:
    db, repo = await _repo(database_url, keep=timedelta(days=30), keep_max=3)
    try:
        for n in range(5):
            await repo.add(message=f"n{n}", level="info", created_at=T0 + timedelta(hours=n))
        assert [r.message for r in await repo.recent()] == ["n4", "n3", "n2"]

        # A month later, the next insert drops everything older than 30 days.
        await repo.add(message="later", level="info", created_at=T0 + timedelta(days=31))
        assert [r.message for r in await repo.recent()] == ["later"]
    finally:
        await db.dispose()


async def test_notify_step_is_stored_and_its_event_carries_the_id(
    gateway: RunningGateway,
) -> None:
    write_workflow(gateway.data_dir, "digest", DIGEST)
    watcher = await gateway.client()
    await reload(watcher)
    execution_id = await trigger(watcher, "digest")
    event = await watcher.next_event("notification")
    assert isinstance(event, Notification)
    assert (event.message, event.level, event.source) == (
        "3 items need you",
        "warning",
        "workflow:digest",
    )
    assert (event.execution_id, event.step_id) == (execution_id, "tell")
    assert event.notification_id is not None
    await wait_status(watcher, execution_id, {"completed"})

    # Nobody was connected for the second run: it is stored all the same.
    await watcher.close()
    gateway.clients.remove(watcher)
    quiet_client = await gateway.client()
    quiet = await trigger(quiet_client, "digest", {"text": "nobody was watching"})
    await wait_status(quiet_client, quiet, {"completed"})

    reader = await gateway.client()
    listing = await reader.request(NotificationList(id=reader.next_id()), NotificationListResult)
    assert [(n.message, n.execution_id) for n in listing.notifications] == [
        ("nobody was watching", quiet),
        ("3 items need you", execution_id),
    ]
    assert listing.notifications[1].notification_id == event.notification_id
    assert listing.notifications[1].timestamp == event.timestamp

    one = await reader.request(
        NotificationList(id=reader.next_id(), execution_id=execution_id, limit=5),
        NotificationListResult,
    )
    assert [n.notification_id for n in one.notifications] == [event.notification_id]
    later = await reader.request(
        NotificationList(id=reader.next_id(), since=datetime.now(UTC) + timedelta(hours=1)),
        NotificationListResult,
    )
    assert later.notifications == []


async def test_bad_list_requests_are_refused(sqlite_gateway: RunningGateway) -> None:
    peer = await RawPeer.open(sqlite_gateway.ws_url)
    try:
        await peer.hello(sqlite_gateway.token)
        too_many = await peer.request({"type": "notification.list", "id": "n1", "limit": 5000})
        not_a_time = await peer.request(
            {"type": "notification.list", "id": "n2", "since": "yesterday"}
        )
    finally:
        await peer.ws.close()
    assert (too_many["code"], too_many["id"]) == ("INVALID_MESSAGE", "n1")
    assert too_many["details"]["errors"][0]["path"] == "limit"
    assert (not_a_time["code"], not_a_time["id"]) == ("INVALID_MESSAGE", "n2")
    assert not_a_time["details"]["errors"][0]["path"] == "since"


@pytest.mark.slow
async def test_notifications_survive_a_killed_gateway(data_dir: Path) -> None:
    write_workflow(data_dir, "digest", DIGEST)
    first = start_gateway_process(data_dir)
    try:
        client = GatewayClient(first.url, first.token)
        await client.connect()
        execution_id = await trigger(client, "digest")
        await wait_status(client, execution_id, {"completed"})
        await client.close()
    finally:
        first.kill()

    second = start_gateway_process(data_dir)
    try:
        client = GatewayClient(second.url, second.token)
        await client.connect()
        listing = await client.request(
            NotificationList(id=client.next_id()), NotificationListResult
        )
        await client.close()
    finally:
        assert second.stop() == 0, second.log()
    assert [(n.message, n.execution_id, n.step_id) for n in listing.notifications] == [
        ("3 items need you", execution_id, "tell")
    ]
