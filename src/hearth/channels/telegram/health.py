"""How the poller is doing, for logs, `hearth status` and `gateway.status`.

A problem (409 Conflict: another process polls the same bot; a stall: no successful getUpdates
for `stall_after_s`; any other error) is logged once when it starts and once when it ends, not
on every retry, and stays visible in the status until a getUpdates succeeds again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

log = logging.getLogger("hearth.channels.telegram")

#: Problems in the order the status shows them (the first present one is the state).
PROBLEMS = ("conflict", "stalled", "error")


@dataclass
class PollHealth:
    stall_after_s: float
    polling: bool = False
    started: float = field(default_factory=time.monotonic)
    last_ok: float | None = None
    last_ok_at: datetime | None = None
    problems: dict[str, str] = field(default_factory=dict)
    bot_username: str | None = None

    @property
    def state(self) -> str:
        for kind in PROBLEMS:
            if kind in self.problems:
                return kind
        if not self.polling:
            return "standby"
        return "ok" if self.last_ok is not None else "starting"

    @property
    def problem(self) -> str | None:
        for kind in PROBLEMS:
            if kind in self.problems:
                return self.problems[kind]
        return None

    def ok(self) -> None:
        if self.problems:
            log.info("Telegram polling works again (was: %s)", "; ".join(self.problems.values()))
            self.problems.clear()
        self.last_ok = time.monotonic()
        self.last_ok_at = datetime.now(UTC)

    def fail(self, kind: str, detail: str) -> None:
        if kind not in self.problems:
            log.warning("Telegram polling: %s (retrying with backoff)", detail)
        self.problems[kind] = detail

    def check_stall(self) -> None:
        if not self.polling:
            return
        since = self.last_ok if self.last_ok is not None else self.started
        quiet = time.monotonic() - since
        if quiet >= self.stall_after_s:
            self.fail(
                "stalled",
                f"stalled: no successful getUpdates for {quiet:.0f} s "
                f"(threshold {self.stall_after_s:g} s)",
            )
