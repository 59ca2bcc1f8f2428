"""The gateway hands freed memory back once after a busy spell, never while it is busy."""

from __future__ import annotations

import asyncio
import ctypes
import sys
import time

import pytest

from hearth.malloc import IdleTrim
from tests.support.gateway import RunningGateway


def _spells(shares: list[float]) -> list[bool]:
    """`due()` once a second while the process uses `shares` of a core, one per second."""
    clock = [0.0]
    cpu = [0.0]
    idle = IdleTrim(cpu=lambda: cpu[0], clock=lambda: clock[0])
    answers = [idle.due()]  # the first call only takes its bearings
    for share in shares:
        clock[0] += 1.0
        cpu[0] += share
        answers.append(idle.due())
    return answers[1:]


def test_trims_once_when_a_busy_spell_goes_quiet() -> None:
    assert _spells([0.9, 0.8, 0.5, 0.01, 0.0, 0.0]) == [False, False, False, True, False, False]


def test_never_while_busy_and_not_when_it_never_was() -> None:
    assert not any(_spells([0.9] * 10))
    assert not any(_spells([0.01] * 10))
    # In between (a light trickle of work) neither counts as busy nor as quiet.
    assert _spells([0.9, 0.1, 0.1, 0.0, 0.9, 0.0]) == [False, False, False, True, False, True]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
async def test_a_trim_runs_and_counts() -> None:
    try:
        ctypes.CDLL(None).malloc_trim  # noqa: B018 - is this glibc?
    except AttributeError:
        pytest.skip("not glibc")
    clock = [0.0]
    cpu = [0.0]
    idle = IdleTrim(cpu=lambda: cpu[0], clock=lambda: clock[0])
    assert idle.available
    await idle.step()
    clock[0], cpu[0] = 1.0, 0.9
    await idle.step()
    clock[0] = 2.0
    assert await idle.step() == 1.0
    assert idle.trims == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
async def test_a_running_gateway_trims_after_a_busy_spell(sqlite_gateway: RunningGateway) -> None:
    """Wired in: the gateway checks every second, and trims once its process goes quiet."""
    idle = sqlite_gateway.hearth.idle_trim
    if not idle.available:
        pytest.skip("not glibc")
    before = idle.trims

    def burn(seconds: float) -> None:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass

    await asyncio.to_thread(burn, 2.5)  # over `busy` of a core for two checks at least
    async with asyncio.timeout(30):
        while idle.trims == before:
            await asyncio.sleep(0.2)
    assert idle.trims == before + 1  # once per quiet spell, not every second after it
    await asyncio.sleep(2.5)
    assert idle.trims == before + 1
