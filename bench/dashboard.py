"""Dashboard first render and bundle size, in Debian's Chromium driven by Playwright.

What is measured:

- **first render**: from the start of navigation (the page's time origin) to the moment the
  approvals inbox shows every pending approval with its data (`[data-approval]` items present
  and no first load outstanding), recorded in the page by a MutationObserver, so polling by the
  test driver adds nothing. Each load uses a fresh browser context: no HTTP cache, a new
  WebSocket, hello, `subscribe` and `approval.list` every time.
- **renderer CPU** per load: the renderer's main-thread task time (CDP `Performance.getMetrics`
  TaskDuration), steadier than wall time on a shared machine.
- **baseline** in the same run: a Python `GatewayClient` connecting, saying hello and asking
  `approval.list` from the same gateway; the ratio says what the browser, the bundle and the
  rendering add to the bare protocol exchange.
- **bundle size**: app.js and app.css, raw and gzip (level 9).

The gateway runs as its own process (`python -m hearth serve`), as a person runs it, with
`--approvals` executions paused at an approval gate.

Run: `.venv/bin/python bench/dashboard.py [--loads 20] [--approvals 10] [--json]`.
Targets (issue 14): first render <= 300 ms on loopback; JavaScript <= 150 KB compressed.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from hearth.client import GatewayClient
from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.workflows import (
    WorkflowExecutionGet,
    WorkflowExecutionResult,
    WorkflowListResult,
    WorkflowReload,
    WorkflowTrigger,
    WorkflowTriggered,
)

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "src" / "hearth" / "web" / "static"
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
TARGET_RENDER_MS = 300.0
RENDERED = "() => window.__rendered !== undefined"
TARGET_JS_GZIP_KB = 150.0

GATED = """
    name: Gated
    steps:
      - id: ask
        action: noop
        approval_required: true
        approval_prompt: "Go ahead with run {{ input.n }}?"
    inputs:
      n: {type: integer, default: 0}
"""

#: Installed before the page's own script: notes when the inbox is complete.
WATCH = """
(() => {
  const want = %d;
  const done = () => document.querySelectorAll('[data-approval]').length >= want
    && document.documentElement.dataset.loading === '0';
  new MutationObserver((_, observer) => {
    if (window.__rendered === undefined && done()) {
      window.__rendered = performance.now();
      observer.disconnect();
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
  sessionStorage.setItem('hearth.token', %s);
})();
"""


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def bundle_sizes() -> dict[str, dict[str, int]]:
    """Each file, plus `all JS` (what the chat page has loaded) and `first JS` (what the
    inbox loads: app.js and the chunks it imports statically)."""
    sizes: dict[str, dict[str, int]] = {}
    for path in [*sorted(STATIC.glob("*.js")), STATIC / "app.css"]:
        raw = path.read_bytes()
        sizes[path.name] = {
            "raw": len(raw),
            "gzip": len(gzip.compress(raw, compresslevel=9, mtime=0)),
        }
    app = (STATIC / "app.js").read_text()
    first = ["app.js", *re.findall(r'from\s*"\./(chunk-\w+\.js)"', app)]
    js = [n for n in sizes if n.endswith(".js")]
    for label, names in (("first JS", first), ("all JS", js)):
        sizes[label] = {k: sum(sizes[n][k] for n in names) for k in ("raw", "gzip")}
    return sizes


def start_gateway(data_dir: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    log = (data_dir.parent / "gateway.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hearth", "serve", "--data-dir", str(data_dir), "--port", "0"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    runtime = data_dir / "runtime.json"
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited: see {log.name}")
        try:
            info = json.loads(runtime.read_text())
            if info["pid"] == proc.pid:
                break
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("gateway did not start")
        time.sleep(0.05)
    token = (data_dir / "gateway.token").read_text().strip()
    return proc, str(info["url"]), token


async def seed(url: str, token: str, count: int) -> None:
    client = GatewayClient(url, token)
    await client.connect()
    try:
        await client.request(WorkflowReload(id="r"), WorkflowListResult)
        ids = []
        for n in range(count):
            reply = await client.request(
                WorkflowTrigger(id=f"t{n}", workflow_id="gated", input={"n": n}),
                WorkflowTriggered,
            )
            ids.append(reply.execution_id)
        for execution_id in ids:
            async with asyncio.timeout(30):
                while True:
                    got = await client.request(
                        WorkflowExecutionGet(id=client.next_id(), execution_id=execution_id),
                        WorkflowExecutionResult,
                    )
                    if got.execution.status == "paused":
                        break
                    await asyncio.sleep(0.02)
    finally:
        await client.close()


async def baseline(url: str, token: str, count: int, loads: int) -> list[float]:
    """Connect, hello, approval.list: what any client must do to show the inbox."""
    times = []
    for _ in range(loads):
        start = time.perf_counter()
        client = GatewayClient(url, token, client_name="bench")
        await client.connect()
        reply = await client.request(ApprovalList(id="a"), ApprovalListResult)
        assert len(reply.approvals) >= count
        times.append((time.perf_counter() - start) * 1000)
        await client.close()
    return times


async def browser_loads(url: str, token: str, count: int, loads: int) -> dict[str, list[float]]:
    from playwright.async_api import async_playwright

    render, cpu, blank, blank_cpu = [], [], [], []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for i in range(loads + 1):
                # The browser's floor: a fresh context loading a tiny document (`/healthz`)
                # from the same gateway, up to its load event.
                context = await browser.new_context(viewport={"width": 1280, "height": 860})
                page = await context.new_page()
                cdp = await context.new_cdp_session(page)
                await cdp.send("Performance.enable")
                await page.goto(f"{url}/healthz")
                loaded = await page.evaluate(
                    "() => performance.getEntriesByType('navigation')[0].loadEventEnd"
                )
                metrics = await cdp.send("Performance.getMetrics")
                task = next(m["value"] for m in metrics["metrics"] if m["name"] == "TaskDuration")
                await context.close()
                if i:
                    blank.append(float(loaded))
                    blank_cpu.append(float(task) * 1000)

                context = await browser.new_context(viewport={"width": 1280, "height": 860})
                await context.add_init_script(WATCH % (count, json.dumps(token)))
                page = await context.new_page()
                cdp = await context.new_cdp_session(page)
                await cdp.send("Performance.enable")
                await page.goto(f"{url}/#/approvals")
                await page.wait_for_function(RENDERED, timeout=30_000)
                rendered = await page.evaluate("window.__rendered")
                metrics = await cdp.send("Performance.getMetrics")
                task = next(m["value"] for m in metrics["metrics"] if m["name"] == "TaskDuration")
                await context.close()
                if i == 0:
                    continue  # warm-up: the browser process's own first start
                render.append(float(rendered))
                cpu.append(float(task) * 1000)
        finally:
            await browser.close()
    return {
        "render_ms": render,
        "renderer_cpu_ms": cpu,
        "blank_ms": blank,
        "blank_cpu_ms": blank_cpu,
    }


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "min": ordered[0],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--approvals", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    load_before = uptime()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        (data_dir / "workflows").mkdir(parents=True)
        (data_dir / "workflows" / "gated.yaml").write_text(textwrap.dedent(GATED))
        proc, url, token = start_gateway(data_dir)
        try:
            await seed(url, token, args.approvals)
            base = await baseline(url, token, args.approvals, args.loads)
            measured = await browser_loads(url, token, args.approvals, args.loads)
        finally:
            proc.terminate()
            proc.wait(20)
    sizes = bundle_sizes()
    render = summary(measured["render_ms"])
    cpu = summary(measured["renderer_cpu_ms"])
    proto = summary(base)
    blank = summary(measured["blank_ms"])
    blank_cpu = summary(measured["blank_cpu_ms"])
    js_kb = sizes["all JS"]["gzip"] / 1024
    result: dict[str, Any] = {
        "loads": args.loads,
        "approvals": args.approvals,
        "first_render_ms": render,
        "renderer_cpu_ms": cpu,
        "baseline_protocol_ms": proto,
        "ratio_render_to_protocol": render["median"] / proto["median"],
        "blank_page_ms": blank,
        "blank_page_cpu_ms": blank_cpu,
        "ratio_render_to_blank_page": render["median"] / blank["median"],
        "bundle": sizes,
        "targets": {
            "first_render_ms": TARGET_RENDER_MS,
            "js_gzip_kb": TARGET_JS_GZIP_KB,
            "met": render["median"] <= TARGET_RENDER_MS and js_kb <= TARGET_JS_GZIP_KB,
        },
        "uptime_before": load_before,
        "uptime_after": uptime(),
        "chromium": subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"load before: {load_before}")
    print(f"inbox with {args.approvals} approvals, {args.loads} cold loads (fresh context each)")
    print(
        f"first render   median {render['median']:.0f} ms  p90 {render['p90']:.0f} ms  "
        f"min {render['min']:.0f} ms   (target <= {TARGET_RENDER_MS:.0f} ms)"
    )
    print(f"renderer CPU   median {cpu['median']:.0f} ms per load")
    print(
        f"baseline       GatewayClient connect+hello+approval.list median "
        f"{proto['median']:.1f} ms   ratio render/baseline "
        f"{result['ratio_render_to_protocol']:.1f}x"
    )
    print(
        f"baseline       blank page (/healthz) in a fresh context: load median "
        f"{blank['median']:.0f} ms, renderer CPU {blank_cpu['median']:.0f} ms   "
        f"ratio render/blank {result['ratio_render_to_blank_page']:.1f}x"
    )
    for name, size in sizes.items():
        print(f"{name:<18} {size['raw'] / 1024:.1f} KB raw, {size['gzip'] / 1024:.1f} KB gzip")
    print(f"JS target <= {TARGET_JS_GZIP_KB:.0f} KB gzip: {js_kb:.1f} KB")
    print(f"targets met: {result['targets']['met']}")
    print(f"load after:  {result['uptime_after']}")


if __name__ == "__main__":
    asyncio.run(main())
