"""What every source shares: the Source protocol and JSON body decoding."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from gateway.errors import BadRequest, UnsupportedMediaType
from schemas.events import Event

__all__ = ["Source", "decode_json"]


class Source(Protocol):
    name: str
    #: Sources whose clients retry only 5xx answers never get 429 (see DESIGN.md).
    retries_only_5xx: bool

    def parse(self, body: bytes, content_type: str) -> list[Event]:
        """The events in one request; raises a `GatewayError` subclass for bad input."""
        ...


def decode_json(body: bytes, content_type: str) -> Any:
    """The JSON document of a request, or 415 / 400 with the reason."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(f"Content-Type must be application/json, got {media_type or 'none'!r}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
