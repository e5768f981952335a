"""The console's overview and dead letters pages in a real browser (Debian's chromium, driven by
Playwright) on the real stack: the overview shows the numbers of what the test did and what needs
attention; a dead letter is replayed from its page, a dry run first, and its run starts; a
read-only token sees no replay button."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from schemas.agents import AgentCatalog
from tests.conftest import running
from tests.eventually import eventually
from tests.integration.console_fixtures import base_url, shot, sign_in
from tests.integration.test_api_events import alert, create, decided
from tests.integration.test_api_executions import executions_agents
from tests.integration.test_api_support import API, auth
from triggers.app import TriggersService

Api = TestClient[Any, Any]


@pytest.fixture
def agents() -> AgentCatalog:
    """The example agents and one that fails (`failer`)."""
    return executions_agents()


@pytest.fixture
def suffix() -> str:
    """Definition names of this test's own: runs of every test share the Temporal namespace."""
    return uuid.uuid4().hex[:6]


def failing(suffix: str) -> dict[str, Any]:
    return {
        "name": f"Overview Break {suffix}",
        "trigger": {"type": "webhook", "source": "alertmanager", "filter": ['severity="critical"']},
        "steps": [{"name": "break", "agent": "failer", "retries": 1}],
    }


def strict(suffix: str, *, fixed: bool = False) -> dict[str, Any]:
    """Needs the alert's job label as its input (a dead letter without one), until fixed."""
    required = {"required": ["service"], "properties": {"service": {"type": "string"}}}
    return {
        "name": f"Overview Strict {suffix}",
        "trigger": {
            "type": "webhook",
            "source": "alertmanager",
            "filter": ['dlq="yes"'],
            "input": {"service": "${{ labels.job }}"},
        },
        "inputs": {"type": "object", **({} if fixed else required)},
        "steps": [{"name": "fix", "agent": "remediator"}],
    }


async def post(api: Api, labels: dict[str, str], drop_job: bool = False) -> str:
    body = alert(uuid.uuid4().hex[:16])
    body["alerts"][0]["labels"].update(labels)
    if drop_job:
        del body["alerts"][0]["labels"]["job"]
    reply = await api.post("/hooks/alertmanager", json=body)
    assert reply.status == 202, await reply.text()
    [event_id] = (await reply.json())["event_ids"]
    return str(event_id)


async def overview(api: Api) -> Any:
    reply = await api.get(f"{API}/overview", headers=auth("a"))
    assert reply.status == 200, await reply.text()
    return await reply.json()


async def dead_letters(api: Api) -> list[Any]:
    reply = await api.get(f"{API}/dlq", headers=auth("a"))
    assert reply.status == 200, await reply.text()
    items: list[Any] = (await reply.json())["items"]
    return items


async def test_the_overview_shows_the_numbers_and_what_needs_attention(
    api: Api,
    console_page: Page,
    triggers_service: Callable[..., TriggersService],
    worker: None,
    suffix: str,
) -> None:
    page = console_page
    await create(api, "a", failing(suffix))
    await create(api, "a", strict(suffix))
    service = triggers_service()
    async with running(service.run, service.stop):
        critical = await post(api, {"severity": "critical"})
        await decided(api, critical)
        warning = await post(api, {"severity": "warning", "dlq": "yes"}, drop_job=True)
        await decided(api, warning)
        await eventually(
            lambda: overview(api),
            "the failed run and the dead letter",
            until=lambda o: o["runs"]["failed_last_hour"] >= 1 and o["dlq"]["size"] == 1,
            timeout=60,
            interval=0.5,
        )
    # The triggers have stopped: these two wait on the events topic.
    for _ in range(2):
        await post(api, {"severity": "warning"})

    # Runs and approvals of team-a from other tests of the session (still running, with `-n N`)
    # are in the namespace too: the page shows what the API counts, read while neither moved.
    statuses = ("failed", "succeeded", "running")

    def numbers(answer: Any) -> dict[str, str]:
        return {
            **{status: str(answer["runs"]["by_status"][status]) for status in statuses},
            "approvals": str(answer["approvals"]["runs"]),
            "pools": f"{answer['runners']['with_pollers']}/{answer['runners']['total']}",
            "failures": str(answer["runs"]["failed_last_hour"]),
        }

    async def shown() -> dict[str, str]:
        texts = {s: page.locator(f'#card-runs .count[data-status="{s}"]').inner_text() for s in statuses}
        return {
            **{status: await text for status, text in texts.items()},
            "approvals": await page.locator("#approvals-waiting").inner_text(),
            "pools": await page.locator("#pools-polled").inner_text(),
            "failures": await page.locator('.attention li[data-attention="failed_runs"]').get_attribute("data-count")
            or "",
        }

    async def page_and_api() -> tuple[Any, dict[str, str], Any]:
        before = await overview(api)
        await page.goto(base_url(api) + "/ui/")
        return before, await shown(), await overview(api)

    answer, _, _ = await eventually(
        page_and_api,
        "the overview page to show the API's numbers",
        until=lambda seen: numbers(seen[0]) == seen[1] == numbers(seen[2]),
        timeout=30,
        interval=0.5,
    )
    await expect(page.locator("#events-5min")).to_have_text("2")  # decided: the two before the stop
    await expect(page.locator("#dlq-size")).to_have_text("1")
    await expect(page.locator("#consumer-lag")).to_have_text("2")
    failed = page.locator('.attention li[data-attention="failed_runs"]')
    failures = answer["runs"]["failed_last_hour"]
    await expect(failed).to_contain_text(f"{failures} run{'' if failures == 1 else 's'} failed in the last hour")
    await expect(page.locator('.attention li[data-attention="dlq_growth"]')).to_have_attribute("data-count", "1")
    await expect(page.locator(".attention li").first).to_have_attribute("data-attention", "failed_runs")
    await shot(page, "overview")
    await failed.locator("a").click()
    await page.wait_for_url(re.compile(r"/ui/runs\?status=failed&since="))
    await expect(page.locator("#runs tbody tr").first).to_be_visible()

    # The runners page: each pool's agents, and how long ago it was polled.
    await page.goto(base_url(api) + "/ui/runners")
    shell = page.locator('#pools tr[data-pool="shell"]')
    await expect(shell.locator(".agents")).to_contain_text("failer")
    await expect(shell.locator(".last-poll")).to_have_text(re.compile(r"^\d+ s ago$"))

    # The events page narrows the list by an alert label.
    await page.goto(base_url(api) + "/ui/events")
    await page.fill("input[name=label]", "severity=critical")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_url(re.compile(r"label=severity%3Dcritical"))
    await expect(page.locator(f'#event-rows tr[data-event="{critical}"]')).to_be_visible()
    await expect(page.locator("#event-rows tr")).to_have_count(1)
    assert warning not in await page.locator("#event-rows").inner_html()


async def test_a_dead_letter_is_replayed_from_its_page_after_a_dry_run(
    api: Api,
    console_page: Page,
    browser: Browser,
    triggers_service: Callable[..., TriggersService],
    suffix: str,
) -> None:
    page = console_page
    definition = strict(suffix)
    await create(api, "a", definition)
    definition_id = f"team-a~overview-strict-{suffix}"
    service = triggers_service()
    async with running(service.run, service.stop):
        event_id = await post(api, {"dlq": "yes"}, drop_job=True)
        [letter] = await eventually(lambda: dead_letters(api), "the dead letter", timeout=30)
        reply = await api.put(f"{API}/workflows/{definition_id}", json=strict(suffix, fixed=True), headers=auth("a"))
        assert reply.status == 200, await reply.text()

        # A read-only token sees the dead letter, and nothing to replay it with.
        viewer = await sign_in(browser, api, "a-read")
        await viewer.goto(base_url(api) + "/ui/dlq")
        await expect(viewer.locator(f'#dead-letters tr[data-letter="{letter["id"]}"]')).to_be_visible()
        await expect(viewer.locator("#replay-selected")).to_have_count(0)
        await expect(viewer.locator("#dead-letters input[type=checkbox]")).to_have_count(0)
        await expect(viewer.locator("form[action='/ui/dlq/replay']")).to_have_count(0)

        await page.goto(base_url(api) + f"/ui/dlq?definition={definition_id}")
        row = page.locator(f'#dead-letters tr[data-letter="{letter["id"]}"]')
        await expect(row.locator(".reason")).to_contain_text("service")
        await expect(row.locator(".times")).to_have_text("1")
        await expect(row).to_contain_text(event_id)
        await page.click("#replay-selected")  # nothing selected: nothing asked of the API
        await expect(page.locator(".flash.error")).to_have_text("Select the dead letters to replay first.")

        # By the page's filter: the dry run names what the filter selects now; cancelled.
        await page.click("#replay-filter")
        await expect(page.locator("#dry-run-count")).to_have_text("1")
        await expect(page.locator("#replay-ids")).to_have_text(letter["id"])
        await expect(page.locator("dl.facts")).to_contain_text(definition_id)
        await page.click("text=Cancel")
        await page.wait_for_url(re.compile(r"/ui/dlq\?definition="))

        await row.locator("input[type=checkbox]").check()
        await shot(page, "dlq")
        await page.click("#replay-selected")

        # The dry run: how many and which; nothing replayed yet.
        await expect(page.locator("#dry-run-count")).to_have_text("1")
        await expect(page.locator("#replay-ids")).to_have_text(letter["id"])
        await shot(page, "dlq-confirm")

        async def replays() -> Any:
            return (await (await api.get(f"{API}/audit?action=dlq.replay", headers=auth("a"))).json())["items"]

        dry_runs = await eventually(replays, "the dry runs in the audit log", until=lambda items: len(items) == 2)
        assert {entry["actor"] for entry in dry_runs} == {"team-a-ci"}  # audited, like any replay

        await page.click("#replay-confirm")
        await page.wait_for_url(re.compile(r"/ui/dlq\?definition="))
        await expect(page.locator(".flash.ok")).to_have_text(f"Replayed 1 dead letter: {letter['id']}.")

        async def strict_started() -> Any:
            rows = (await decided(api, event_id))["decisions"]
            return next((r for r in rows if r["definition_id"] == definition_id and r["outcome"] == "started"), None)

        row_started = await eventually(strict_started, "the replayed event's run", timeout=30)
        assert row_started["execution_id"]
