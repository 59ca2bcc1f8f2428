"""What `/readyz` checks: can this node do its job right now, not merely is it alive.

A load balancer or supervisor sends traffic (or restarts the process) on this answer, so each
check is about a part that silently stops working: the database (reachable and at the code's
migration), the two loops that move durable state forward (the scheduler and the workflow
engine's recovery pass: each must have completed a pass recently), and on PostgreSQL the
LISTEN connection that carries events between nodes. The body names what failed and nothing
secret (no URLs, no tokens).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hearth.gateway.state import GatewayState
from hearth.store.migrate import current_revision, head_revision

#: A loop counts as stalled after this many of its intervals without a completed pass…
STALE_INTERVALS = 3
#: …plus this much slack (a pass itself takes time on a busy machine).
STALE_SLACK_S = 1.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    checks: dict[str, str]


def loop_check(last_pass: float | None, started: float, interval_s: float, now: float) -> str:
    """ "ok", or why the loop counts as stalled (both measured on the monotonic clock)."""
    limit = STALE_INTERVALS * interval_s + STALE_SLACK_S
    since = now - (last_pass if last_pass is not None else started)
    if since <= limit:
        return "ok"
    if last_pass is None:
        return (
            f"no pass completed in the {since:.0f} s since start (expected every {interval_s:g} s)"
        )
    return f"last pass {since:.0f} s ago (expected every {interval_s:g} s)"


async def readiness(state: GatewayState) -> Readiness:
    checks: dict[str, str] = {}
    if await state.db.ping():
        checks["database"] = "ok"
        try:
            revision = await current_revision(state.db.engine)
        except Exception as exc:  # the probe must answer even when the schema is broken
            checks["migrations"] = f"cannot read the migration revision ({type(exc).__name__})"
        else:
            head = head_revision()
            checks["migrations"] = (
                "ok" if revision == head else f"database at {revision}, code expects {head}"
            )
    else:
        checks["database"] = "does not answer"
    now = time.monotonic()
    settings = state.settings
    checks["scheduler"] = loop_check(
        state.scheduler.last_pass, state.started_monotonic, settings.schedules.max_sleep_s, now
    )
    checks["workflowRecovery"] = loop_check(
        state.workflows.last_recovery,
        state.started_monotonic,
        settings.workflows.recovery_interval_s,
        now,
    )
    if state.db.backend == "postgresql":
        checks["eventBus"] = "ok" if state.bus.connected else "not connected to PostgreSQL"
    return Readiness(all(v == "ok" for v in checks.values()), checks)
