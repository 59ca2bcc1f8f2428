"""What a connection remembers about its own requests is forgotten when they are over.

A connection that triggers executions for months (a dashboard, a bridge) must not keep every
execution id it ever started; it still gets every event of an execution until the last one.
"""

from __future__ import annotations

from hearth.gateway.fanout import outgoing
from hearth.gateway.subscriptions import MAX_OWNED, EventInterest
from hearth.protocol.messages.workflows import WorkflowStatus


def status(execution_id: str, value: str) -> WorkflowStatus:
    return WorkflowStatus(execution_id=execution_id, workflow_id="w", status=value)  # type: ignore[arg-type]


def test_an_execution_is_owned_until_its_last_status_is_delivered() -> None:
    interest = EventInterest("conn-1")
    interest.own("exec-1", "exec-2")
    for value in ("running", "paused", "running"):
        event = outgoing(status("exec-1", value), origin=None)
        assert interest.wants(event)
        interest.delivered(event)
        assert interest.owns("exec-1")
    done = outgoing(status("exec-1", "completed"), origin=None)
    assert interest.wants(done)
    interest.delivered(done)
    assert not interest.owns("exec-1")
    assert interest.owns("exec-2")  # another execution is untouched
    assert not interest.wants(outgoing(status("exec-1", "running"), origin=None))


def test_failed_and_cancelled_end_it_too_and_the_memory_stays_bounded() -> None:
    interest = EventInterest("conn-1")
    for n, value in enumerate(("failed", "cancelled")):
        interest.own(f"exec-{n}")
        interest.delivered(outgoing(status(f"exec-{n}", value), origin=None))
        assert not interest.owns(f"exec-{n}")
    for n in range(MAX_OWNED + 10):
        interest.own(f"never-finished-{n}")
    assert not interest.owns("never-finished-0")  # the oldest are forgotten first
    assert interest.owns(f"never-finished-{MAX_OWNED + 9}")
