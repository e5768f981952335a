"""The console's definitions in a real browser, on the real stack: a definition's page, an edit
with an error shown at its line and then saved as the next version, a concurrent edit refused
with a clear message, the diff of two versions, a run started from the form made of the
definition's `inputs` schema, and a read-only token that sees none of the buttons."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Browser, Page, expect

from schemas.agents import AgentCatalog
from tests.conftest import EXAMPLES, running
from tests.eventually import eventually
from tests.integration.conftest import held_agent
from tests.integration.console_fixtures import base_url, shot, sign_in
from tests.integration.test_api_support import API, auth
from tests.notifications import notification
from triggers.app import TriggersService

INPUTS = {
    "type": "object",
    "required": ["version"],
    "properties": {
        "version": {"type": "string", "pattern": "^v[0-9]", "description": "The release tag, v1.2.3"},
        "environment": {"enum": ["staging", "production"], "default": "staging"},
        "replicas": {"type": "integer", "minimum": 1, "default": 2},
        "dry_run": {"type": "boolean", "default": True},
        "labels": {"type": "object"},
    },
}


@pytest.fixture
def agents(release: Path) -> AgentCatalog:
    """The example agents, and `held`, whose run lasts until the test creates `release`."""
    base = AgentCatalog.load(EXAMPLES / "agents.yaml")
    return AgentCatalog(agents={**base.agents, "held": held_agent(release)})


#: True only for the input the start test types into the form, each value with its JSON type.
TYPED_AS_IN_THE_FORM = (
    "input.version == 'v1.2.3' && input.environment == 'production' && input.replicas == `3`"
    ' && input.dry_run == `false` && input.labels == `{"team": "a"}`'
)


def deploy(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "Deploy from the console",
        "inputs": INPUTS,
        "steps": [{"name": "test", "agent": "test-runner"}, {"name": "build", "agent": "builder"}],
        **extra,
    }


async def created(api: TestClient[Any, Any], body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(f"{API}/workflows", json=body, headers=auth("a"))
    assert response.status == 201, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def replaced(api: TestClient[Any, Any], definition_id: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.put(f"{API}/workflows/{definition_id}", json=body, headers=auth("a"))
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


def unique(prefix: str) -> str:
    return f"{prefix} {uuid4().hex[:8]}"


async def open_definition(page: Page, api: TestClient[Any, Any], definition_id: str) -> None:
    await page.goto(f"{base_url(api)}/ui/definitions/{definition_id}")
    await expect(page.locator("h1")).to_contain_text("v")


async def test_an_edit_with_an_error_shows_it_at_its_line_and_the_fix_saves_the_next_version(
    api: TestClient[Any, Any],
    console_page: Page,
) -> None:
    page = console_page
    definition = await created(api, deploy(unique("Console edit")))
    await open_definition(page, api, definition["id"])
    await expect(page.locator("#yaml")).to_contain_text("agent: builder")
    await expect(page.locator("#triggers")).to_contain_text("manual")
    await shot(page, "definition")

    await page.click("#edit")
    text = await page.input_value("#yaml")
    assert "agent: builder" in text
    broken = text.replace("agent: builder", "agent: no-such-agent")
    wrong_line = broken.splitlines().index("  agent: no-such-agent") + 1
    await page.fill("#yaml", broken)
    await page.click("#save")

    marked = page.locator(f"tr#L{wrong_line}.line-error")
    await expect(marked).to_have_count(1)
    message = page.locator(f'tr.line-error-message[data-line="{wrong_line}"]')
    await expect(message).to_contain_text("steps[1].agent")
    await expect(message).to_contain_text("no-such-agent")
    await expect(page.locator(f'#error-list a[href="#L{wrong_line}"]')).to_have_count(1)
    await expect(page.locator("tr.line-error")).to_have_count(1)  # only that line
    assert await page.input_value("#yaml") == broken  # the text is kept, to be fixed
    await shot(page, "definition-editor-error")

    await page.fill("#yaml", broken.replace("no-such-agent", "deployer"))
    await page.click("#validate")
    await expect(page.locator("#valid")).to_contain_text(definition["id"])
    await page.click("#save")
    await page.wait_for_url(re.compile(re.escape(f"/ui/definitions/{definition['id']}") + "$"))
    await expect(page.locator(".flash.ok")).to_contain_text("Saved version 2")
    await expect(page.locator("h1 .badge").first).to_have_text("v2")
    stored = await (await api.get(f"{API}/workflows/{definition['id']}", headers=auth("a"))).json()
    assert (stored["version"], stored["definition"]["steps"][1]["agent"]) == (2, "deployer")


async def test_a_save_over_a_version_saved_meanwhile_is_refused_with_what_to_do(
    api: TestClient[Any, Any],
    console_page: Page,
) -> None:
    page = console_page
    body = deploy(unique("Console race"))
    definition = await created(api, body)
    await page.goto(f"{base_url(api)}/ui/definitions/{definition['id']}/edit")
    mine = (await page.input_value("#yaml")).replace("agent: builder", "agent: deployer")
    await replaced(api, definition["id"], {**body, "description": "someone else's change"})

    await page.fill("#yaml", mine)
    await page.click("#save")
    stale = page.locator("#stale")
    await expect(stale).to_contain_text("you edited version 1, and version 2 has been saved since")
    await expect(stale.locator("a", has_text="See what changed")).to_have_attribute("href", re.compile("a=1&b=2"))
    assert await page.input_value("#yaml") == mine
    stored = await (await api.get(f"{API}/workflows/{definition['id']}", headers=auth("a"))).json()
    assert (stored["version"], stored["description"]) == (2, "someone else's change")


async def test_the_diff_of_two_versions_colours_the_removed_and_added_lines(
    api: TestClient[Any, Any],
    console_page: Page,
) -> None:
    page = console_page
    body = deploy(unique("Console diff"))
    definition = await created(api, body)
    await replaced(api, definition["id"], {**body, "description": "Deploy, reviewed"})
    await replaced(api, definition["id"], {**body, "description": "Deploy, reviewed twice", "timeout": "10m"})
    await open_definition(page, api, definition["id"])
    await expect(page.locator("#versions")).to_contain_text("v3 · v2 · v1")

    await page.select_option("#diff-form select[name=a]", "2")
    await page.select_option("#diff-form select[name=b]", "3")
    await page.click("#diff-form button")
    await page.wait_for_url(re.compile(r"/diff\?a=2&b=3"))
    await expect(page.locator("#diff tr.del")).to_have_count(1)
    await expect(page.locator("#diff tr.del")).to_contain_text("description: Deploy, reviewed")
    await expect(page.locator("#diff tr.add")).to_have_count(2)
    await expect(page.locator("#diff tr.add").first).to_contain_text("description: Deploy, reviewed twice")
    await expect(page.locator("#diff tr.add").nth(1)).to_contain_text("timeout: 10m")
    await shot(page, "definition-diff")

    await page.select_option("select[name=view]", "split")
    await page.click("form.filters button")
    await expect(page.locator("#diff.split tr.change td.del")).to_have_text("description: Deploy, reviewed")
    await expect(page.locator("#diff.split tr.change td.add")).to_have_text("description: Deploy, reviewed twice")


async def test_a_run_starts_from_the_form_made_of_the_inputs_schema(
    api: TestClient[Any, Any],
    console_page: Page,
    worker: None,
) -> None:
    page = console_page
    body = deploy(unique("Console start"))
    body["steps"].append({"name": "check", "agent": "deployer", "when": TYPED_AS_IN_THE_FORM})
    definition = await created(api, body)
    await open_definition(page, api, definition["id"])
    await page.click("#start")

    form = page.locator("#start-form")
    version = form.locator('input[name="input.version"]')
    await expect(version).to_have_attribute("required", "")
    await expect(form.locator('[data-field="input.version"] .help')).to_have_text("The release tag, v1.2.3")
    await expect(form.locator('select[name="input.environment"]')).to_have_value('"staging"')
    await expect(form.locator('input[name="input.replicas"]')).to_have_value("2")
    await expect(form.locator('input[name="input.dry_run"]')).to_be_checked()
    await expect(form.locator('textarea[name="input.labels"]')).to_have_count(1)

    await version.fill("1.2.3")  # the API refuses it: the pattern wants a leading v
    await page.click("#start-run")
    await expect(page.locator('[data-field="input.version"] .field-message')).to_contain_text("does not match")
    await expect(page.locator('input[name="input.version"]')).to_have_value("1.2.3")
    await shot(page, "definition-start-error")

    await page.fill('input[name="input.version"]', "v1.2.3")
    await page.select_option('select[name="input.environment"]', '"production"')
    await page.fill('input[name="input.replicas"]', "3")
    await page.uncheck('input[name="input.dry_run"]')
    await page.fill('textarea[name="input.labels"]', '{"team": "a"}')
    await page.click("#start-run")
    await page.wait_for_url(re.compile(r"/ui/runs/[^/]+$"))
    execution_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator(".flash.ok")).to_contain_text("Started run")

    async def run() -> dict[str, Any]:
        answer: dict[str, Any] = await (await api.get(f"{API}/executions/{execution_id}", headers=auth("a"))).json()
        return answer

    done = await eventually(run, "the run to finish", until=lambda r: r["status"] != "running", timeout=60)
    assert (done["definition_id"], done["status"]) == (definition["id"], "succeeded")
    # The step that runs only when the run got every value as typed in the form, with its type.
    assert done["steps"]["check"]["status"] == "succeeded"


async def test_a_read_only_token_sees_no_edit_delete_or_start_buttons(
    api: TestClient[Any, Any],
    browser: Browser,
) -> None:
    definition = await created(api, deploy(unique("Console read-only")))
    page = await sign_in(browser, api, "a-read")
    await page.goto(f"{base_url(api)}/ui/definitions")
    await expect(page.locator(f'tr[data-definition="{definition["id"]}"]')).to_have_count(1)
    await expect(page.locator("#new-definition")).to_have_count(0)
    await open_definition(page, api, definition["id"])
    await expect(page.locator("#yaml")).to_contain_text("agent: builder")
    for button in ("#edit", "#delete", "#start"):
        await expect(page.locator(button)).to_have_count(0)
    refused = await page.goto(f"{base_url(api)}/ui/definitions/{definition['id']}/edit")
    assert refused is not None and refused.status == 403


@pytest.mark.usefixtures("worker")
async def test_a_flow_controlled_definition_shows_what_runs_and_waits_in_its_lanes(
    api: TestClient[Any, Any],
    console_page: Page,
    triggers_service: Callable[..., TriggersService],
    release: Path,
) -> None:
    page = console_page
    body = {
        "name": unique("Console lanes"),
        "trigger": {"type": "webhook", "source": "alertmanager", "concurrency": {"key": "${{ labels.service }}"}},
        "steps": [{"name": "fix", "agent": "held"}],
    }
    definition = await created(api, body)
    await open_definition(page, api, definition["id"])
    await expect(page.locator("#triggers")).to_contain_text("concurrency")
    lanes = page.locator("#lanes")
    service = triggers_service()
    async with running(service.run, service.stop):
        for _ in range(3):
            posted = notification(1, "console-lanes")
            posted["alerts"][0]["labels"]["service"] = "db"
            assert (await api.post("/hooks/alertmanager", json=posted)).status == 202

        lane = lanes.locator('tr[data-lane="db"]')

        async def waiting() -> str | None:
            await page.reload()
            return await lane.locator("td.queued").get_attribute("data-count") if await lane.count() else None

        await eventually(waiting, "the lane of db with two events waiting", until=lambda n: n == "2", timeout=30)
        await expect(lane.locator("td.mode")).to_have_text("queue")
        await expect(lane.locator("td.limit")).to_have_text("1")
        await expect(lane.locator("td.running")).to_have_attribute("data-count", "1")
        await expect(lane.locator('td.running a[href^="/ui/runs/"]')).to_have_count(1)
        await shot(page, "definition-lanes")
        release.touch()


async def test_a_definition_is_deleted_after_a_confirm_step_and_its_versions_stay_readable(
    api: TestClient[Any, Any],
    console_page: Page,
) -> None:
    page = console_page
    definition = await created(api, deploy(unique("Console delete")))
    await open_definition(page, api, definition["id"])
    await page.click("#delete")
    await expect(page.locator("h1")).to_contain_text("Delete")
    still = await api.get(f"{API}/workflows/{definition['id']}", headers=auth("a"))
    assert still.status == 200  # nothing happens before the confirmation
    await page.click("#confirm-delete")
    await page.wait_for_url(re.compile(r"/ui/definitions$"))
    await expect(page.locator(".flash.ok")).to_contain_text(f"Deleted {definition['id']}")
    await expect(page.locator(f'tr[data-definition="{definition["id"]}"]')).to_have_count(0)
    gone = await api.get(f"{API}/workflows/{definition['id']}", headers=auth("a"))
    assert gone.status == 404
    await page.goto(f"{base_url(api)}/ui/definitions/{definition['id']}?version=1")
    await expect(page.locator("#yaml")).to_contain_text("agent: builder")
    await expect(page.locator("#deleted")).to_have_count(1)
    for button in ("#edit", "#delete", "#start"):  # nothing to edit or start any more
        await expect(page.locator(button)).to_have_count(0)
