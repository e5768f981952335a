"""The http runner against a real aiohttp server on loopback: requests as configured, status
classification, and the SSRF guard (after DNS resolution, across redirects, with an allow-list)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from pytest_aiohttp import AiohttpServer
from temporalio.exceptions import ApplicationError
from yarl import URL

from schemas.agents import Agent
from tests.integration.runners.conftest import AgentEndpoints
from tests.integration.runners.harness import INPUT, Harness
from worker.runners import RunnerContext
from worker.runners.http import HttpRunner, HttpSettings

Endpoints = tuple[AgentEndpoints, URL]


def calling(url: URL | str, **options: Any) -> Agent:
    return Agent(name="endpoint", runner="http", timeout_s=10, options={"url": str(url), **options})


def harness_for(runner: HttpRunner) -> Harness:
    async def never(token: str) -> bool:
        return False

    return Harness("http", runner, lambda b, t: calling("http://unused"), never)


async def failure(harness: Harness, agent: Agent) -> ApplicationError:
    with pytest.raises(ApplicationError) as failed:
        await harness.run(agent)
    return failed.value


class FakeDns(AbstractResolver):
    """Names this test invents, resolved to the addresses it chooses."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {"hostname": host, "host": a, "port": port, "family": socket.AF_INET, "proto": 0, "flags": 0}
            for a in self.names[host]
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
async def guarded() -> Any:
    """A runner with the default guard: nothing on loopback is allow-listed."""
    runner = HttpRunner.create(RunnerContext(output_cap_bytes=4096))
    yield harness_for(runner)
    await runner.close()


async def test_method_headers_and_the_input_as_body_are_sent(http_harness: Harness, endpoints: Endpoints) -> None:
    server, url = endpoints
    agent = calling(url / "echo", method="PUT", headers={"X-Agent-Token": "t0ken"}, body="input")
    result = await http_harness.run(agent)
    assert result.data == INPUT
    sent = server.requests[-1]
    assert (sent.method, sent.headers["X-Agent-Token"], sent.content_type) == ("PUT", "t0ken", "application/json")


async def test_a_get_sends_no_body(http_harness: Harness, endpoints: Endpoints) -> None:
    server, url = endpoints
    await http_harness.run(calling(url / "echo", method="GET"))
    assert (server.requests[-1].method, server.requests[-1].content_length) == ("GET", None)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (502, True),
        (503, True),
        (429, True),
        (408, True),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
    ],
)
async def test_server_errors_are_retried_and_client_errors_are_not(
    http_harness: Harness, endpoints: Endpoints, status: int, retryable: bool
) -> None:
    error = await failure(http_harness, calling(endpoints[1] / "status" / str(status)))
    assert (error.type, not error.non_retryable) == ("HttpStatus", retryable)
    assert f"answered {status}" in error.message
    assert error.details[0]["output"] == f"status {status}"


async def test_a_refused_connection_is_retryable(http_harness: Harness) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    error = await failure(http_harness, calling(f"http://127.0.0.1:{port}/echo"))
    assert (error.type, error.non_retryable) == ("Connection", False)


async def test_redirects_are_followed_and_a_303_becomes_a_get(http_harness: Harness, endpoints: Endpoints) -> None:
    server, url = endpoints
    result = await http_harness.run(calling((url / "redirect").with_query(to="/echo")))
    assert result.exit_code == 0
    assert server.requests[-1].method == "GET"  # 302 after a POST


SECRET_HEADERS = {"Authorization": "Bearer s3cr3t", "Proxy-Authorization": "Basic s3cr3t", "Cookie": "session=s3cr3t"}


async def test_a_redirect_to_the_same_origin_keeps_the_headers(http_harness: Harness, endpoints: Endpoints) -> None:
    server, url = endpoints
    await http_harness.run(calling((url / "redirect").with_query(to="/echo"), headers=SECRET_HEADERS))
    assert {k: server.requests[-1].headers.get(k) for k in SECRET_HEADERS} == SECRET_HEADERS


async def test_a_redirect_to_another_origin_drops_the_credentials(
    http_harness: Harness, endpoints: Endpoints, aiohttp_server: AiohttpServer
) -> None:
    first, url = endpoints
    other = AgentEndpoints()
    elsewhere = (await aiohttp_server(other.app)).make_url("/echo")  # another port: another origin
    agent = calling((url / "redirect").with_query(to=str(elsewhere)), headers={**SECRET_HEADERS, "X-Trace": "1"})
    await http_harness.run(agent)
    assert first.requests == []
    sent = other.requests[-1].headers
    assert [k for k in SECRET_HEADERS if k in sent] == []
    assert sent["X-Trace"] == "1"


async def test_endless_redirects_stop(http_harness: Harness, endpoints: Endpoints) -> None:
    loop = endpoints[1] / "redirect"
    error = await failure(http_harness, calling(loop))
    assert (error.type, error.non_retryable) == ("TooManyRedirects", True)


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost", "[::ffff:127.0.0.1]"])
async def test_loopback_is_blocked_unless_allow_listed(guarded: Harness, endpoints: Endpoints, host: str) -> None:
    server, url = endpoints
    error = await failure(guarded, calling(f"http://{host}:{url.port}/echo"))
    assert (error.type, error.non_retryable) == ("Blocked", True)
    assert "loopback" in error.message and "worker.runner_settings.http.allow" in error.message
    assert server.requests == []


async def test_a_redirect_cannot_cross_into_a_blocked_address(endpoints: Endpoints) -> None:
    url = endpoints[1]
    runner = HttpRunner.create(RunnerContext(settings={"allow": ["127.0.0.1/32"]}))
    target = f"http://127.0.0.2:{url.port}/echo"
    error = await failure(harness_for(runner), calling((url / "redirect").with_query(to=target)))
    await runner.close()
    assert (error.type, error.non_retryable) == ("Blocked", True)
    assert "127.0.0.2" in error.message


async def test_a_redirect_to_another_scheme_is_refused(http_harness: Harness, endpoints: Endpoints) -> None:
    error = await failure(http_harness, calling((endpoints[1] / "redirect").with_query(to="file:///etc/passwd")))
    assert error.type == "Blocked"


async def test_names_are_checked_after_resolution_and_the_checked_address_is_used(endpoints: Endpoints) -> None:
    server, url = endpoints
    dns = FakeDns({"agent.internal": ["127.0.0.1"], "sneaky.example": ["127.0.0.1"]})
    allowed = HttpRunner(output_cap_bytes=4096, settings=HttpSettings(allow=["127.0.0.1/32"]), resolver=dns)
    blocked = HttpRunner(output_cap_bytes=4096, settings=HttpSettings(), resolver=dns)
    ok = await harness_for(allowed).run(calling(f"http://agent.internal:{url.port}/echo", body="input"))
    error = await failure(harness_for(blocked), calling(f"http://sneaky.example:{url.port}/echo"))
    await allowed.close()
    await blocked.close()
    assert ok.data == INPUT
    assert error.type == "Blocked" and "sneaky.example resolves to 127.0.0.1 (loopback)" in error.message
    assert len(server.requests) == 1


async def test_errors_do_not_show_the_query_or_credentials(http_harness: Harness, endpoints: Endpoints) -> None:
    url = (endpoints[1] / "status" / "404").with_query(token="s3cr3t").with_user("me").with_password("pw")
    error = await failure(http_harness, calling(url))
    assert "s3cr3t" not in error.message and "pw" not in error.message
