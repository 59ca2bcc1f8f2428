"""Templates inside a running gateway: what a step receives is what the file says."""

from __future__ import annotations

from pathlib import Path

from tests.support.gateway import in_process_gateway
from tests.support.workflows import TERMINAL, trigger, wait_status, write_workflow

APPEND_LINES = """
    name: Log runs
    inputs:
      n: {type: integer, default: 3}
    steps:
      - id: line
        action: tool
        tool: file.write
        args: {path: runs.log, content: "{{ execution.id }}\\n", mode: append}
      - id: number
        action: tool
        tool: file.write
        args: {path: n.txt, content: "{{ input.n }}\\n", mode: overwrite}
"""


async def test_text_around_a_single_expression_is_kept(data_dir: Path) -> None:
    """Issue 10 item 2: the newline after `{{ execution.id }}` separates appended lines."""
    write_workflow(data_dir, "log", APPEND_LINES)
    async with in_process_gateway(data_dir) as gw:
        client = await gw.client()
        ids = []
        for _ in range(2):
            execution_id = await trigger(client, "log")
            done = await wait_status(client, execution_id, TERMINAL)
            assert done.execution.status == "completed", done.execution.error
            ids.append(execution_id)
    workspace = data_dir / "workspace"
    assert (workspace / "runs.log").read_text() == "".join(f"{i}\n" for i in ids)
    # An int inside text is text: "3\n", not the int 3 (which file.write would refuse).
    assert (workspace / "n.txt").read_text() == "3\n"
