"""Debian's Chromium driven by Playwright, for the dashboard tests and benchmark.

No browser is downloaded: Playwright launches /usr/bin/chromium (`apt-get install chromium`;
`.ci/run` installs it). Locally, without it, the browser tests skip and say why; in CI a
missing browser is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hearth.app import Hearth
from hearth.config import load_settings

CHROMIUM = Path("/usr/bin/chromium")
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
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
#: Where screenshots go: DASHBOARD_SCREENSHOTS (e.g. docs/img to refresh the committed ones), else
#: a directory of the test run.
SCREENSHOTS_ENV = "DASHBOARD_SCREENSHOTS"


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"the dashboard tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason + "; .ci/run installs it")
    pytest.skip(reason)


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """One headless Chromium; pages are opened in fresh contexts by the tests."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class PageWatch:
    """Console errors and CSP violations a page reported; a test asserts there are none."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(str(e)))


async def open_page(browser: Any, viewport: dict[str, int] = DESKTOP) -> tuple[Any, Any, PageWatch]:
    context = await browser.new_context(viewport=viewport, color_scheme="light")
    page = await context.new_page()
    watch = PageWatch()
    watch.attach(page)
    return context, page, watch


async def login(page: Any, url: str, token: str, route: str = "") -> None:
    """Open the address `hearth dashboard` prints, then go to `route`; wait until online."""
    await page.goto(f"{url}/#token={token}")
    await page.wait_for_selector("nav a[aria-current='page']", state="attached")
    await wait_online(page)
    if route:
        await page.evaluate("r => { location.hash = r }", f"#/{route}")


async def wait_online(page: Any) -> None:
    await page.wait_for_function(
        "() => !document.querySelector('.banner') && document.querySelector('nav')"
    )


def screenshot_dir(fallback: Path) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    path = Path(chosen) if chosen else fallback
    path.mkdir(parents=True, exist_ok=True)
    return path


async def settled(page: Any) -> None:
    """Wait until every shown section has its first data (the page counts them itself)."""
    await page.wait_for_function("() => (document.documentElement.dataset.loading ?? '0') === '0'")


async def screenshot(page: Any, directory: Path, name: str) -> Path:
    await settled(page)
    width = page.viewport_size["width"]
    kind = "phone" if width < 600 else "desktop"
    path = directory / f"dashboard-{name}-{kind}.png"
    await page.screenshot(path=str(path), full_page=False)
    return path


@asynccontextmanager
async def gateway_on_port(
    data_dir: Path, port: int = 0, **settings: Any
) -> AsyncIterator[tuple[Hearth, str, str]]:
    """An in-process gateway on `port` (0: a free one), so a test can restart it on the same
    port and see the page reconnect. Yields the app, its URL and its token."""
    config = load_settings(data_dir=data_dir, port=port, **settings)
    hearth = Hearth(config)
    task = asyncio.create_task(hearth.serve(install_signals=False))
    deadline = time.monotonic() + 30
    while hearth.url is None:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise TimeoutError("gateway did not start within 30 s")
        await asyncio.sleep(0.01)
    try:
        yield hearth, hearth.url, hearth.state.tokens.current()
    finally:
        assert hearth.server is not None
        hearth.server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


def port_of(url: str) -> int:
    match = re.search(r":(\d+)$", url.rstrip("/"))
    assert match, url
    return int(match.group(1))
