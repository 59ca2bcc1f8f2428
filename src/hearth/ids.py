"""Row ids for tables that grow fast (executions, schedule runs).

They are UUIDs in the version 7 layout: Unix milliseconds first, then 74 random bits. A
thousand rows a second with random (version 4) ids land all over their primary-key and
foreign-key indexes, so every commit dirties a page per row, and the commit grows with the
table. Ids that grow with time land at the end of the index instead, on SQLite and PostgreSQL
alike, while staying unguessable and globally unique like any UUID.
"""

from __future__ import annotations

import os
import time


def time_ordered_id() -> str:
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
