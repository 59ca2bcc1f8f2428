"""Token checks and the per-address limiter for failed handshakes."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections import deque
from pathlib import Path

from hearth.datadir import read_token


class TokenStore:
    """The current gateway token, re-read when `hearth token rotate` replaces the file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._token = read_token(path)
        self._mtime = self._stat()

    def _stat(self) -> float:
        try:
            return self._path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def current(self) -> str:
        mtime = self._stat()
        if mtime != self._mtime:
            self._token = read_token(self._path)
            self._mtime = mtime
        return self._token

    def matches(self, candidate: str) -> bool:
        """Constant-time comparison, so timing never reveals how much of a guess was right."""
        return hmac.compare_digest(candidate.encode(), self.current().encode())


LOOPBACK_BUCKET = "loopback"


def bucket_of(address: str) -> str:
    """Failures are counted per address, except that all of loopback is one bucket.

    127.0.0.2 … 127.255.255.254 all reach the gateway, so counting them apart would let a
    local process (or a DNS-rebound page) rotate addresses to dodge the limit.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return LOOPBACK_BUCKET if ip.is_loopback else str(ip)


class FailureLimiter:
    """After `limit` failures from one bucket within `window_s`, block it for `block_s`.

    A block only ever refuses failed hellos: a connection presenting the right token is let
    in regardless (the handshake checks the token first), so bad hellos cost whoever sends
    them and never lock the owner out of their own gateway.
    """

    def __init__(self, limit: int, window_s: float = 60.0, block_s: float = 300.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self.block_s = block_s
        self._failures: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}

    def retry_after(self, address: str, now: float | None = None) -> float:
        """Seconds until `address` may try again; 0 when it is not blocked."""
        now = time.monotonic() if now is None else now
        address = bucket_of(address)
        until = self._blocked_until.get(address)
        if until is None:
            return 0.0
        if now >= until:
            del self._blocked_until[address]
            return 0.0
        return until - now

    def record_failure(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        address = bucket_of(address)
        times = self._failures.setdefault(address, deque())
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) >= self.limit:
            self._blocked_until[address] = now + self.block_s
            times.clear()
        self._prune(now)

    def _prune(self, now: float) -> None:
        """Keep memory bounded when many addresses fail once and never return."""
        if len(self._failures) > 10_000:
            for addr in [a for a, t in self._failures.items() if not t or t[-1] <= now - 60]:
                del self._failures[addr]
