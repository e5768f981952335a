"""The webhooks' 202, written as one buffer: status line, headers and body.

aiohttp writes any `web.Response` through some 700 bytecodes: the constructor's checks, `prepare`
(the status, the keep-alive, chunking and compression choices, the body's length, the
`on_response_prepare` signal), the headers serialised from a multidict, and the writer's
coalescing of headers and body. A webhook's 202 needs none of those choices: its body is known
and small, it is never compressed or chunked, its headers are fixed. `WholeAnswer` writes the
same bytes aiohttp would (tests/unit/test_answers.py compares them for HTTP/1.1 and 1.0, with
and without keep-alive) through the request's own stream writer (`write_eof`, so the writer's
accounting and back-pressure are aiohttp's).

It takes that path only for a request that no route resolved (a webhook served past aiohttp's
dispatch by `gateway.app.dispatch_hooks_directly`, where no app signal applies), over HTTP/1.x,
with its headers and body as it made them; any other answer is written as `web.Response` writes
it.
"""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.compression_utils import MAX_SYNC_CHUNK_SIZE
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion10, HttpVersion11
from multidict import CIMultiDict

__all__ = ["WholeAnswer"]

#: What aiohttp writes for a `web.Response(body=..., status=..., content_type="application/json")`,
#: in its order: the status line, Content-Type, Content-Length, Date, Server, then Connection
#: where the keep-alive needs saying.
_HEAD = (
    b"HTTP/1.%d %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nDate: %s\r\nServer: "
    + SERVER_SOFTWARE.encode()
    + b"\r\n%s\r\n"
)
#: The heads made in the second of `_heads_date`, by HTTP minor version, status, reason, body
#: length and keep-alive: within a second the 202s of one source's webhooks differ by their body
#: only, and formatting each head cost some 3,000 instructions (callgrind), a twentieth of what
#: the gateway executes per request beyond the bare handler.
_heads: dict[tuple[int, int, str, int, bool], bytes] = {}
_heads_date = ""
#: More kinds of head than this in one second (bodies of many lengths) start the cache anew.
_HEADS_KEPT = 256
#: The headers a `WholeAnswer` starts with, copied (a copy costs less than building them).
_JSON_HEADERS = CIMultiDict(((hdrs.CONTENT_TYPE, "application/json"),))


class WholeAnswer(web.Response):
    """A `web.Response` of a JSON `body` with `status`, written as one buffer where it can be."""

    _head: bytes | None = None
    # web.Response's constructor sets these per instance; the same values, as class defaults.
    _zlib_executor_size = MAX_SYNC_CHUNK_SIZE
    _zlib_executor = None
    _whole_body: bytes

    def __init__(self, body: bytes, *, status: int = 202, reason: str = "Accepted") -> None:
        if status < 200 or status in (204, 304):
            raise ValueError(f"a {status} answer has no body; use web.Response")
        # What web.Response.__init__ leaves for such an answer (every other attribute keeps its
        # class default), without its checks of arguments this class never passes.
        self._state: dict[Any, Any] = {}
        self._headers = _JSON_HEADERS.copy()
        self._status = status
        self._reason = reason
        self._body = self._whole_body = body

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        version = request.version
        if (
            getattr(request, "_match_info", None) is not None  # routed: the app's signals apply
            or self._payload_writer is not None
            or self._eof_sent
            or len(self._headers) != 1
            or self._headers.get(hdrs.CONTENT_TYPE) != "application/json"
            or self._body is not self._whole_body
            or self._keep_alive is not None
            or self._cookies
            or self._compression
            or self._chunked
            or (version != HttpVersion11 and version != HttpVersion10)
            or request.method == hdrs.METH_HEAD  # (a HEAD's answer has no body)
        ):
            return await super().prepare(request)
        global _heads_date
        keep_alive = self._keep_alive = request.keep_alive
        date = rfc822_formatted_time()  # aiohttp's Date: the same string all second
        if date != _heads_date or len(_heads) >= _HEADS_KEPT:
            _heads.clear()
            _heads_date = date
        key = (version.minor, self._status, self._reason, len(self._whole_body), keep_alive)
        if (head := _heads.get(key)) is None:
            if version == HttpVersion11:
                connection = b"" if keep_alive else b"Connection: close\r\n"
            else:
                connection = b"Connection: keep-alive\r\n" if keep_alive else b""
            head = _heads[key] = _HEAD % (
                version.minor,
                self._status,
                self._reason.encode(),
                len(self._whole_body),
                date.encode(),
                connection,
            )
        self._head = head
        self._must_be_empty_body = False
        self._req = request
        writer = self._payload_writer = request._payload_writer
        return writer

    async def write_eof(self, data: bytes = b"") -> None:
        head = self._head
        if head is None or self._eof_sent:
            return await super().write_eof(data)
        writer = self._payload_writer
        if writer is None or data:  # not prepared here, or a body given twice: aiohttp's checks
            return await super().write_eof(data)
        await writer.write_eof(head + self._whole_body)
        self._eof_sent = True
        self._req = None
        self._body_length = writer.output_size
        self._payload_writer = None
