"""Approvals in the console, in a real browser on the real stack: a pending approval shows on the
run's page and in the approvals list with its message; a token the approval's rule lets decide
approves it with a comment and the run goes on; a read-only token sees no buttons; a second
decision after the first is refused with the first one named."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from tests.eventually import eventually
from tests.integration.console_fixtures import base_url, shot, sign_in
from tests.integration.test_api_events import create
from tests.integration.test_api_support import API, auth

GATED: dict[str, Any] = {
    "name": "Console Gated",
    "trigger": {"type": "manual"},
    "steps": [
        {"name": "prepare", "agent": "notifier"},
        {"name": "confirm", "approval": {"message": "Restart the database?", "timeout": "10m"}},
        {"name": "restart", "agent": "notifier"},
    ],
}


async def start(api: TestClient[Any, Any]) -> str:
    reply = await api.post(f"{API}/workflows/team-a~console-gated/start", json={}, headers=auth("a"))
    assert reply.status == 202, await reply.text()
    return str((await reply.json())["execution_id"])


async def status_of(api: TestClient[Any, Any], execution_id: str) -> Any:
    return await (await api.get(f"{API}/executions/{quote(execution_id, safe=':')}", headers=auth("a"))).json()


async def test_an_approval_is_decided_once_from_the_console_and_the_run_goes_on(
    api: TestClient[Any, Any], console_page: Page, browser: Browser, worker: None
) -> None:
    await create(api, "a", GATED)
    execution_id = await start(api)

    async def waiting() -> bool:
        return (await status_of(api, execution_id))["steps"].get("confirm", {}).get("status") == "waiting"

    await eventually(waiting, "the approval to wait", timeout=30)

    # The read-only viewer sees the approval and no buttons.
    viewer = await sign_in(browser, api, "a-read")
    await viewer.goto(base_url(api) + f"/ui/runs/{quote(execution_id, safe=':')}")
    box = viewer.locator('[data-approval="confirm"]')
    await expect(box).to_contain_text("Restart the database?")
    await expect(box.locator("button")).to_have_count(0)

    page = console_page
    await page.goto(base_url(api) + "/ui/approvals")
    pending = page.locator(f'article[data-run="{execution_id}"]')
    await expect(pending).to_contain_text("Restart the database?")
    await shot(page, "approvals")
    await pending.locator("textarea").fill("checked the replica lag first")
    await pending.locator("button.approve").click()
    await page.wait_for_url(re.compile("/ui/runs/"))
    await expect(page.locator(".flash.ok")).to_contain_text("Approved")
    await expect(page.locator('[data-approval="confirm"]')).to_have_attribute("data-status", "approved")
    await expect(page.locator('[data-approval="confirm"] .decisions')).to_contain_text(
        "approve by team-a-ci (team team-a)"
    )
    await expect(page.locator('[data-approval="confirm"] .decisions')).to_contain_text("checked the replica lag first")
    await expect(page.locator("#run-status")).to_have_text("succeeded", timeout=20_000)
    await shot(page, "run-approved")

    # The viewer's page was loaded before the decision; deciding now (had it buttons) is refused:
    # through the API, a second decision is a 409 naming the first.
    second = await api.post(
        f"{API}/executions/{quote(execution_id, safe=':')}/approvals/confirm",
        json={"decision": "reject"},
        headers=auth("a"),
    )
    assert second.status == 409
    assert (await status_of(api, execution_id))["status"] == "succeeded"
