"""The console in a real browser (Debian's chromium, driven by Playwright) on the real stack: an
Alertmanager notification appears live in the event stream, its run's steps turn green without a
reload, the event page says why the other definitions did not match, a running run is cancelled;
a read-only token sees no action buttons; a forged POST without the CSRF token is refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from schemas.agents import AgentCatalog
from tests.conftest import EXAMPLES, running
from tests.eventually import eventually
from tests.integration.conftest import held_agent
from tests.integration.console_fixtures import base_url, shot, sign_in
from tests.integration.test_api_events import alert, create, decided
from tests.integration.test_api_support import API, auth
from triggers.app import TriggersService


@pytest.fixture
def agents(release: Path) -> AgentCatalog:
    base = AgentCatalog.load(EXAMPLES / "agents.yaml")
    return AgentCatalog(agents={**base.agents, "held": held_agent(release)})


def respond(name: str, severity: str) -> dict[str, Any]:
    """Three steps; the second runs until the test releases it."""
    return {
        "name": name,
        "trigger": {"type": "webhook", "source": "alertmanager", "filter": [f'severity="{severity}"']},
        "steps": [
            {"name": "triage", "agent": "notifier"},
            {"name": "hold", "agent": "held"},
            {"name": "report", "agent": "notifier"},
        ],
    }


async def held_run(api: TestClient[Any, Any], service: TriggersService, name: str) -> tuple[str, str]:
    """A definition `name` whose run holds at its second step, and its run for one critical alert:
    (event id, execution id)."""
    await create(api, "a", respond(name, "critical"))
    async with running(service.run, service.stop):
        reply = await api.post("/hooks/alertmanager", json=alert(name.lower().replace(" ", "-")))
        [event_id] = (await reply.json())["event_ids"]
        record = await decided(api, event_id)
    [execution_id] = [row["execution_id"] for row in record["decisions"] if row["matched"]]
    return event_id, execution_id


async def execution(api: TestClient[Any, Any], execution_id: str) -> Any:
    return await (await api.get(f"{API}/executions/{quote(execution_id, safe=':')}", headers=auth("a"))).json()


async def test_an_alert_appears_live_and_its_run_turns_green_without_a_reload(
    api: TestClient[Any, Any],
    console_page: Page,
    triggers_service: Callable[..., TriggersService],
    worker: None,
    release: Path,
) -> None:
    page = console_page
    await create(api, "a", respond("Console Critical", "critical"))
    await create(api, "a", respond("Console Warnings", "warning"))
    await page.reload()
    await expect(page.locator("#event-rows")).to_have_attribute("sse-connect", re.compile("/ui/events/stream"))
    service = triggers_service()
    async with running(service.run, service.stop):
        reply = await api.post("/hooks/alertmanager", json=alert("console-f1"))
        [event_id] = (await reply.json())["event_ids"]
        # No reload: the row arrives over server-sent events once the triggers have decided it.
        row = page.locator(f'#event-rows tr[data-event="{event_id}"]')
        await expect(row).to_be_visible(timeout=20_000)
        await expect(row.locator(".badge")).to_have_text("matched")
        await shot(page, "events")

        # The event's page: what it started, and why the other definition did not match.
        await row.locator("a").click()
        await page.wait_for_url(re.compile(f"/ui/events/{event_id}$"))
        warnings = page.locator('#decisions tr[data-definition="team-a~console-warnings"]')
        await expect(warnings.locator(".reason")).to_have_text(
            "severity=\"warning\" does not hold (labels.severity is 'critical')"
        )
        started = page.locator('#decisions tr[data-definition="team-a~console-critical"]')
        await expect(started).to_contain_text("started")
        await shot(page, "event")

        # Its run, while the second step holds: then released, every step turns green live.
        await started.locator("td:last-child a").click()
        await page.wait_for_url(re.compile("/ui/runs/"))
        hold = page.locator('.graph .node[data-step="hold"]')
        await expect(hold).to_have_attribute("data-status", "running", timeout=20_000)
        await expect(page.locator('.graph .node[data-step="triage"]')).to_have_attribute("data-status", "succeeded")
        await expect(page.locator('.graph .node[data-step="report"]')).to_have_attribute("data-status", "pending")
        await shot(page, "run-running")
        url_before = page.url
        release.touch()
        for step in ("triage", "hold", "report"):
            node = page.locator(f'.graph .node[data-step="{step}"]')
            await expect(node).to_have_attribute("data-status", "succeeded", timeout=20_000)
        await expect(page.locator("#run-status")).to_have_text("succeeded")
        await expect(page.locator("#cancel")).to_have_count(0)  # nothing left to cancel
        assert page.url == url_before  # the same page, updated in place
        await expect(page.locator(".timeline .bar")).to_have_count(3)
        await shot(page, "run")
        await decided(api, event_id)


async def test_a_running_run_is_cancelled_from_its_page(
    api: TestClient[Any, Any],
    console_page: Page,
    triggers_service: Callable[..., TriggersService],
    worker: None,
    release: Path,
) -> None:
    page = console_page
    _, execution_id = await held_run(api, triggers_service(), "Console Cancel")

    await page.goto(base_url(api) + f"/ui/runs/{execution_id}")
    await expect(page.locator('.graph .node[data-step="hold"]')).to_have_attribute(
        "data-status", "running", timeout=20_000
    )
    await page.click("#cancel")
    await expect(page.locator(".flash.ok")).to_contain_text("Cancellation")
    await expect(page.locator("#run-status")).to_have_text("cancelled", timeout=20_000)
    # The API agrees, and the cancellation is in the audit log under the console user's token.
    assert (await execution(api, execution_id))["status"] == "cancelled"
    audit = await (await api.get(f"{API}/audit", headers=auth("a"))).json()
    assert any(e["action"] == "run.cancel" and e["actor"] == "team-a-ci" for e in audit["items"])
    # A cancelled run offers a retry instead, without a reload; the retry is a new run linked back.
    await expect(page.locator("#retry")).to_be_visible()
    await page.click("#retry")
    await expect(page.locator(".flash.ok")).to_contain_text(f"Retry of {execution_id} started as")
    await expect(page.locator("dl.facts")).to_contain_text(f"Retry of{execution_id}")


async def test_a_read_only_token_sees_no_action_buttons_and_a_forged_post_is_refused(
    api: TestClient[Any, Any],
    browser: Browser,
    triggers_service: Callable[..., TriggersService],
    worker: None,
    release: Path,
) -> None:
    _, execution_id = await held_run(api, triggers_service(), "Console Read Only")

    viewer = await sign_in(browser, api, "a-read", dark=True)
    await viewer.goto(base_url(api) + f"/ui/runs/{execution_id}")
    await expect(viewer.locator('.graph .node[data-step="hold"]')).to_have_attribute(
        "data-status", "running", timeout=20_000
    )
    await expect(viewer.locator("#cancel")).to_have_count(0)
    await expect(viewer.locator("form[action$='/cancel']")).to_have_count(0)
    await shot(viewer, "run-read-only-dark")

    # The viewer's browser sends its session cookie, but a POST without the session's CSRF token
    # is refused before anything is done; with the token, the API's scope check refuses it.
    forged = await viewer.request.post(base_url(api) + f"/ui/runs/{execution_id}/cancel", form={"back": "/ui/"})
    assert forged.status == 403 and "CSRF" in (await forged.json())["detail"]
    csrf = await viewer.locator('meta[name="csrf-token"]').get_attribute("content")
    assert csrf
    scoped = await viewer.request.post(
        base_url(api) + f"/ui/runs/{execution_id}/cancel", form={"csrf": csrf}, max_redirects=0
    )
    assert scoped.status == 303
    await viewer.goto(base_url(api) + f"/ui/runs/{execution_id}")
    await expect(viewer.locator(".flash.error")).to_contain_text('this request needs "execute"')
    assert (await execution(api, execution_id))["status"] == "running"  # nothing was cancelled
    release.touch()


async def test_the_console_works_without_javascript_and_from_the_keyboard(
    api: TestClient[Any, Any],
    browser: Browser,
    triggers_service: Callable[..., TriggersService],
    worker: None,
    release: Path,
) -> None:
    event_id, execution_id = await held_run(api, triggers_service(), "Console No Script")

    # Scripts off: the pages are server-rendered, the actions plain forms that post and redirect.
    page = await sign_in(browser, api, "a", javascript=False)
    await page.goto(base_url(api) + "/ui/events")
    await expect(page.locator(f'#event-rows tr[data-event="{event_id}"]')).to_be_visible()
    await page.goto(base_url(api) + f"/ui/runs/{quote(execution_id, safe=':')}")
    await expect(page.locator('.graph .node[data-step="hold"]')).to_have_attribute("data-status", "running")
    await page.click("#cancel")
    await expect(page.locator(".flash.ok")).to_contain_text("Cancellation")

    async def status_after_reload() -> str:  # without scripts nothing updates in place
        await page.reload()
        return await page.locator("#run-status").inner_text()

    await eventually(status_after_reload, "the run to show cancelled", until=lambda s: s == "cancelled", timeout=20)

    # The keyboard alone: the first Tab reaches the skip link, then the navigation; Enter follows.
    keys = await sign_in(browser, api, "a")
    await keys.keyboard.press("Tab")
    await expect(keys.locator("a.skip")).to_be_focused()
    for _ in range(5):  # skip link, Hookline, Overview, Events, Definitions → Runs
        await keys.keyboard.press("Tab")
    await expect(keys.locator("header nav a", has_text="Runs")).to_be_focused()
    await keys.keyboard.press("Enter")
    await keys.wait_for_url(re.compile("/ui/runs$"))
    await expect(keys.locator("header nav a[aria-current=page]")).to_have_text("Runs")
