"""The supervised loop: failures are survived and backed off, wake() cuts a sleep short."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hearth.supervised import SupervisedLoop


async def test_a_failing_body_is_retried_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    recovered = asyncio.Event()

    async def body() -> float | None:
        calls.append(len(calls))
        if len(calls) <= 3:
            raise RuntimeError(f"database away #{len(calls)}")
        recovered.set()
        return 60.0

    loop = SupervisedLoop("flaky", body, interval_s=0.001)
    with caplog.at_level(logging.INFO, logger="hearth.supervised"):
        loop.start()
        async with asyncio.timeout(10):
            await recovered.wait()
        await loop.stop()
    assert len(calls) == 4
    assert loop.failures == 0
    assert loop.last_ok is not None
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1  # the first failure of a streak only
    assert any("failed again (3 in a row)" in r.getMessage() for r in caplog.records)
    assert any("recovered after 3 failures" in r.getMessage() for r in caplog.records)
    assert not loop.running


async def test_backoff_grows_and_is_capped() -> None:
    async def body() -> float | None:
        raise OSError("no")

    loop = SupervisedLoop("down", body, interval_s=1.0, backoff_max_s=5.0)
    delays = [await loop.run_once() for _ in range(5)]
    assert delays == [2.0, 4.0, 5.0, 5.0, 5.0]
    assert loop.failures == 5
    assert loop.last_ok is None


async def test_the_body_chooses_its_next_delay_and_wake_cuts_it_short() -> None:
    runs = asyncio.Queue[int]()

    async def body() -> float | None:
        runs.put_nowait(1)
        return 3600.0  # would sleep an hour

    loop = SupervisedLoop("due", body, interval_s=1.0)
    loop.start()
    async with asyncio.timeout(10):
        await runs.get()
        loop.wake()
        await runs.get()  # ran again long before the hour
    await loop.stop()
    assert not loop.running


async def test_stop_cancels_a_running_body() -> None:
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def body() -> float | None:
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return None

    loop = SupervisedLoop("long", body, interval_s=1.0)
    loop.start()
    async with asyncio.timeout(10):
        await entered.wait()
        await loop.stop()
    assert cancelled.is_set()
