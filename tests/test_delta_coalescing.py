"""Chat delta coalescing: the first delta at once, later ones within one window, never longer.

`_Deltas` is the coalescer between the model stream and the bus. These tests drive it the way
the model loop does, including the case that made deltas wait 100+ ms: the loop parses a large
buffered chunk of the stream without yielding, so the window's timer cannot fire.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hearth.chat.service import _Deltas

WINDOW_S = 0.2  # long enough that a preempted test process cannot overrun it


class Published:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def __call__(self, topic: str, data: dict[str, Any]) -> None:
        assert topic == "chat.stream.delta"
        assert data["requestId"] == "r1"
        self.texts.append(data["delta"])


async def test_first_delta_goes_out_at_once_and_the_rest_are_merged() -> None:
    published = Published()
    deltas = _Deltas(published, "r1", WINDOW_S)
    deltas.add("Hel")
    assert published.texts == ["Hel"]
    deltas.add("lo")
    deltas.add(" you")
    assert published.texts == ["Hel"]  # inside the window: buffered
    await asyncio.sleep(WINDOW_S * 4)  # the loop turns: the window's timer publishes
    assert published.texts == ["Hel", "lo you"]
    deltas.flush()
    assert published.texts == ["Hel", "lo you"]


async def test_a_busy_loop_cannot_hold_deltas_past_the_window() -> None:
    published = Published()
    deltas = _Deltas(published, "r1", WINDOW_S)
    deltas.add("a")
    deltas.add("b")  # buffered, its timer is set
    # The model loop keeps parsing without yielding, past the end of the window: the timer
    # cannot run, so the next delta must publish what waits (and itself).
    time.sleep(WINDOW_S * 2)
    deltas.add("c")
    assert published.texts == ["a", "bc"]
    deltas.add("d")
    assert published.texts == ["a", "bc"]
    deltas.flush()
    assert published.texts == ["a", "bc", "d"]
