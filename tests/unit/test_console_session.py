"""The console's sign-in, session cookie and CSRF check, with the API's dependencies down (the
pages then show the API's 503, which is enough to see who gets in and what is refused). The
pages with data are tested against the real stack in a browser (tests/integration/test_console*)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from pytest_aiohttp import AiohttpClient
from yarl import URL

from gateway.app import create_app
from gateway.settings import ApiToken
from gateway.ui.console import local_path
from schemas.agents import AgentCatalog
from tests.unit.test_api_app import settings

WRITER = ApiToken(name="writer", token=SecretStr("console-writer-secret"), team="team-a", scopes=["read", "execute"])
READER = ApiToken(name="reader", token=SecretStr("console-reader-secret"), team="team-a", scopes=["read"])


@pytest.fixture
async def console(aiohttp_client: AiohttpClient) -> TestClient[Any, Any]:
    return await aiohttp_client(create_app(settings(WRITER, READER, max_body_bytes=65536), agents=AgentCatalog()))


async def sign_in(client: TestClient[Any, Any], token: str, next_path: str = "/ui/runners") -> Any:
    return await client.post("/ui/login", data={"token": token, "next": next_path}, allow_redirects=False)


async def test_a_page_without_a_session_sends_the_browser_to_sign_in_and_back(console: TestClient[Any, Any]) -> None:
    response = await console.get("/ui/runs?status=failed", allow_redirects=False)
    assert response.status == 302
    location = URL(response.headers["Location"])
    assert (location.path, location.query["next"]) == ("/ui/login", "/ui/runs?status=failed")


async def test_a_wrong_token_is_refused_and_sets_no_cookie(console: TestClient[Any, Any]) -> None:
    response = await sign_in(console, "not-a-configured-token")
    assert response.status == 401
    assert "not valid" in await response.text()
    assert "hookline_session" not in response.cookies


async def test_signing_in_sets_an_httponly_strict_cookie_and_redirects_to_the_page_asked_for(
    console: TestClient[Any, Any],
) -> None:
    response = await sign_in(console, "console-writer-secret", "/ui/runners")
    assert (response.status, response.headers["Location"]) == (303, "/ui/runners")
    cookie = response.cookies["hookline_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/ui"
    assert "console-writer-secret" not in cookie.value  # the token itself is never in the cookie
    page = await console.get("/ui/runners")
    # Signed in: the page asks the API, which is unavailable here (Temporal is down): its 503 shows.
    assert page.status == 503
    text = await page.text()
    assert "writer · team team-a" in text and "retry shortly" in text


async def test_sign_in_never_redirects_to_another_site(console: TestClient[Any, Any]) -> None:
    for target in ("https://evil.example/", "//evil.example/ui", "/ui\\@evil.example", "/api/v1/workflows"):
        response = await sign_in(console, "console-reader-secret", target)
        assert response.headers["Location"] == "/ui/", target
    assert local_path("/ui/runs?status=failed") == "/ui/runs?status=failed"


async def test_a_forged_or_tampered_cookie_is_no_session(console: TestClient[Any, Any]) -> None:
    response = await sign_in(console, "console-reader-secret")
    value = response.cookies["hookline_session"].value
    payload, signature = value.split(".")
    # The reader's signed payload with the writer's name in it: the signature no longer fits.
    forged = payload[:-4] + ("AAAA" if not payload.endswith("AAAA") else "BBBB")
    console.session.cookie_jar.clear()
    # The signature's first character changed: its last one carries padding bits too, so an edit
    # there can decode to the same bytes (one run in about a thousand did).
    tampered = ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (f"{forged}.{signature}", f"{payload}.{tampered}", "garbage", f"{payload}.{signature}.x"):
        console.session.cookie_jar.update_cookies({"hookline_session": bad})
        page = await console.get("/ui/runners", allow_redirects=False)
        assert page.status == 302, bad


async def test_a_post_without_the_sessions_csrf_token_is_refused(console: TestClient[Any, Any]) -> None:
    await sign_in(console, "console-writer-secret")
    refused = await console.post("/ui/runs/some-run/cancel", data={}, allow_redirects=False)
    assert refused.status == 403
    assert "CSRF" in (await refused.json())["detail"]
    wrong = await console.post("/ui/runs/some-run/cancel", data={"csrf": "x" * 43}, allow_redirects=False)
    assert wrong.status == 403


async def test_a_post_with_the_csrf_token_reaches_the_api_and_shows_its_answer(console: TestClient[Any, Any]) -> None:
    await sign_in(console, "console-writer-secret")
    page = await (await console.get("/ui/login?next=/ui/runners")).text()  # signed in: redirected to the page
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert csrf is not None and csrf.group(1)
    done = await console.post(
        "/ui/runs/some-run/cancel", data={"csrf": csrf.group(1), "back": "/ui/runs"}, allow_redirects=False
    )
    assert (done.status, done.headers["Location"]) == (303, "/ui/runs")
    # The API's answer (Temporal unavailable) comes back as the message on the next page.
    assert "503" in done.cookies["hookline_flash"].value


async def test_a_post_without_a_session_is_refused(console: TestClient[Any, Any]) -> None:
    refused = await console.post("/ui/runs/some-run/cancel", data={"csrf": "x"}, allow_redirects=False)
    assert refused.status == 403


async def test_pages_may_not_be_framed_or_cached(console: TestClient[Any, Any]) -> None:
    page = await console.get("/ui/login")
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"


async def test_the_vendored_scripts_are_served_from_the_package(console: TestClient[Any, Any]) -> None:
    for name in ("htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.js", "console.js", "console.css"):
        assert (await console.get(f"/ui/static/{name}")).status == 200, name


async def test_a_pages_own_refresh_after_the_session_ended_sends_the_whole_page_to_sign_in(
    console: TestClient[Any, Any],
) -> None:
    refresh = await console.get("/ui/", headers={"HX-Request": "true"}, allow_redirects=False)
    assert refresh.status == 401
    target = URL(refresh.headers["HX-Redirect"])
    assert (target.path, target.query["next"]) == ("/ui/login", "/ui/")
