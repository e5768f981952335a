"""Fixtures of the console's browser tests: Debian's chromium driven by Playwright, signed in
to a gateway (the `api` fixture's: real Kafka and Temporal, the tokens of `test_api_support`).

The fixtures `browser` and `console_page` are registered by tests/integration/conftest.py; import
the helpers (`sign_in`, `shot`, `base_url`) from here. `console_page` opens a browser page signed
in with token "a" (team-a, every scope); `sign_in` signs a fresh page in with another token.
`shot(page, name)` keeps a screenshot under `.artifacts/console/` (ignored by git; CI keeps the
folder as the run's artifacts).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, async_playwright

from tests.integration.test_api_support import TOKENS

__all__ = ["ARTIFACTS", "CHROMIUM", "base_url", "browser", "console_page", "shot", "sign_in"]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts" / "console"
#: Debian's chromium (`make` installs it); Playwright's own browser download cannot work here.
CHROMIUM = os.environ.get("HOOKLINE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def base_url(api: TestClient[Any, Any]) -> str:
    return str(api.make_url("")).rstrip("/")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no chromium at {CHROMIUM}: run `make install` (it installs Debian's chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def sign_in(
    browser: Browser, api: TestClient[Any, Any], token: str = "a", *, dark: bool = False, javascript: bool = True
) -> Page:
    """A new page (its own cookies) signed in to the console with token `token` of TOKENS;
    `javascript=False`: a browser with scripts off (the console must work without them)."""
    context = await browser.new_context(
        viewport={"width": 1366, "height": 860},
        color_scheme="dark" if dark else "light",
        java_script_enabled=javascript,
    )
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(base_url(api) + "/ui/events")
    assert "/ui/login" in page.url  # not signed in yet: sent to sign in, and back afterwards
    await page.fill("#token", TOKENS[token].token.get_secret_value())
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url(api) + "/ui/events")
    return page


@pytest.fixture
async def console_page(browser: Browser, api: TestClient[Any, Any]) -> Page:
    return await sign_in(browser, api, "a")


async def shot(page: Page, name: str) -> Path:
    """Keep a screenshot of the whole page as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
