"""The console's overview and dead letters pages with the API's dependencies down: the overview
still renders, each part it could not read marked with why; the dead letters page shows the
API's 503; a replay without the session's CSRF token is refused. The pages with data, and the
replay itself, are tested in a browser on the real stack (tests/integration/test_console_overview.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from gateway.app import create_app
from gateway.ui.views.overview import console_link
from schemas.agents import AgentCatalog
from tests.unit.test_console_session import READER, WRITER, settings, sign_in


@pytest.fixture
async def console(aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings(WRITER, READER), agents=AgentCatalog()))


@pytest.mark.parametrize(
    ("api_link", "page"),
    [
        (
            "/api/v1/executions?status=failed&since=2026-11-29T10:00:00+00:00",
            "/ui/runs?status=failed&since=2026-11-29T10:00:00+00:00",
        ),
        ("/api/v1/dlq", "/ui/dlq"),
        ("/api/v1/runners", "/ui/runners"),
        ("/api/v1/approvals", "/ui/approvals"),
        ("/api/v1/somewhere-else", "/ui/"),
        ("", "/ui/"),
    ],
)
def test_an_attention_link_of_the_api_opens_the_console_page_of_that_listing(api_link: str, page: str) -> None:
    assert console_link(api_link) == page


async def test_the_overview_renders_with_each_part_it_could_not_read_marked(console: TestClient[Any, Any]) -> None:
    await sign_in(console, "console-reader-secret", "/ui/")
    response = await console.get("/ui/")
    assert response.status == 200
    text = await response.text()
    for part in ("events", "runs", "dlq", "consumer lag", "runners", "approvals"):
        assert f'<li class="problem">{part}: ' in text, part
    assert 'id="events-per-s"><span class="problem"' in text


async def test_the_dead_letters_page_shows_why_the_api_cannot_answer(console: TestClient[Any, Any]) -> None:
    await sign_in(console, "console-writer-secret", "/ui/dlq")
    response = await console.get("/ui/dlq?reason=timeout")
    assert response.status == 503
    assert "DLQ could not be read" in await response.text()


async def test_a_replay_without_the_csrf_token_is_refused(console: TestClient[Any, Any]) -> None:
    await sign_in(console, "console-writer-secret", "/ui/dlq")
    for path in ("/ui/dlq/replay", "/ui/dlq/replay/confirm"):
        response = await console.post(path, data={"id": "abc"}, allow_redirects=False)
        assert response.status == 403, path
