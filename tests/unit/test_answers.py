"""`gateway.answers.WholeAnswer`: the webhooks' 202 written as one buffer. It must put on the wire
the bytes aiohttp writes for the same `web.Response`, keep or close the connection as aiohttp
would, and take its own path only where no route resolved the request (served past aiohttp's
dispatch, where no app signal applies)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import BaseTestServer, RawTestServer, TestServer, make_mocked_request
from pytest_aiohttp import AiohttpServer

from gateway import answers
from gateway.answers import WholeAnswer
from gateway.app import dispatch_hooks_directly
from gateway.errors import UNAVAILABLE_COUNTER, problem_middleware
from gateway.ingress import accepted, accepted_one
from gateway.metrics import GatewayMetrics

BODY = b'{"accepted":1,"event_ids":["e1"],"links":{"e1":"/api/v1/events/e1"}}'
DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Served:
    """The answers handed to aiohttp, to tell which way each was written."""

    def __init__(self) -> None:
        self.answers: list[web.StreamResponse] = []

    async def whole(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        answer = WholeAnswer(BODY)
        self.answers.append(answer)
        return answer

    async def plain(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(body=BODY, status=202, content_type="application/json")


async def server_of(
    aiohttp_server: AiohttpServer, served: Served, *, signal: bool = False, hooks: dict[str, Handler] | None = None
) -> TestServer:
    app = web.Application(middlewares=[problem_middleware])
    app[UNAVAILABLE_COUNTER] = GatewayMetrics().unavailable
    app.router.add_post("/routed/whole", served.whole)
    app.router.add_post("/routed/plain", served.plain)
    if signal:

        async def stamp(request: web.Request, response: web.StreamResponse) -> None:
            response.headers["X-Stamped"] = "yes"

        app.on_response_prepare.append(stamp)
    dispatch_hooks_directly(app, {"/hooks/whole": served.whole, "/hooks/plain": served.plain, **(hooks or {})})
    return await aiohttp_server(app)


def request(path: str, version: str = "1.1", connection: str | None = None, body: bytes = b"{}") -> bytes:
    lines = [
        f"POST {path} HTTP/{version}",
        "Host: test",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if connection is not None:
        lines.append(f"Connection: {connection}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(server: BaseTestServer, raw: bytes) -> bytes:
    """What the server writes back for `raw`, up to its closing the connection."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)  # to EOF: the server closes
    finally:
        writer.close()


#: Conversations that end with the server closing the connection, each as its requests.
CONVERSATIONS = {
    "HTTP/1.1 keep-alive, pipelined, then close": [("1.1", None), ("1.1", None), ("1.1", "close")],
    "HTTP/1.1 close": [("1.1", "close")],
    "HTTP/1.0": [("1.0", None)],
    "HTTP/1.0 keep-alive, then HTTP/1.0": [("1.0", "keep-alive"), ("1.0", None)],
}


@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
async def test_the_bytes_on_the_wire_are_aiohttps(aiohttp_server: AiohttpServer, conversation: str) -> None:
    served = Served()
    server = await server_of(aiohttp_server, served)
    wire = {}
    for kind in ("whole", "plain"):
        raw = b"".join(request(f"/hooks/{kind}", v, c) for v, c in CONVERSATIONS[conversation])
        wire[kind] = DATE.sub(b"\r\nDate: -\r\n", await exchange(server, raw))
    assert wire["whole"] == wire["plain"]
    assert wire["whole"].count(b" 202 Accepted\r\n") == len(CONVERSATIONS[conversation])
    assert wire["whole"].count(BODY) == len(CONVERSATIONS[conversation])
    # Every one of them written whole, not by aiohttp's path.
    assert [a._head is not None for a in served.answers] == [True] * len(CONVERSATIONS[conversation])


async def test_a_routed_request_is_answered_by_aiohttps_path_with_the_apps_signals(
    aiohttp_server: AiohttpServer,
) -> None:
    served = Served()
    server = await server_of(aiohttp_server, served, signal=True)
    whole = await exchange(server, request("/routed/whole", connection="close"))
    plain = await exchange(server, request("/routed/plain", connection="close"))
    assert DATE.sub(b"-", whole) == DATE.sub(b"-", plain)
    assert b"\r\nX-Stamped: yes\r\n" in whole
    assert served.answers[0]._head is None


def add_header(answer: WholeAnswer) -> None:
    answer.headers["Retry-After"] = "1"


def set_content_type(answer: WholeAnswer) -> None:
    answer.content_type = "text/plain"


def set_body(answer: WholeAnswer) -> None:
    answer.body = b"other"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (add_header, b"\r\nRetry-After: 1\r\n"),
        (set_content_type, b"\r\nContent-Type: text/plain\r\n"),
        (set_body, b"\r\nContent-Length: 5\r\n"),
    ],
)
async def test_an_answer_changed_after_it_was_made_is_written_by_aiohttp(
    aiohttp_server: AiohttpServer, change: Callable[[WholeAnswer], None], expected: bytes
) -> None:
    answers = []

    async def changed(request: web.Request) -> web.StreamResponse:
        answer = WholeAnswer(BODY)
        change(answer)
        answers.append(answer)
        return answer

    server = await server_of(aiohttp_server, Served(), hooks={"/hooks/h": changed})
    wire = await exchange(server, request("/hooks/h", connection="close"))
    assert expected in wire
    assert wire.endswith(b"\r\n\r\n" + answers[0].body)  # type: ignore[operator]
    assert answers[0]._head is None


async def test_the_answer_reads_as_a_response(aiohttp_server: AiohttpServer) -> None:
    served = Served()
    server = await server_of(aiohttp_server, served)
    await exchange(server, request("/hooks/whole", connection="close"))
    (answer,) = served.answers
    assert (answer.status, answer.reason, answer.content_type, answer.body) == (
        202,
        "Accepted",
        "application/json",
        BODY,
    )
    assert answer.keep_alive is False
    assert answer.body_length > len(BODY)  # what was written, the head with it, as aiohttp counts
    assert answer.prepared


async def test_a_head_is_made_again_for_a_new_second_and_for_another_length(
    aiohttp_server: AiohttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Heads are kept for the second they were made in, by kind: an answer in the next second
    carries that second's Date, and one of another length its own Content-Length."""
    date = ["Mon, 01 Jan 2001 00:00:00 GMT"]
    monkeypatch.setattr(answers, "rfc822_formatted_time", lambda: date[0])

    async def echo(request: web.Request) -> web.StreamResponse:
        return WholeAnswer(await request.read())

    server = await server_of(aiohttp_server, Served(), hooks={"/hooks/echo": echo})
    seen = []
    for second, body in [(0, b'{"a":1}'), (0, b'{"ab":1}'), (0, b'{"a":1}'), (1, b'{"a":1}'), (1, b'{"abc":1}')]:
        date[0] = f"Mon, 01 Jan 2001 00:00:0{second} GMT"
        wire = await exchange(server, request("/hooks/echo", connection="close", body=body))
        assert wire.endswith(b"\r\n\r\n" + body)
        seen.append((re.search(rb"\r\nDate: ([^\r]*)\r\n", wire)[1], re.search(rb"Content-Length: (\d+)", wire)[1]))  # type: ignore[index]
    assert seen == [
        (b"Mon, 01 Jan 2001 00:00:00 GMT", b"7"),
        (b"Mon, 01 Jan 2001 00:00:00 GMT", b"8"),
        (b"Mon, 01 Jan 2001 00:00:00 GMT", b"7"),
        (b"Mon, 01 Jan 2001 00:00:01 GMT", b"7"),
        (b"Mon, 01 Jan 2001 00:00:01 GMT", b"9"),
    ]


async def test_the_heads_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies of ever new lengths within one second do not grow the heads kept without bound."""
    monkeypatch.setattr(answers, "_heads", {})
    sizes = []
    for length in range(3 * answers._HEADS_KEPT):
        request = make_mocked_request("POST", "/hooks/x")
        request._match_info = None  # as a request served past aiohttp's dispatch has it
        answer = WholeAnswer(b"x" * length)
        await answer.prepare(request)
        assert answer._head is not None and answer._head.endswith(b"\r\n\r\n")
        assert f"Content-Length: {length}\r\n".encode() in answer._head
        sizes.append(len(answers._heads))
    assert max(sizes) == answers._HEADS_KEPT


def test_it_is_built_as_web_response_builds_it() -> None:
    """WholeAnswer skips web.Response's constructor: every attribute that constructor sets must
    read the same on it (a new aiohttp that sets one more fails here, not on the wire)."""
    plain = web.Response(body=BODY, status=202, content_type="application/json")
    whole = WholeAnswer(BODY)
    assert vars(plain)  # the constructor does set some
    for name, value in vars(plain).items():
        assert getattr(whole, name) == value, name
    assert dict(whole.headers) == dict(plain.headers)


@pytest.mark.parametrize("status", [101, 204, 304])
def test_an_answer_without_a_body_is_refused(status: int) -> None:
    with pytest.raises(ValueError, match="has no body"):
        WholeAnswer(BODY, status=status)


@pytest.mark.parametrize("method", ["HEAD", "POST"])
async def test_on_a_server_without_routes_it_answers_as_aiohttp_does(
    aiohttp_raw_server: Callable[..., Awaitable[RawTestServer]], method: str
) -> None:
    """aiohttp's low-level server has no routes and no signals: its requests take the whole
    path, except a HEAD, whose answer has no body."""
    served = Served()
    wire = {}
    for kind in ("whole", "plain"):
        server = await aiohttp_raw_server(getattr(served, kind))
        raw = f"{method} / HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        wire[kind] = DATE.sub(b"-", await exchange(server, raw))
    assert wire["whole"] == wire["plain"]
    assert wire["whole"].endswith(b"\r\n\r\n" if method == "HEAD" else BODY)
    assert (served.answers[0]._head is not None) is (method == "POST")


@pytest.mark.parametrize("event_id", ["e1", "3f1c0a52-9d7e-4c1a-8b2e-0f6a7d9c1e25", 'a sender\'s "id" \\ with ünïcode'])
def test_the_answer_to_one_event_is_the_answer_to_a_list_of_it(event_id: str) -> None:
    one, listed = accepted_one(event_id), accepted([event_id])
    assert (one.status, one.body, dict(one.headers)) == (listed.status, listed.body, dict(listed.headers))
    assert orjson.loads(one.body) == {  # type: ignore[arg-type]
        "accepted": 1,
        "event_ids": [event_id],
        "links": {event_id: f"/api/v1/events/{event_id}"},
    }
