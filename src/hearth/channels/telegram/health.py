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
    poll_timeout_s: float = 0.0
    polling: bool = False
    #: When the getUpdates now in flight was sent (None between calls).
    in_flight_since: float | None = None
    #: When this node first asked for updates since it became the poller.
    first_attempt: float | None = None
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

    def sending(self) -> None:
        self.in_flight_since = time.monotonic()
        if self.first_attempt is None:
            self.first_attempt = self.in_flight_since

    def became_poller(self) -> None:
        self.polling = True
        self.first_attempt = None
        self.last_ok = None

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
        """A stall: no success for `stall_after_s`, unless a long poll is still within its
        own timeout (a quiet bot legitimately waits that long for an answer)."""
        if not self.polling:
            return
        now = time.monotonic()
        since = self.last_ok if self.last_ok is not None else self.first_attempt
        if since is None:
            return
        quiet = now - since
        if self.in_flight_since is not None:
            allowance = self.poll_timeout_s + min(5.0, self.stall_after_s)
            if now - self.in_flight_since < allowance:
                return
        if quiet >= self.stall_after_s:
            self.fail(
                "stalled",
                f"stalled: no successful getUpdates for {quiet:.0f} s "
                f"(threshold {self.stall_after_s:g} s)",
            )
