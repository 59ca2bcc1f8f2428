"""`hearth workflow validate` runs the gateway loader's checks (issue 10 item 10).

Tools known and enabled per the data directory's config.toml, literal arguments against the
tool's argument model, and every input and step a template names declared — reported with
file, line and key, and word for word what the gateway's `workflow.list` says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.protocol.messages.workflows import WorkflowList, WorkflowListResult
from hearth.tools import ToolRegistry, builtin_tools
from hearth.workflows import load_workflow_file
from hearth.workflows.checks import check_workflow
from tests.support.cli import run_cli_together
from tests.support.gateway import in_process_gateway
from tests.support.workflows import write_workflow

BROKEN = """\
name: Broken in four ways
inputs:
  city: {type: string, default: Oslo}
steps:
  - id: fetch
    action: tool
    tool: file.wrte
    args: {path: a.txt, content: x}
  - id: run
    action: tool
    tool: shell.run
    args: {command: "echo hi"}
  - id: write
    action: tool
    tool: file.write
    args:
      pth: "{{ input.city }}.txt"
      content: "{{ input.whoo }}"
      mode: apend
  - id: report
    action: noop
    when: "steps.fetc.status == 'success' and input.city"
"""

EXPECTED = [
    "line 7: steps[0].tool: step 'fetch': unknown tool 'file.wrte' (did you mean 'file.write'?)",
    "line 11: steps[1].tool: step 'run': tool 'shell.run' is disabled; enable it with "
    "[tools.shell] enabled = true in config.toml",
    "line 18: steps[2].args.content: step 'write': input 'whoo' is not declared "
    "(declared inputs: city)",
    "line 17: steps[2].args.pth: step 'write': unknown argument 'pth' for file.write "
    "(did you mean 'path'?)",
    "line 16: steps[2].args.path: step 'write': file.write needs the argument 'path' (missing)",
    "line 19: steps[2].args.mode: step 'write': file.write: Input should be 'overwrite' or "
    "'append'",
    "line 22: steps[3].when: step 'report': there is no step 'fetc' (did you mean 'fetch'?)",
]

FINE = """\
name: Templated arguments are checked once rendered
inputs:
  n: {type: integer, default: 3}
steps:
  - id: fetch
    action: tool
    tool: http.request
    args:
      url: "https://example.org/{{ input.n }}"
      timeout: "{{ input.n }}"
      headers:
        x-step: "{{ steps['my-step'].status }}"
        x-loop: "{% for input in [{'q': 1}] %}{{ input.q }}{% endfor %}"
  - id: my-step
    action: noop
    branches:
      - condition: "input.n > 2 and steps.fetch.output.status == 200"
        goto: end
"""


def registry(with_shell: bool = False) -> ToolRegistry:
    return ToolRegistry(builtin_tools(shell_enabled=with_shell))


def write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_problem_is_reported_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN)
    checked = check_workflow(load_workflow_file(path), registry())
    assert not checked.valid
    lines = (checked.error or "").splitlines()
    for expected in EXPECTED:
        assert any(line.startswith(f"{path}: {expected}") for line in lines), (expected, lines)
    assert len(lines) == len(EXPECTED), lines


def test_shell_is_accepted_once_enabled(tmp_path: Path) -> None:
    text = BROKEN.split("  - id: write")[0].replace("file.wrte", "file.write")
    path = write(tmp_path, text)
    assert not check_workflow(load_workflow_file(path), registry(with_shell=False)).valid
    assert check_workflow(load_workflow_file(path), registry(with_shell=True)).valid


def test_templated_values_and_shadowed_names_are_left_to_run_time(tmp_path: Path) -> None:
    checked = check_workflow(load_workflow_file(write(tmp_path, FINE)), registry())
    assert checked.valid, checked.error


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("prompt: 'Hi {{ input.nme }}'", "steps[0].prompt: step 'a': input 'nme' is not declared"),
        (
            "prompt: '{{ steps[\"b\"].output }}'",
            "steps[0].prompt: step 'a': there is no step 'b'",
        ),
    ],
)
def test_references_in_prompts(tmp_path: Path, text: str, fragment: str) -> None:
    source = f"name: x\ninputs: {{name: {{}}}}\nsteps:\n  - id: a\n    action: model\n    {text}\n"
    checked = check_workflow(load_workflow_file(write(tmp_path, source)), None)
    assert fragment in (checked.error or ""), checked.error


@pytest.mark.slow
async def test_validate_says_what_the_gateway_says(tmp_path: Path) -> None:
    """Same code path: the CLI's error lines are the gateway's, and config.toml is honoured."""
    data_dir = tmp_path / "data"
    path = write_workflow(data_dir, "broken", BROKEN)
    shell_dir = tmp_path / "with-shell"
    shell_dir.mkdir()
    (shell_dir / "config.toml").write_text("[tools.shell]\nenabled = true\n")
    only_shell = write(
        tmp_path, BROKEN.split("  - id: write")[0].replace("file.wrte", "file.write"), "s.yaml"
    )
    broken, shell_off, shell_on = run_cli_together(
        [
            ("workflow", "validate", str(path), "--data-dir", str(data_dir)),
            ("workflow", "validate", str(only_shell), "--data-dir", str(data_dir)),
            ("workflow", "validate", str(only_shell), "--data-dir", str(shell_dir)),
        ]
    )
    assert broken.returncode == 1, broken.stdout
    cli_lines = broken.stderr.splitlines()
    for expected in EXPECTED:
        assert any(line.startswith(f"{path}: {expected}") for line in cli_lines), expected
    assert shell_off.returncode == 1
    assert "tool 'shell.run' is disabled" in shell_off.stderr
    assert shell_on.returncode == 0, shell_on.stderr
    assert "valid (2 steps)" in shell_on.stdout

    async with in_process_gateway(data_dir) as gw:
        client = await gw.client()
        listing = await client.request(WorkflowList(id=client.next_id()), WorkflowListResult)
    (item,) = listing.workflows
    assert not item.valid
    assert (item.error or "").splitlines() == cli_lines
