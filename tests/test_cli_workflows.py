"""`hearth workflow …` and `hearth approvals` as a person uses them: real processes end to end.

Every command runs as its own `python -m hearth` process against a gateway started with
`hearth serve` in a subprocess, with stdin not a terminal (as in a script or a second shell):
at the end of its input the gated `run --wait` prints how to answer and waits for another
client's answer (tests/test_cli_prompts.py answers through a pipe instead). Commands that do
not depend on each other are started together, because each CLI process spends seconds
importing.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support import cli as support_cli
from tests.support.gateway import GatewayProcess, start_gateway_process
from tests.support.workflows import write_workflow

pytestmark = pytest.mark.slow

GREET = """
    name: Greet someone
    inputs:
      who: {type: string, required: true}
    steps:
      - id: prepare
        action: noop
      - id: write
        action: tool
        tool: file.write
        approval_required: true
        approval_prompt: "Greet {{ input.who }}?"
        args: {path: greeting.txt, content: "hello {{ input.who }}\\n", mode: append}
      - id: done
        action: noop
"""

SNOOZE = """
    name: Snooze
    steps:
      - {id: nap, action: wait, duration: 1h}
      - {id: after, action: noop}
"""

# `aproval_required` is on line 9 of the dedented file.
BROKEN = """
    name: Broken
    steps:
      - id: a
        action: noop
      - id: b
        action: tool
        tool: notify
        aproval_required: true
        args: {message: hi}
"""

EXECUTION_ID = re.compile(r"started execution ([0-9a-f-]{36})")
TIMEOUT_S = 60


def cli_env(data_dir: Path | None) -> dict[str, str]:
    return support_cli.cli_env(data_dir)


def hearth_cli(*args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    return support_cli.run_cli(args, data_dir)


def hearth_cli_together(
    *commands: Sequence[str], data_dir: Path | None = None
) -> list[subprocess.CompletedProcess[str]]:
    return support_cli.run_cli_together(commands, data_dir)


TABLE_LINES = re.compile(r"[\u2500-\u257f]")


def flat(text: str) -> str:
    """Rich wraps long lines (and table cells) at the console width and draws table lines;
    compare text without the lines and with whitespace collapsed."""
    return " ".join(TABLE_LINES.sub(" ", text).split())


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], result.stderr


class BackgroundCli:
    """A CLI process left running (like `run --wait` in another terminal)."""

    def __init__(
        self, tmp_path: Path, data_dir: Path, *args: str, stdin: int = subprocess.DEVNULL
    ) -> None:
        self.out_path = tmp_path / f"cli-{time.monotonic_ns()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hearth", *args],
                stdout=out,
                stderr=err,
                env=cli_env(data_dir),
                stdin=stdin,
                text=True,
            )

    def type_line(self, line: str) -> None:
        """Write a line to the command's stdin (a pipe), as a person answering a prompt."""
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait_for_output(self, fragment: str) -> str:
        """Block until `fragment` is printed; fails if the process ends without printing it."""
        deadline = time.monotonic() + TIMEOUT_S
        while fragment not in flat(self.stdout):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"never printed {fragment!r} (exit {self.process.poll()}):\n"
                    f"{self.stdout}\n{self.stderr}"
                )
            time.sleep(0.05)
        return self.stdout

    def execution_id(self) -> str:
        match = EXECUTION_ID.search(self.wait_for_output("started execution"))
        assert match, self.stdout
        return match.group(1)

    def finish(self) -> int:
        return self.process.wait(timeout=TIMEOUT_S)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway process for the module, with a valid, a waiting and a broken workflow."""
    data_dir = tmp_path_factory.mktemp("cli-workflows") / "data"
    data_dir.mkdir()
    write_workflow(data_dir, "greet", GREET)
    write_workflow(data_dir, "snooze", SNOOZE)
    write_workflow(data_dir, "broken", BROKEN)
    gateway = start_gateway_process(data_dir)
    try:
        yield gateway
    finally:
        assert gateway.stop() == 0, gateway.log()


@pytest.fixture
def background() -> Iterator[list[BackgroundCli]]:
    """Collects background CLI processes and stops any still running when the test ends."""
    processes: list[BackgroundCli] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def test_validate_good_and_bad_files(tmp_path: Path) -> None:
    good = write_workflow(tmp_path, "greet", GREET)
    bad = write_workflow(tmp_path, "broken", BROKEN)
    ok, refused = hearth_cli_together(
        ("workflow", "validate", str(good)), ("workflow", "validate", str(bad))
    )

    assert ok.returncode == 0, ok.stderr
    # A long path may be folded at the console width, even inside the file name.
    assert "".join(ok.stdout.split()) == "".join(f"{good}: valid (3 steps)".split())

    assert refused.returncode == 1
    assert "Traceback" not in refused.stdout + refused.stderr
    assert refused.stderr.strip() == (
        f"{bad}: line 9: steps[1].aproval_required: unknown key (did you mean 'approval_required'?)"
    )


def test_gated_run_approved_from_another_cli(
    served: GatewayProcess, tmp_path: Path, background: list[BackgroundCli]
) -> None:
    listing = hearth_cli("workflow", "list", data_dir=served.data_dir)
    assert listing.returncode == 0, listing.stderr
    rows = flat(listing.stdout)
    assert "greet Greet someone who* valid" in rows
    assert "broken broken invalid:" in rows
    assert "aproval_required: unknown key (did you mean 'approval_required'?)" in rows

    runner = BackgroundCli(
        tmp_path, served.data_dir, "workflow", "run", "greet", "--input", "who=bob", "--wait"
    )
    background.append(runner)
    execution_id = runner.execution_id()
    hint = f"answer from any client: hearth workflow approve {execution_id} write (or deny)"
    printed = flat(runner.wait_for_output(hint))
    assert "prepare: success" in printed
    assert "approval needed at write: Greet bob?" in printed
    assert '"content": "hello bob\\n"' in printed  # the arguments the step will run with
    assert runner.process.poll() is None  # still waiting for an answer

    pending = hearth_cli("approvals", data_dir=served.data_dir)
    assert pending.returncode == 0, pending.stderr
    # One row: what is asked, where, and the command that answers it (the id may be cut short
    # to fit the table).
    row = flat(pending.stdout)
    assert "workflow Greet bob? greet / write" in row
    assert f"hearth workflow approve {execution_id[:8]}" in row

    approved = hearth_cli("workflow", "approve", execution_id, "write", data_dir=served.data_dir)
    assert approved.returncode == 0, approved.stderr
    assert flat(approved.stdout) == f"approved write of {execution_id}"

    assert runner.finish() == 0, runner.stderr
    printed = flat(runner.stdout)
    assert printed.index(hint) < printed.index("write: success")
    assert printed.endswith("write: success done: success execution completed")
    assert (served.data_dir / "workspace" / "greeting.txt").read_text() == "hello bob\n"

    show, history = hearth_cli_together(
        ("workflow", "show", execution_id),
        ("workflow", "history", "greet"),
        data_dir=served.data_dir,
    )
    assert show.returncode == 0, show.stderr
    detail = flat(show.stdout)
    assert f"execution {execution_id} workflow greet completed" in detail
    steps = re.findall(r"│ (\d+) │ (\w+) +│ (\d+) +│ (\w+)", show.stdout)
    assert steps == [
        ("1", "prepare", "1", "success"),
        ("2", "write", "1", "success"),
        ("3", "done", "1", "success"),
    ]
    assert '"path": "greeting.txt"' in detail

    assert history.returncode == 0, history.stderr
    assert execution_id[:8] in history.stdout
    assert "completed" in history.stdout
    assert "manual" in history.stdout


def test_deny_and_cancel_end_the_waiting_runs(
    served: GatewayProcess, tmp_path: Path, background: list[BackgroundCli]
) -> None:
    gated = BackgroundCli(
        tmp_path, served.data_dir, "workflow", "run", "greet", "-i", "who=eve", "--wait"
    )
    sleeper = BackgroundCli(tmp_path, served.data_dir, "workflow", "run", "snooze", "--wait")
    background.extend([gated, sleeper])
    gated_id = gated.execution_id()
    gated.wait_for_output(f"hearth workflow approve {gated_id} write")
    sleeper_id = sleeper.execution_id()
    sleeper.wait_for_output("nap: waiting")

    denied, cancelled = hearth_cli_together(
        ("workflow", "deny", gated_id, "write", "--comment", "not today"),
        ("workflow", "cancel", sleeper_id),
        data_dir=served.data_dir,
    )
    assert denied.returncode == 0, denied.stderr
    assert flat(denied.stdout) == f"denied write of {gated_id}"
    assert cancelled.returncode == 0, cancelled.stderr
    assert flat(cancelled.stdout) == f"execution {sleeper_id}: cancelled"

    assert gated.finish() == 1
    assert flat(gated.stdout).endswith("execution cancelled: step 'write' was denied: not today")
    assert "write: success" not in gated.stdout
    assert sleeper.finish() == 1
    assert flat(sleeper.stdout).endswith("execution cancelled: cancelled on request")
    assert "after" not in sleeper.stdout


def test_bad_input_and_unknown_workflow_are_one_line_errors(served: GatewayProcess) -> None:
    where = ("--data-dir", str(served.data_dir))
    novalue, not_object, unknown, missing = hearth_cli_together(
        ("workflow", "run", "greet", "--input", "novalue", *where),
        ("workflow", "run", "greet", "--input-json", "[1]", *where),
        ("workflow", "run", "nope", "--wait", *where),
        ("workflow", "run", "greet", *where),
    )
    # Refused before anything is sent to the gateway: usage errors, exit 2.
    assert novalue.returncode == 2
    assert_one_line_error(novalue, "--input 'novalue' is not of the form NAME=VALUE")
    assert not_object.returncode == 2
    assert_one_line_error(not_object, "--input-json must be a JSON object")
    # Refused by the gateway: the code and its message, exit 1.
    assert unknown.returncode == 1
    assert_one_line_error(unknown, "WORKFLOW_NOT_FOUND", "no workflow 'nope'", "known:", "greet")
    assert "started execution" not in unknown.stdout
    assert missing.returncode == 1
    assert_one_line_error(missing, "INVALID_INPUT", "input 'who': is required")
