"""`step_starts` rows (the journal of tool steps begun) do not outlive their execution."""

from __future__ import annotations

import sqlalchemy as sa

from hearth.store.tables import step_starts
from tests.support.gateway import RunningGateway
from tests.support.workflows import TERMINAL, reload, trigger, wait_status, write_workflow

TOOL_STEPS = """
    name: Two tool steps
    steps:
      - id: one
        action: tool
        tool: file.write
        args: {path: one.txt, content: "1"}
      - id: two
        action: tool
        tool: file.read
        args: {path: one.txt}
"""


async def starts_of(gw: RunningGateway, execution_id: str) -> int:
    async with gw.hearth.db.connect() as conn:
        found = await conn.execute(
            sa.select(sa.func.count()).where(step_starts.c.execution_id == execution_id)
        )
        return int(found.scalar_one())


async def test_the_recovery_pass_prunes_the_starts_of_finished_executions(
    gateway: RunningGateway,
) -> None:
    write_workflow(gateway.data_dir, "tools", TOOL_STEPS)
    client = await gateway.client()
    await reload(client)
    execution_id = await trigger(client, "tools")
    done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "completed"
    await gateway.hearth.workflows.executions.settle()
    assert await starts_of(gateway, execution_id) == 2  # journalled while it ran
    await gateway.hearth.workflows.recovery.recover_once()
    assert await starts_of(gateway, execution_id) == 0
