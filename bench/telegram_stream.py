"""Telegram streaming: a 2 000-token reply shown in Telegram by a real gateway process.

What it measures, per reply: Bot API calls (sendMessage, editMessageText) and the bytes sent,
the shortest gap between two edits in the chat (the pacing, as a ratio of `edit_interval_s`),
whether the final text in the chat is exactly the model's reply rendered, and the time from the
model's last token to the call that completed the chat, as a ratio of `edit_interval_s`.

Targets (issue 13): at most one call per chat per `edit_interval_s` (gap ratio ≥ 1), final text
identical, final edit ≤ 1.2 x `edit_interval_s` after the last token.

Baseline, in the same run: a naive bot edits once per model delta, so its call count is the
number of deltas (2 000, most of which Telegram would refuse with 429); the ratio printed is
naive calls / Hearth calls.

Set-up: the gateway is a child process (`hearth serve`, SQLite in a temporary directory); the
fake Bot API server (`tests/support/fake_telegram.py`) and a paced OpenAI-compatible model
server (`tests/support/paced_model.py`, 2 000 deltas `"tok<n> "`, 2 ms apart) run in this
process's event loop. The time of the model's last token is taken by the model server and the
time of each Bot API call by the fake server, on the same clock.

    .venv/bin/python bench/telegram_stream.py [--runs 3] [--interval 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.fake_telegram import FakeTelegram  # noqa: E402
from tests.support.gateway import start_gateway_process  # noqa: E402
from tests.support.paced_model import PacedModel, PacedReply  # noqa: E402
from tests.support.telegram import ADA, write_config  # noqa: E402

from hearth.channels.telegram.render import render  # noqa: E402

TOKENS = 2000
GAP_S = 0.002


async def one_reply(fake: FakeTelegram, model: PacedModel, run: int) -> dict[str, float]:
    deltas = tuple(f"tok{i} " for i in range(TOKENS))
    expected = "".join(c.text for c in render("".join(deltas)))
    model.script(PacedReply(deltas, gap_s=GAP_S))
    first_call = len(fake.calls)
    known = {id(m) for m in fake.chat(ADA)}
    fake.push_message(ADA, f"reply number {run}")

    def mine() -> list[object]:
        return [m for m in fake.chat(ADA) if id(m) not in known]

    def done() -> bool:
        return "".join(m.text for m in mine()) == expected  # type: ignore[attr-defined]

    await fake.wait_for(done, timeout=120)
    calls = [c for c in fake.calls[first_call:] if c.method in ("sendMessage", "editMessageText")]
    edits = [c for c in calls if c.method == "editMessageText"]
    gaps = [b.at - a.at for a, b in itertools.pairwise(edits)]
    return {
        "sends": sum(c.method == "sendMessage" for c in calls),
        "edits": sum(c.method == "editMessageText" for c in calls),
        "bytes": sum(len(json.dumps(c.params, ensure_ascii=False).encode()) for c in calls),
        "min_gap": min(gaps) if gaps else float("inf"),
        "final_after": calls[-1].at - model.last_delta_at[-1],
        "identical": float(done()),
    }


async def main(runs: int, interval: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        async with FakeTelegram() as fake, PacedModel() as model:
            write_config(data_dir, fake, None, edit_interval_s=interval)
            config = (data_dir / "config.toml").read_text()
            (data_dir / "config.toml").write_text(
                f'[models]\ndefault = "local:fake-model"\n\n[providers.local]\nkind = "openai"'
                f'\nbase_url = "{model.base_url}"\n\n{config}'
            )
            gateway = start_gateway_process(data_dir, env={"HEARTH_TELEGRAM__TOKEN": fake.token})
            try:
                # Warm-up: the first reply pays for imports in the gateway.
                await one_reply(fake, model, 0)
                results = [await one_reply(fake, model, run) for run in range(1, runs + 1)]
            finally:
                gateway.stop()
    print(f"telegram_stream: {TOKENS} tokens {GAP_S * 1000:g} ms apart, edit_interval_s={interval}")
    print(
        "run  sends  edits  bytes    min edit gap/interval  final after last token/interval  same"
    )
    for n, r in enumerate(results, 1):
        print(
            f"{n:>3}  {r['sends']:>5.0f}  {r['edits']:>5.0f}  {r['bytes']:>7.0f}  "
            f"{r['min_gap'] / interval:>16.2f}  {r['final_after'] / interval:>31.2f}  "
            f"{'yes' if r['identical'] else 'NO'}"
        )
    calls = statistics.median(r["sends"] + r["edits"] for r in results)
    print(
        f"median: {calls:.0f} calls vs {TOKENS} for a bot that edits per delta "
        f"(ratio {TOKENS / calls:.0f}x fewer); final edit "
        f"{statistics.median(r['final_after'] for r in results) / interval:.2f} x interval after "
        f"the last token (target <= 1.2); min gap "
        f"{min(r['min_gap'] for r in results) / interval:.2f} x interval (target >= 1)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.interval))
