"""What every source shares: the Source protocol, headers, and JSON body decoding."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import BadRequest, UnsupportedMediaType
from gateway.sources.auth import Guard
from gateway.sources.ratelimit import TokenBucket
from schemas.events import Event
from schemas.limits import MAX_JSON_DEPTH, depth_exceeds, may_nest_deeper

__all__ = ["Headers", "Source", "as_headers", "decode_json", "media_type"]

TOO_DEEP = (
    f"the body is nested more than {MAX_JSON_DEPTH} levels deep (objects and arrays); "
    "flatten it or send the deep part as a string"
)

#: Request headers: aiohttp's case-insensitive mapping, or any mapping (see `as_headers`).
Headers = Mapping[str, str]


class Source(Protocol):
    name: str
    kind: str
    #: Sources whose clients retry only 5xx answers never get 429 (see DESIGN.md).
    retries_only_5xx: bool
    #: What a request must carry (credentials, signature) to be accepted.
    guard: Guard
    limiter: TokenBucket | None

    def parse(self, body: bytes, headers: Headers) -> list[Event]:
        """The events in one request; raises a `GatewayError` subclass for bad input."""
        ...


def as_headers(headers: Headers) -> Headers:
    """Headers to look up case-insensitively (aiohttp's already are; a plain mapping is copied)."""
    if isinstance(headers, _CASE_INSENSITIVE):
        return headers
    return CIMultiDict(headers)


_CASE_INSENSITIVE = (CIMultiDictProxy, CIMultiDict)  # a tuple: isinstance with a union is slower


def media_type(headers: Headers) -> str:
    return headers.get("Content-Type", "").split(";", 1)[0].strip().lower()


#: Content-Type values that are JSON as they stand (what senders send nearly always).
_JSON_TYPES = frozenset(("application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"))


def decode_json(body: bytes, content_type: str) -> Any:
    """The JSON document of a request, or 415 / 400 with the reason (not JSON, or nested more
    than `MAX_JSON_DEPTH` levels). `content_type` is the media type or the whole Content-Type
    header."""
    if content_type not in _JSON_TYPES:  # the common spellings, without parsing them
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise UnsupportedMediaType(f"Content-Type must be application/json, got {media or 'none'!r}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson's own limit (1024), far above ours
            raise BadRequest(TOO_DEEP) from None
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    # Checked once here, for every source: a deeper document would cost stack in each library
    # that walks it (validators, serialisers) and fail there as a 500.
    if may_nest_deeper(body, MAX_JSON_DEPTH) and depth_exceeds(doc, MAX_JSON_DEPTH):
        raise BadRequest(TOO_DEEP)
    return doc
