"""Time-ordered ids: valid UUIDs (version 7) that sort by creation time."""

from __future__ import annotations

import time
import uuid

from hearth.ids import time_ordered_id


def test_ids_are_version_7_uuids_that_sort_by_time() -> None:
    first = time_ordered_id()
    time.sleep(0.002)
    later = [time_ordered_id() for _ in range(100)]
    parsed = uuid.UUID(first)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert str(parsed) == first
    assert all(first < other for other in later)
    assert len(set(later)) == 100
    millis = int(first.replace("-", "")[:12], 16)
    assert abs(millis - time.time_ns() // 1_000_000) < 60_000
