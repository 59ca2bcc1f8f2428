"""Whether a tool call runs on its own, waits for a person, or is never offered.

One decision for every caller that asks a person (chat) or cannot ask anyone (the heartbeat):
`[tools] policy` maps tool names or glob patterns (`"ha.*"`) to `auto`, `ask` or `deny`. The
exact name wins over a pattern, and a longer pattern over a shorter one, so
`{"ha.*" = "ask", "ha.lights_status" = "auto"}` reads as one would expect. Without an entry,
read-only tools run and others ask; tools that are always gated (`shell.run`) ask whatever
the entry says, unless it says `deny`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from fnmatch import fnmatchcase
from typing import Literal

from hearth.tools.base import Tool

Decision = Literal["auto", "ask", "deny"]
_GLOB = frozenset("*?[")


def configured(policy: Mapping[str, str], name: str) -> str | None:
    """The entry that applies to `name`: its own, else the longest matching pattern."""
    exact = policy.get(name)
    if exact is not None:
        return exact
    best: tuple[int, str] | None = None
    for pattern, value in policy.items():
        matches = _GLOB.intersection(pattern) and fnmatchcase(name, pattern)
        if matches and (best is None or len(pattern) > best[0]):
            best = (len(pattern), value)
    return best[1] if best is not None else None


def decide(tool: Tool, policy: Mapping[str, str], approved: Collection[str] = ()) -> Decision:
    """`approved`: tools a person allowed for the whole session ("always")."""
    entry = configured(policy, tool.name)
    if entry == "deny":
        return "deny"
    if tool.always_gated:
        return "ask"
    if tool.name in approved:
        return "auto"
    if entry == "auto":
        return "auto"
    if entry == "ask":
        return "ask"
    return "auto" if tool.read_only else "ask"
